"""Front ends: ways into the compiler's graph IR (lpu_emu.compiler.graph) from outside Python.

    onnx.py         an ONNX model file (a torch.onnx.export) -> Graph
    onnx_passes.py  pattern fusions that turn exported op chains back into the IR's fused ops
"""
