"""VXM semantics, each instruction run through the whole pipeline (Program -> Plan -> reference
run: x from SRAM, op, z back to SRAM) and checked against a numpy / ml_dtypes statement of the same
operation, over random values of the format with edge values (NaN, inf, -0, extremes) first."""

from __future__ import annotations

import math

import numpy as np
import pytest
from core_helpers import vxm_case
from numeric_cases import DTYPES, FLOATS, TYPED, as_f32, assert_same, sample, ulp_distance

INTS = ("int8", "int32")


def feed(values: np.ndarray) -> np.ndarray:
    """Values as the pipeline takes them (exact: floats as float32, ints as int64)."""
    v = as_f32(values)
    return v.astype(np.int64) if v.dtype.kind in "iu" else v


def ieee_max(x: np.ndarray, y: np.ndarray, smaller: bool = False) -> np.ndarray:
    """IEEE 754-2019 maximum (minimum): numpy's NaN-propagating maximum, with -0 < +0."""
    want = (np.minimum if smaller else np.maximum)(x, y)
    if x.dtype.kind == "f" or x.dtype in (TYPED["bf16"], TYPED["fp8e4m3"]):
        xf, yf = as_f32(x), as_f32(y)
        zeros = (xf == 0) & (yf == 0)
        signs = np.signbit(xf) & np.signbit(yf) if not smaller else np.signbit(xf) | np.signbit(yf)
        zero = np.where(signs, np.float32(-0.0), np.float32(0.0)).astype(x.dtype)
        want = np.where(zeros, zero, want).astype(x.dtype)
        nan_x = np.isnan(xf)
        want = np.where(nan_x | np.isnan(yf), np.float32(np.nan), as_f32(want)).astype(x.dtype)
    return want


