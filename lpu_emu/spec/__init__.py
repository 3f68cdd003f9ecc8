"""The ISA and chip presets, loaded from isa/ (the single source of truth)."""

from lpu_emu.spec.chip import Chip, Param, Slice, chip_names, default_chip_name, get_chip, load_chip
from lpu_emu.spec.isa import DType, Field, Instruction, Isa, Operand, default_isa, load_isa

__all__ = [
    "Chip", "DType", "Field", "Instruction", "Isa", "Operand", "Param", "Slice",
    "chip_names", "default_chip_name", "default_isa", "get_chip", "load_chip", "load_isa",
]
