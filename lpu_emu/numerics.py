"""Number formats of the chip, as numpy: encode values to lane bytes and decode them back.

Runtime code cannot depend on ml_dtypes (a test-time reference only), so bf16 and fp8e4m3 are
written here from their definitions; tests hold them equal to ml_dtypes bit for bit.
fp8e4m3 is the `fn` variant: no infinities, S.1111.111 is NaN, overflow rounds to NaN.
"""

from __future__ import annotations

import numpy as np

# storage dtype of one element of each chip dtype (the bits as numpy holds them)
STORAGE = {
    "int8": np.dtype("<i1"),
    "int32": np.dtype("<i4"),
    "fp16": np.dtype("<f2"),
    "bf16": np.dtype("<u2"),
    "fp8e4m3": np.dtype("<u1"),
    "fp32": np.dtype("<f4"),
}


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round fp32 to bf16, nearest even; any NaN becomes the canonical quiet NaN with its sign
    (as ml_dtypes does)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    quiet = ((bits >> 16) & 0x8000) | 0x7FC0
    return np.where(nan, quiet, rounded).astype(np.uint16)


def bf16_bits_to_f32(b: np.ndarray) -> np.ndarray:
    return (np.asarray(b, dtype=np.uint32) << 16).view(np.float32)


def _fp8_table() -> np.ndarray:
    """All 256 fp8e4m3fn codes as fp32 (quiet NaNs of either sign at 0x7F and 0xFF)."""
    codes = np.arange(256, dtype=np.uint32)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exp = (codes >> 3) & 0xF
    man = codes & 0x7
    normal = (1.0 + man / 8.0) * np.exp2(exp.astype(np.float64) - 7.0)
    subnormal = (man / 8.0) * np.exp2(-6.0)
    value = sign * np.where(exp == 0, subnormal, normal)
    value[(codes & 0x7F) == 0x7F] = np.nan
    value = value.astype(np.float32)
    value[0xFF] = -value[0xFF]  # 0xFF is the negative NaN (0xFFC00000), as in ml_dtypes
    return value


FP8_VALUES = _fp8_table()
# positive grid for rounding: codes 0..0x7E, then 0x7F standing for 480 (NaN) so that ties and
# overflow round onto it exactly as on an extended grid
_FP8_GRID = np.append(FP8_VALUES[:0x7F].astype(np.float64), 480.0)


def f32_to_fp8_bits(x: np.ndarray) -> np.ndarray:
    """Round fp32 to fp8e4m3fn, nearest even; beyond the grid (>= 464 rounds up) gives NaN."""
    x = np.asarray(x, dtype=np.float32)
    a = np.abs(x.astype(np.float64))
    hi = np.clip(np.searchsorted(_FP8_GRID, a, side="left"), 1, 0x7F)
    lo = hi - 1
    d_lo, d_hi = a - _FP8_GRID[lo], _FP8_GRID[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    code = np.where(a <= _FP8_GRID[0], 0, np.where(pick_hi, hi, lo))
    code = np.where((a > 480.0) | np.isnan(a), 0x7F, code)
    sign = np.signbit(x).astype(np.uint32) << 7
    return (code.astype(np.uint32) | sign).astype(np.uint8)


def fp8_bits_to_f32(b: np.ndarray) -> np.ndarray:
    return FP8_VALUES[np.asarray(b, dtype=np.uint8)]


def to_storage(values: np.ndarray, dtype: str) -> np.ndarray:
    """Values (any numeric array) to the dtype's storage: floats round to nearest even; integers
    wrap as numpy's astype does (callers range-check user data first)."""
    v = np.asarray(values)
    if dtype == "bf16":
        return f32_to_bf16_bits(v.astype(np.float32))
    if dtype == "fp8e4m3":
        return f32_to_fp8_bits(v.astype(np.float32))
    if dtype in ("int8", "int32"):
        return v.astype(np.int64).astype(STORAGE[dtype])
    return v.astype(STORAGE[dtype])


def from_storage(stored: np.ndarray, dtype: str) -> np.ndarray:
    """Storage to computable values: int8/int32 as themselves, every float dtype as fp32."""
    if dtype == "bf16":
        return bf16_bits_to_f32(stored)
    if dtype == "fp8e4m3":
        return fp8_bits_to_f32(stored)
    if dtype == "fp16":
        return np.asarray(stored, dtype=np.float16).astype(np.float32)
    return np.asarray(stored)


def to_planes(values: np.ndarray, dtype: str, lanes: int) -> np.ndarray:
    """A [n, <=lanes] array to its SRAM image: [n, width, lanes] bytes, plane p = byte p of each
    lane (little-endian), lanes past the data zero."""
    stored = to_storage(values, dtype)
    n, k = stored.shape
    width = STORAGE[dtype].itemsize
    padded = np.zeros((n, lanes), dtype=STORAGE[dtype])
    padded[:, :k] = stored
    return padded.view(np.uint8).reshape(n, lanes, width).transpose(0, 2, 1).copy()


def from_planes(planes: np.ndarray, dtype: str) -> np.ndarray:
    """Inverse of to_planes: [n, width, lanes] bytes to [n, lanes] storage values."""
    n, width, lanes = planes.shape
    return np.ascontiguousarray(planes.transpose(0, 2, 1)).view(STORAGE[dtype]).reshape(n, lanes)


def max_finite(dtype: str) -> float:
    """The largest finite value of a float dtype, found among its storage's bit patterns (the
    whole 8- or 16-bit space; numpy's finfo for fp32)."""
    storage = STORAGE[dtype]
    if storage.itemsize > 2:
        return float(np.finfo(storage).max)
    bits = np.arange(1 << (8 * storage.itemsize), dtype=f"<u{storage.itemsize}").view(storage)
    with np.errstate(invalid="ignore", over="ignore"):
        values = from_storage(bits, dtype).astype(np.float64)
    return float(np.abs(values[np.isfinite(values)]).max())
