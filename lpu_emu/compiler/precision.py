"""Precision modes: what the MXM multiplies, and how fp32 accuracy is reached without an fp32
datapath.

The MXM multiplies int8, fp16, bf16 or fp8 and accumulates in int32 or fp32; the VXM computes in
fp32. A mode picks the MXM dtype of matmuls and how many parts each fp32 operand is split into:
x = p0 + p1 + p2 with p_i = dtype(x - p0 - ... - p_{i-1}). Products of parts whose indices sum
past `parts - 1` are dropped (their size is below fp32's last bit), so fp32 mode is three bf16
passes per matmul (hi*hi, lo*hi, hi*lo), as accelerators without fp32 MACs do it. Reductions
(means, variances, softmax sums) and transposes run on the MXM too and always keep fp32 accuracy
(the VXM's math is fp32 in every mode): sums against exact ones take three parts in fp32 mode
(all 24 bits: a mean of values far from zero, or a one-column LayerNorm, stays fp32-exact) and
two elsewhere, three for exact transposes.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpu_emu.errors import UsageError


@dataclass(frozen=True)
class Mode:
    name: str
    mxm: str  # the MXM dtype of matmuls
    parts: int  # operand parts of a matmul
    exact: str  # the MXM dtype of reductions and transposes (exact parts)

    @property
    def quantized(self) -> bool:
        return self.mxm == "int8"

    @property
    def sum_parts(self) -> int:
        """Parts of a value summed against exact ones (LayerNorm's mean and variance)."""
        return TRANSPOSE_PARTS if self.name == "fp32" else SUM_PARTS

    @property
    def transpose_parts(self) -> int:
        """Parts of an fp32 value transposed on the MXM: exact in fp32 mode, one rounded part in
        the others (whatever it feeds rounds it to the MXM dtype anyway)."""
        return TRANSPOSE_PARTS if self.name == "fp32" else 1


MODES = {
    "fp32": Mode("fp32", "bf16", 2, "bf16"),
    "bf16": Mode("bf16", "bf16", 1, "bf16"),
    "fp16": Mode("fp16", "fp16", 1, "fp16"),
    "int8": Mode("int8", "int8", 1, "bf16"),
    "fp8": Mode("fp8", "fp8e4m3", 1, "bf16"),
}

SUM_PARTS = 2  # an fp32 value against exact ones outside fp32 mode: 16 of 24 bits per term
TRANSPOSE_PARTS = 3  # three bf16 parts hold an fp32 significand exactly


def mode(name: str) -> Mode:
    if name not in MODES:
        raise UsageError(f"unknown precision mode {name!r}",
                         hint=f"modes: {', '.join(MODES)}")
    return MODES[name]


def pairs(x_parts: int, w_parts: int, parts: int) -> list[tuple[int, int]]:
    """The part products to accumulate: (i, j) with i + j < parts."""
    return [(i, j) for j in range(w_parts) for i in range(x_parts) if i + j < parts]
