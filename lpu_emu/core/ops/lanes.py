"""Byte planes <-> lane values: the one conversion every op goes through.

A stream group of width w carries a [w, lanes] uint8 array: plane p holds byte p (little-endian)
of every lane. Ops compute on values: int8/int32 as themselves, every float dtype as fp32
(fp16/bf16/fp8 decode exactly); results are rounded to the dtype when encoded back
(docs/design.md section 8).
"""

from __future__ import annotations

import numpy as np

from lpu_emu.numerics import STORAGE, from_planes, from_storage, to_planes


def width(dtype: str) -> int:
    return STORAGE[dtype].itemsize


FLOATS = ("fp16", "bf16", "fp8e4m3", "fp32")


def decode(planes: np.ndarray, dtype: str) -> np.ndarray:
    """[w, lanes] bytes -> [lanes] values (ints as int8/int32, floats as float32)."""
    w = width(dtype)
    stored = from_planes(np.ascontiguousarray(planes[:w], dtype=np.uint8)[None], dtype)[0]
    values = from_storage(stored, dtype)
    return values.astype(np.float32) if dtype in FLOATS else values.copy()


def encode(values: np.ndarray, dtype: str) -> np.ndarray:
    """[lanes] values -> [w, lanes] bytes. Float results are fp32 (an op that worked in float64
    rounds to fp32 first), then round to nearest even into the dtype."""
    values = np.asarray(values)
    if dtype in FLOATS:
        values = values.astype(np.float32)
    return to_planes(values[None], dtype, values.shape[0])[0]
