"""Per-slice semantics: one small function per instruction, named like its mnemonic (lower case).

`icu`, `mem`, `vxm`, `mxm`, `sxm` and `c2c` hold the semantics of the instructions of that slice
kind in isa/lpu.toml; `lanes` converts between a stream group's byte planes and lane values.
The reference interpreter (lpu_emu/core/reference.py) does the plumbing around them: reading
streams, checking for violations, placing results. A test fails if an instruction of the spec has
no function here.
"""

from lpu_emu.core.ops import c2c, icu, mem, mxm, sxm, vxm

MODULES = {"ICU": icu, "MEM": mem, "VXM": vxm, "MXM": mxm, "SXM": sxm, "C2C": c2c}


def semantics(slice_kind: str, mnemonic: str):
    """The semantics function of an instruction (None if it has none)."""
    return getattr(MODULES[slice_kind], mnemonic.lower(), None)
