"""Named tensors <-> SRAM images (docs/design.md section 4), for inputs and RunResult.tensor.

A tensor of dtype d (width w bytes) and shape (..., k) is n = prod(shape[:-1]) vectors, each w byte
planes of `lanes` bytes (lanes past k are zero). It lives in one MEM slice (vector i, plane p at
address ADDR + i*w + p) or in w slices (plane p of vector i in slice p, at ADDR + i).
"""

from __future__ import annotations

import numpy as np

from lpu_emu.core.state import mem_ordinal
from lpu_emu.errors import UsageError
from lpu_emu.numerics import STORAGE, from_planes, from_storage, to_planes
from lpu_emu.program import Program, Tensor
from lpu_emu.spec import Chip

_INT_RANGE = {"int8": (-128, 127), "int32": (-(2**31), 2**31 - 1)}


def _locations(chip: Chip, t: Tensor) -> list[tuple[int, np.ndarray]]:
    """For each byte plane p: (MEM ordinal, addresses of vectors 0..n-1)."""
    w, n = STORAGE[t.dtype].itemsize, t.vectors()
    vectors = np.arange(n, dtype=np.int64)
    if len(t.slices) == 1:
        unit = mem_ordinal(chip, t.slices[0])
        return [(unit, t.addr + vectors * w + p) for p in range(w)]
    return [(mem_ordinal(chip, t.slices[p]), t.addr + vectors) for p in range(w)]


def read_image(sram: np.ndarray, chip: Chip, t: Tensor) -> np.ndarray:
    """The tensor's SRAM image: [n, w, lanes] bytes."""
    planes = [sram[unit, t.bank, addrs] for unit, addrs in _locations(chip, t)]
    return np.stack(planes, axis=1)


def write_image(sram: np.ndarray, chip: Chip, t: Tensor, image: np.ndarray) -> None:
    """Store a [n, w, lanes] image where the tensor lives."""
    for p, (unit, addrs) in enumerate(_locations(chip, t)):
        sram[unit, t.bank, addrs] = image[:, p]


def decode_tensor(image: np.ndarray, t: Tensor) -> np.ndarray:
    """Image -> values of the tensor's shape: ints as ints, fp16 as float16, other floats
    (bf16, fp8e4m3, fp32) as float32."""
    stored = from_planes(image, t.dtype)[:, : t.shape[-1]]
    values = stored if t.dtype == "fp16" else from_storage(stored, t.dtype)
    return np.array(values).reshape(t.shape)


def symbol(program: Program, name: str) -> Tensor:
    """The named tensor; UsageError listing the program's tensors if there is none."""
    t = program.symbol(name)
    if t is None:
        names = ", ".join(s.name for s in program.symbols) or "(none)"
        raise UsageError(f"no tensor named {name!r} in the program", hint=f"tensors: {names}")
    return t


def check_input(t: Tensor, values) -> np.ndarray:
    """User values for tensor t as a numeric array of its shape (UsageError otherwise)."""
    a = np.asarray(values)
    if a.dtype.kind not in "biuf":
        raise UsageError(f"input {t.name!r}: values of numpy dtype {a.dtype} are not numbers")
    if a.shape != tuple(t.shape):
        raise UsageError(f"input {t.name!r}: shape {a.shape} does not match the tensor's "
                         f"shape {tuple(t.shape)}")
    if t.dtype in _INT_RANGE and a.size:
        lo, hi = _INT_RANGE[t.dtype]
        if a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.round(a)).all()):
            raise UsageError(f"input {t.name!r}: {t.dtype} tensor given non-integer values")
        if a.min() < lo or a.max() > hi:
            raise UsageError(f"input {t.name!r}: values {a.min()}..{a.max()} do not fit "
                             f"{t.dtype} ({lo}..{hi})")
    return a


def encode_tensor(t: Tensor, values: np.ndarray, lanes: int) -> np.ndarray:
    """Values of the tensor's shape -> its [n, w, lanes] image (floats round to nearest even)."""
    return to_planes(np.asarray(values).reshape(t.vectors(), t.shape[-1]), t.dtype, lanes)
