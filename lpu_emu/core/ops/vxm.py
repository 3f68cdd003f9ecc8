"""VXM semantics, lane by lane on decoded values (docs/design.md sections 8 and 10.7).

Inputs are numpy arrays of int8 / int32 (integer dtypes: numpy's wrap-around is the chip's) or
float32 (every float dtype, decoded exactly); the interpreter rounds float results to the dtype.
Transcendentals are computed in float64 from the fp32 input and rounded to fp32.
"""

from __future__ import annotations

import math

import numpy as np

_INT_RANGE = {"int8": (-128, 127), "int32": (-(2**31), 2**31 - 1)}
_INT_TYPE = {"int8": np.int8, "int32": np.int32}
_erf64 = np.frompyfunc(math.erf, 1, 1)


_QUIET_BIT = np.uint32(0x00400000)


def _is_float(x: np.ndarray) -> bool:
    return x.dtype.kind == "f"


def _quiet(x: np.ndarray) -> np.ndarray:
    return (np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) | _QUIET_BIT).view(np.float32)


def _nan_rule(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Which NaN a float op gives, as a rule rather than whatever numpy's SIMD loops do (they swap
    operands in array tails on some machines): x quieted if x is a NaN, else y quieted if y is,
    else the op's own result (the machine's default NaN for an invalid operation)."""
    if not _is_float(r):
        return r
    x, y = np.broadcast_to(x, r.shape), np.broadcast_to(y, r.shape)
    return np.where(np.isnan(x), _quiet(x), np.where(np.isnan(y), _quiet(y), r))


def _keep_nan(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A transcendental of a NaN is that NaN quieted (numpy's SIMD tanh would give +NaN)."""
    return np.where(np.isnan(x), _quiet(x), r)


def add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x + y."""
    return _nan_rule(x, y, x + y)


def sub(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x - y."""
    return _nan_rule(x, y, x - y)


def mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * y."""
    return _nan_rule(x, y, x * y)


def _pick(x: np.ndarray, y: np.ndarray, take_x: np.ndarray) -> np.ndarray:
    """x where take_x, else y; but a NaN input wins (x's first): IEEE 754-2019 maximum/minimum."""
    if _is_float(x):
        take_x = (take_x & ~np.isnan(y)) | np.isnan(x)
    return np.where(take_x, x, y)


def max(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # noqa: A001 - named like the mnemonic
    """The larger; -0 < +0 (max(-0, +0) is +0); NaN if either is NaN."""
    if _is_float(x):
        return _pick(x, y, (x > y) | ((x == y) & ~np.signbit(x)))
    return _pick(x, y, x >= y)


def min(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # noqa: A001
    """The smaller; -0 < +0 (min(-0, +0) is -0); NaN if either is NaN."""
    if _is_float(x):
        return _pick(x, y, (x < y) | ((x == y) & np.signbit(x)))
    return _pick(x, y, x <= y)


def addi(x: np.ndarray, imm: np.ndarray) -> np.ndarray:
    """x + imm (imm already converted to the dtype, broadcast to the lanes)."""
    return add(x, imm)


def muli(x: np.ndarray, imm: np.ndarray) -> np.ndarray:
    return mul(x, imm)


def maxi(x: np.ndarray, imm: np.ndarray) -> np.ndarray:
    return max(x, imm)


def mini(x: np.ndarray, imm: np.ndarray) -> np.ndarray:
    return min(x, imm)


def mov(x: np.ndarray) -> np.ndarray:
    """x, unchanged (floats still go through the dtype's rounding, which keeps them)."""
    return x.copy()


def neg(x: np.ndarray) -> np.ndarray:
    """-x (int8: -(-128) wraps to -128)."""
    return -x


def abs(x: np.ndarray) -> np.ndarray:  # noqa: A001
    """|x| (int8: |-128| wraps to -128)."""
    return np.abs(x)


def relu(x: np.ndarray) -> np.ndarray:
    """x if x > 0 or x is NaN, else +0 (so Relu(-0) is +0)."""
    if _is_float(x):
        return np.where((x > 0) | np.isnan(x), x, np.float32(0))
    return np.where(x > 0, x, np.zeros_like(x))


def exp(x: np.ndarray) -> np.ndarray:
    return _keep_nan(x, np.exp(x.astype(np.float64)).astype(np.float32))


def rsqrt(x: np.ndarray) -> np.ndarray:
    """1 / sqrt(x): +0 -> +inf, -0 -> -inf, negative -> NaN."""
    return _keep_nan(x, (1.0 / np.sqrt(x.astype(np.float64))).astype(np.float32))


def tanh(x: np.ndarray) -> np.ndarray:
    return _keep_nan(x, np.tanh(x.astype(np.float64)).astype(np.float32))


def erf(x: np.ndarray) -> np.ndarray:
    """math.erf (C99 erf) per lane."""
    return _keep_nan(x, _erf64(x.astype(np.float64)).astype(np.float64).astype(np.float32))


def cvt(x: np.ndarray, src: str, dst: str) -> np.ndarray:
    """x (values of dtype src) as values of dtype dst, before dst's rounding: floats to integers
    round half to even and saturate (NaN -> 0); int32 -> int8 saturates; integers to floats go
    through fp32 (so int32 -> fp16 rounds twice, as the definition says)."""
    if dst in _INT_RANGE:
        lo, hi = _INT_RANGE[dst]
        wide = np.rint(x.astype(np.float64)) if _is_float(x) else x.astype(np.int64)
        wide = np.where(np.isnan(wide), 0, np.clip(wide, lo, hi))
        return wide.astype(_INT_TYPE[dst])
    return x.astype(np.float32)
