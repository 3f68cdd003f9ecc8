"""Inputs for the semantics tests: edge values first, then random values of the format (random
bit patterns for floats, so NaN, infinities and subnormals all occur), and comparisons that tell
-0 from +0 and accept any NaN for a NaN."""

from __future__ import annotations

import ml_dtypes
import numpy as np

TYPED = {
    "int8": np.int8, "int32": np.int32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16,
    "fp8e4m3": ml_dtypes.float8_e4m3fn, "fp32": np.float32,
}
FLOATS = ("fp16", "bf16", "fp8e4m3", "fp32")
DTYPES = tuple(TYPED)
_BITS = {"fp16": np.uint16, "bf16": np.uint16, "fp8e4m3": np.uint8, "fp32": np.uint32}
INT_EDGES = {
    "int8": [-128, 127, 0, -1, 1, -127, 126, 64, -64],
    "int32": [-(2**31), 2**31 - 1, 0, -1, 1, -(2**31) + 1, 2**31 - 2, 65536, -65536],
}


def float_edges(dtype: str) -> np.ndarray:
    t = TYPED[dtype]
    info = ml_dtypes.finfo(t) if dtype in ("bf16", "fp8e4m3") else np.finfo(t)
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 2.5, 3.5,
            float(info.max), -float(info.max), float(info.tiny), -float(info.tiny),
            float(info.smallest_subnormal), -float(info.smallest_subnormal)]
    return np.array(vals, dtype=np.float32).astype(t)


def sample(dtype: str, seed: int, n: int = 320) -> np.ndarray:
    """n values of the dtype (as its numpy / ml_dtypes type), edge values first."""
    rng = np.random.default_rng(seed)
    t = TYPED[dtype]
    if dtype in INT_EDGES:
        info = np.iinfo(t)
        out = rng.integers(info.min, info.max, size=n, endpoint=True).astype(t)
        out[: len(INT_EDGES[dtype])] = INT_EDGES[dtype]
        out[-40:] = rng.integers(-20, 20, size=40)  # small values too
        return out
    bits = rng.integers(0, np.iinfo(_BITS[dtype]).max, size=n, endpoint=True).astype(_BITS[dtype])
    out = bits.view(t).copy()
    out[n // 2:] = (rng.standard_normal(n - n // 2) * 4).astype(np.float32).astype(t)
    edges = float_edges(dtype)
    out[: len(edges)] = edges
    return out


def as_f32(values: np.ndarray) -> np.ndarray:
    """Any float format's values as float32 (exact), ints unchanged."""
    v = np.asarray(values)
    return v if v.dtype.kind in "iu" else v.astype(np.float32)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    """Equal values, bit for bit except NaN payloads: -0 differs from +0; NaN equals NaN."""
    got, want = as_f32(got), as_f32(want)
    assert got.shape == want.shape
    if got.dtype.kind == "f" or want.dtype.kind == "f":
        got, want = got.astype(np.float32), want.astype(np.float32)
        nan_g, nan_w = np.isnan(got), np.isnan(want)
        differ = got.view(np.uint32) != want.view(np.uint32)
        bad = np.flatnonzero((nan_g != nan_w) | (~nan_g & differ))
    else:
        bad = np.flatnonzero(got.astype(np.int64) != want.astype(np.int64))
    assert len(bad) == 0, f"lanes {bad[:8].tolist()}: got {got[bad[:8]]}, want {want[bad[:8]]}"


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between float32 arrays (0 for equal infinities)."""
    def ordered(x: np.ndarray) -> np.ndarray:
        i = np.asarray(x, np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return np.abs(ordered(a) - ordered(b))
