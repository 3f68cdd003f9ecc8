"""The fast core's number-format conversions (lpu_emu/core/jit_ops.py), bit for bit against numpy
(fp16), lpu_emu.numerics (bf16, fp8e4m3fn) and ml_dtypes: every fp16/bf16/fp8 code, a few
million fp32 inputs (random, plus every exponent with the mantissas next to a rounding point).
LPU_SLOW=1 checks all 2^32 fp32 inputs."""

from __future__ import annotations

import os

import ml_dtypes
import numba
import numpy as np
import pytest

from lpu_emu import numerics as N
from lpu_emu.core import jit_ops as J
from lpu_emu.core.jit_ops import map_bits

F16_TO_F32, F32_TO_F16, BF16_TO_F32, F32_TO_BF16, FP8_TO_F32, F32_TO_FP8 = range(6)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint32).astype(np.int64)


@pytest.fixture(scope="module")
def f32_inputs() -> np.ndarray:
    """Random fp32 bit patterns, and for every exponent and sign the mantissas around each
    rounding point of fp16, bf16 and fp8 (the 13, 16 and 20 low bits: half-way, just below and
    above, odd and even kept bits), infinities and NaN payloads."""
    rng = np.random.default_rng(12345)
    random = rng.integers(0, 2**32, 3_000_000, dtype=np.int64)
    exps = np.arange(256, dtype=np.int64) << 23
    highs = rng.integers(0, 2**23, 64, dtype=np.int64)
    lows = []
    for shift in (13, 16, 20):
        half = 1 << (shift - 1)
        for low in (0, 1, half - 1, half, half + 1, (1 << shift) - 1):
            lows.append((highs >> shift << shift) | low)
            lows.append(((highs >> shift << shift) | (1 << shift)) | low)  # odd kept bit
    mant = np.unique(np.concatenate(lows + [np.arange(32), (1 << 23) - np.arange(1, 32)]))
    edges = (exps[:, None] | mant[None, :]).ravel()
    edges = np.concatenate([edges, edges | (1 << 31)])
    return np.concatenate([random, edges]) & 0xFFFFFFFF


def test_fp16_decode_equals_numpy_for_every_code():
    h = np.arange(1 << 16, dtype=np.int64)
    expected = _bits(h.astype(np.uint16).view(np.float16).astype(np.float32))
    np.testing.assert_array_equal(map_bits(h, F16_TO_F32), expected)


def test_bf16_decode_equals_numerics_and_ml_dtypes_for_every_code():
    b = np.arange(1 << 16, dtype=np.int64)
    out = map_bits(b, BF16_TO_F32)
    np.testing.assert_array_equal(out, _bits(N.bf16_bits_to_f32(b.astype(np.uint16))))
    ml = b.astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(out, _bits(ml))


def test_fp8_decode_equals_numerics_and_ml_dtypes_for_every_code():
    """Every code, NaNs included (0x7F: +NaN, 0xFF: -NaN), bit for bit."""
    b = np.arange(256, dtype=np.int64)
    out = map_bits(b, FP8_TO_F32)
    np.testing.assert_array_equal(out, _bits(N.fp8_bits_to_f32(b.astype(np.uint8))))
    ml = _bits(b.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float32))
    np.testing.assert_array_equal(out, ml)


def test_f32_to_fp16_equals_numpy(f32_inputs):
    with np.errstate(all="ignore"):
        expected = f32_inputs.astype(np.uint32).view(np.float32).astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(map_bits(f32_inputs, F32_TO_F16), expected.astype(np.int64))


def test_f32_to_bf16_equals_numerics(f32_inputs):
    expected = N.f32_to_bf16_bits(f32_inputs.astype(np.uint32).view(np.float32))
    np.testing.assert_array_equal(map_bits(f32_inputs, F32_TO_BF16), expected.astype(np.int64))


def test_f32_to_fp8_equals_numerics_and_ml_dtypes(f32_inputs):
    x = f32_inputs.astype(np.uint32).view(np.float32)
    out = map_bits(f32_inputs, F32_TO_FP8)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out, N.f32_to_fp8_bits(x).astype(np.int64))
        ml = x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8).astype(np.int64)
    np.testing.assert_array_equal(out, ml)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("LPU_SLOW") != "1", reason="set LPU_SLOW=1")
def test_every_fp32_input_converts_as_numpy_and_ml_dtypes():
    chunk = 1 << 24
    with np.errstate(all="ignore"):
        for start in range(0, 1 << 32, chunk):
            f = np.arange(start, start + chunk, dtype=np.int64)
            x = f.astype(np.uint32).view(np.float32)
            np.testing.assert_array_equal(map_bits(f, F32_TO_F16),
                                          x.astype(np.float16).view(np.uint16).astype(np.int64))
            np.testing.assert_array_equal(map_bits(f, F32_TO_BF16),
                                          x.astype(ml_dtypes.bfloat16).view(np.uint16).astype(np.int64))
            np.testing.assert_array_equal(map_bits(f, F32_TO_FP8),
                                          x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8).astype(np.int64))


# ---- the lane kernels the core runs (jit_ops.encode_lanes / decode_lanes): each float dtype has
# its own loop there, so they are checked as lane rows too, against lpu_emu.numerics ----
@numba.njit
def _encode_rows(bits, dtype, out):
    for r in range(bits.shape[0]):
        J.encode_lanes(bits[r], dtype, bits.shape[1], out[r])


@numba.njit
def _decode_row(heap, sl, dtype, bits, ints):
    J.decode_lanes(heap, sl, dtype, bits.shape[0], bits, ints)


def _f32_to_16(dtype: str, x: np.ndarray) -> np.ndarray:
    """The 16-bit codes the references give: lpu_emu.numerics (bf16), numpy (fp16)."""
    if dtype == "bf16":
        return N.f32_to_bf16_bits(x.view(np.float32)).astype(np.int64)
    with np.errstate(all="ignore"):
        return x.view(np.float32).astype(np.float16).view(np.uint16).astype(np.int64)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_16_bit_lane_rows_encode_as_the_references(f32_inputs, dtype):
    """Rows of 320 lanes through encode_lanes (the two byte planes) equal the references
    element by element: ties to even, subnormals, NaN payloads, infinities, overflow."""
    x = f32_inputs[: len(f32_inputs) // 320 * 320].astype(np.uint32)
    out = np.zeros((len(x) // 320, 2, 320), np.uint8)
    _encode_rows(x.reshape(-1, 320), {"bf16": J.BF16, "fp16": J.FP16}[dtype], out)
    got = out[:, 0].astype(np.int64) | (out[:, 1].astype(np.int64) << 8)
    np.testing.assert_array_equal(got.ravel(), _f32_to_16(dtype, x))


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_16_bit_lane_row_decodes_every_code(dtype):
    """Every code as one lane row (its two byte planes as two stream rows) through
    decode_lanes: the fp32 bits of numerics (bf16) and numpy (fp16)."""
    codes = np.arange(1 << 16, dtype=np.uint16)
    heap = np.stack([codes & 0xFF, codes >> 8]).astype(np.uint8)
    bits = np.zeros(1 << 16, np.uint32)
    code = {"bf16": J.BF16, "fp16": J.FP16}[dtype]
    _decode_row(heap, np.array([0, 1], np.int64), code, bits, bits.view(np.int32))
    want = (N.bf16_bits_to_f32(codes) if dtype == "bf16"
            else codes.view(np.float16).astype(np.float32))
    np.testing.assert_array_equal(bits, want.view(np.uint32))
