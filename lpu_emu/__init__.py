"""lpu-emu: a cycle-approximate emulator of a Groq-style LPU (Tensor Streaming Processor)."""

__version__ = "0.1.0"