BINARY = {
    "Add": lambda x, y: x + y,
    "Sub": lambda x, y: x - y,
    "Mul": lambda x, y: x * y,
    "Max": ieee_max,
    "Min": lambda x, y: ieee_max(x, y, smaller=True),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnemonic", BINARY)
def test_binary_matches_numpy(mnemonic, dtype):
    x, y = sample(dtype, 1), sample(dtype, 2)
    y[:20] = x[:20][::-1]  # edge values against each other (inf - inf, max + max, ...)
    with np.errstate(all="ignore"):
        want = BINARY[mnemonic](x, y)
    result = vxm_case(mnemonic, dtype, feed(x), feed(y))
    assert result.violations == []
    assert_same(result.tensor("z"), want)


IMMEDIATES = {"int8": -7, "int32": -100000, "fp16": 0.1, "bf16": -0.3, "fp8e4m3": 1.7,
              "fp32": 1e-3}
IMM_OPS = {"AddI": "Add", "MulI": "Mul", "MaxI": "Max", "MinI": "Min"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnemonic", IMM_OPS)
def test_immediate_is_rounded_to_the_dtype_first(mnemonic, dtype):
    x = sample(dtype, 3)
    imm = IMMEDIATES[dtype]
    # the immediate travels as fp32 (floats) or int32 bits, then becomes the dtype
    imm_typed = np.full(320, np.float32(imm) if dtype in FLOATS else imm).astype(TYPED[dtype])
    with np.errstate(all="ignore"):
        want = BINARY[IMM_OPS[mnemonic]](x, imm_typed)
    result = vxm_case(mnemonic, dtype, feed(x), imm=imm)
    assert result.violations == []
    assert_same(result.tensor("z"), want)


def relu(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind in "iu":
        return np.maximum(x, 0).astype(x.dtype)
    # NaN stays, -0 and negatives become +0 (-0 + 0 is +0 in IEEE arithmetic)
    return (np.maximum(as_f32(x), np.float32(0)) + np.float32(0)).astype(x.dtype)


UNARY = {
    "Mov": lambda x: x,
    "Neg": lambda x: -x,
    "Abs": np.abs,
    "Relu": relu,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnemonic", UNARY)
def test_unary_matches_numpy(mnemonic, dtype):
    x = sample(dtype, 4)
    want = UNARY[mnemonic](x)
    result = vxm_case(mnemonic, dtype, feed(x))
    assert result.violations == []
    assert_same(result.tensor("z"), want)


def test_integer_edges_wrap_by_hand():
    x = np.array([-128, 127, 0, -1] + [5] * 316)
    assert vxm_case("Neg", "int8", x).tensor("z")[:4].tolist() == [-128, -127, 0, 1]
    assert vxm_case("Abs", "int8", x).tensor("z")[:4].tolist() == [-128, 127, 0, 1]
    y = np.array([-1, 1, -128, -128] + [5] * 316)
    # -128 - -1 = -127; 127 + 1 wraps to -128; 0 * -128 = 0; -1 * -128 = 128 wraps to -128
    assert vxm_case("Sub", "int8", x, y).tensor("z")[:2].tolist() == [-127, 126]
    assert vxm_case("Add", "int8", x, y).tensor("z")[:2].tolist() == [-129 + 256, 128 - 256]
    assert vxm_case("Mul", "int8", x, y).tensor("z")[:4].tolist() == [-128, 127, 0, -128]


def test_float_edges_by_hand():
    x = np.array([np.nan, 0.0, -0.0, 1.0, -0.0, 448.0] + [0.0] * 314, np.float32)
    y = np.array([1.0, -0.0, 0.0, np.nan, -0.0, 448.0] + [0.0] * 314, np.float32)
    mx = vxm_case("Max", "fp32", x, y).tensor("z")
    mn = vxm_case("Min", "fp32", x, y).tensor("z")
    assert np.isnan(mx[0]) and np.isnan(mx[3]) and np.isnan(mn[0]) and np.isnan(mn[3])
    assert [np.signbit(v) for v in mx[1:3]] == [False, False]  # max(+0, -0) = max(-0, +0) = +0
    assert [np.signbit(v) for v in mn[1:3]] == [True, True]
    assert np.signbit(mx[4]) and np.signbit(mn[4])  # max(-0, -0) = -0
    # fp8e4m3fn has no infinity: 448 + 448 overflows to NaN; fp16 65504 + 65504 to inf
    assert np.isnan(vxm_case("Add", "fp8e4m3", x, y).tensor("z")[5])
    big = np.full(320, 65504.0, np.float32)
    assert vxm_case("Add", "fp16", big, big).tensor("z")[0] == np.inf
    r = vxm_case("Relu", "fp32", np.array([-0.0, -3.0, np.nan, 2.0] + [0.0] * 316, np.float32))
    z = r.tensor("z")
    assert z[0] == 0 and not np.signbit(z[0]) and z[1] == 0 and np.isnan(z[2]) and z[3] == 2.0


TRANSCENDENTAL = {"Exp": np.exp, "Tanh": np.tanh, "Rsqrt": lambda v: 1 / np.sqrt(v)}


@pytest.mark.parametrize("mnemonic", TRANSCENDENTAL)
def test_fp32_transcendental_within_2_ulp_of_numpy(mnemonic):
    x = sample("fp32", 5)
    x[200:] = np.random.default_rng(6).uniform(-20, 20, 120).astype(np.float32)
    if mnemonic == "Rsqrt":
        x[200:] = np.abs(x[200:])
    with np.errstate(all="ignore"):
        want = TRANSCENDENTAL[mnemonic](x).astype(np.float32)  # numpy on float32
    z = vxm_case(mnemonic, "fp32", x).tensor("z")
    nan_w = np.isnan(want)
    assert (np.isnan(z) == nan_w).all()
    assert ulp_distance(z[~nan_w], want[~nan_w]).max() <= 2


def erf32(x: np.ndarray) -> np.ndarray:
    return np.array([math.erf(float(v)) for v in x], np.float64).astype(np.float32)


def test_erf_is_math_erf_rounded():
    x = sample("fp32", 7)
    x[200:] = np.random.default_rng(8).uniform(-4, 4, 120).astype(np.float32)
    assert_same(vxm_case("Erf", "fp32", x).tensor("z"), erf32(x))


def rsqrt64(v: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return 1.0 / np.sqrt(v)


DEFINITION = {"Exp": np.exp, "Tanh": np.tanh, "Rsqrt": rsqrt64, "Erf": None}


@pytest.mark.parametrize("dtype", ("fp16", "bf16", "fp8e4m3"))
@pytest.mark.parametrize("mnemonic", DEFINITION)
def test_narrow_transcendental_rounds_float64_to_fp32_then_dtype(mnemonic, dtype):
    x = sample(dtype, 9)
    x64 = as_f32(x).astype(np.float64)
    with np.errstate(all="ignore"):
        f32 = erf32(x64) if mnemonic == "Erf" else DEFINITION[mnemonic](x64).astype(np.float32)
    want = f32.astype(TYPED[dtype])
    assert_same(vxm_case(mnemonic, dtype, feed(x)).tensor("z"), want)


def test_rsqrt_signed_zero_and_negative_by_hand():
    x = np.array([0.0, -0.0, -1.0, 4.0, np.inf] + [1.0] * 315, np.float32)
    z = vxm_case("Rsqrt", "fp32", x).tensor("z")
    assert z[0] == np.inf and z[1] == -np.inf and np.isnan(z[2]) and z[3] == 0.5 and z[4] == 0


def cvt_want(x: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Section 8, stated with Python's round (half to even) and numpy / ml_dtypes casts."""
    if dst in INTS:
        info = np.iinfo(TYPED[dst])
        if src in INTS:
            return np.clip(x.astype(np.int64), info.min, info.max).astype(TYPED[dst])
        out = []
        for v in as_f32(x).tolist():
            r = 0 if math.isnan(v) else (info.max if v >= 2**40 else
                                         info.min if v <= -(2**40) else round(v))
            out.append(min(max(r, info.min), info.max))
        return np.array(out, np.int64).astype(TYPED[dst])
    return as_f32(x).astype(np.float32).astype(TYPED[dst])  # ints via fp32 too


@pytest.mark.parametrize("dst", DTYPES)
@pytest.mark.parametrize("src", DTYPES)
def test_cvt_every_pair(src, dst):
    x = sample(src, 10)
    result = vxm_case("Cvt", src, feed(x), dtype2=dst)
    assert result.violations == []
    assert_same(result.tensor("z"), cvt_want(x, src, dst))


def test_cvt_by_hand():
    x = np.array([2.5, 3.5, -2.5, 1e10, -1e10, np.nan, 0.5, -0.5] + [0.0] * 312, np.float32)
    z = vxm_case("Cvt", "fp32", x, dtype2="int8").tensor("z")
    assert z[:8].tolist() == [2, 4, -2, 127, -128, 0, 0, 0]
    i = np.array([300, -300, 2049, 16777217] + [0] * 316)
    assert vxm_case("Cvt", "int32", i, dtype2="int8").tensor("z")[:2].tolist() == [127, -128]
    # int32 -> fp16 goes through fp32: 2049 -> 2049.0 -> 2048 (ties to even)
    assert vxm_case("Cvt", "int32", i, dtype2="fp16").tensor("z")[2] == 2048
    assert vxm_case("Cvt", "int32", i, dtype2="fp32").tensor("z")[3] == 16777216
