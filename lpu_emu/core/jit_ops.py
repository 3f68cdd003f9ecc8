"""Numba helpers of the fast core: number-format conversions on bits, and lane kernels.

numba has no float16 arithmetic on the CPU, and the core must equal numpy (fp16) and
lpu_emu.numerics (bf16, fp8e4m3fn) bit for bit, NaN payloads included, so every conversion is
written here on integer bits, after numpy's own `npy_floatbits_to_halfbits` /
`npy_halfbits_to_floatbits` (software: payloads shift, signalling NaNs stay signalling). The tests
check every fp16, bf16 and fp8 code and millions of fp32 inputs (LPU_SLOW=1: all 2^32).

Bit manipulation is done on int64 (numba turns uint64 op int64 into float64); scalars become
float32 through `.view`, which numba compiles to a register move.

numba's cache only checks the file that defines a cached function, so it would not notice an edit
here under the cached loop of fast_loop.py: fast.invalidate_stale_cache() (run at import) hashes
this file and events.py and drops the cached loop when they changed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit as _njit
from numba.extending import register_jitable


def njit(fn):
    """A helper of the core: compiled as part of the jitted function that calls it (no
    dispatcher, cache entry or Python wrapper of its own), with numpy's error model (a float
    division by zero gives inf or NaN, never ZeroDivisionError). Called from Python, it runs as
    plain Python."""
    return register_jitable(error_model="numpy")(fn)


def entry(fn):
    """A jitted entry point, callable from Python: cached on disk, numpy's error model."""
    return _njit(cache=True, error_model="numpy")(fn)


# dtype codes (isa/lpu.toml [dtypes]); fast.py checks them against the loaded Isa
INT8, INT32, FP16, BF16, FP8, FP32 = 1, 2, 3, 4, 5, 6
# width in bytes (= streams) of each dtype code, index = code
WIDTH = np.array([0, 1, 4, 2, 2, 1, 4], dtype=np.int64)

_QNAN = 0x7FC00000  # the canonical quiet NaN (numpy's np.nan as float32)


# ---------------------------------------------------------------------------------------------
# scalar bit conversions; every argument and result is an int64 holding the unsigned bits
# ---------------------------------------------------------------------------------------------
@njit
def f32_from_bits(b):
    """int64 bits -> float32 value."""
    return np.uint32(b).view(np.float32)


@njit
def f32_bits(x):
    """float32 value -> int64 bits."""
    return np.int64(np.float32(x).view(np.uint32))


@njit
def f16_to_f32_bits(h):
    """fp16 bits -> fp32 bits, as numpy: NaN payloads shift left by 13, signalling stays.
    (Each case computed, then one chosen: inlined into a lane loop it vectorises.)"""
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    # subnormal or zero: m * 2^-24 is exact in fp32
    small = sign | f32_bits(np.float32(m) * np.float32(5.9604644775390625e-08))
    special = sign | 0x7F800000 | (m << 13)
    normal = sign | ((e + 112) << 23) | (m << 13)
    return small if e == 0 else (special if e == 31 else normal)


@njit
def f32_to_f16_bits(f):
    """fp32 bits -> fp16 bits, round to nearest even, as numpy's npy_floatbits_to_halfbits.
    (Each case computed, then one chosen: inlined into a lane loop it vectorises.)"""
    sign = (f >> 16) & 0x8000
    fe = f & 0x7F800000
    fs = f & 0x007FFFFF
    # NaN (its payload's top bits, kept a NaN), infinity, or overflow to infinity
    payload = 0x7C00 + (fs >> 13)
    payload += payload == 0x7C00
    big = sign + (payload if fe == 0x7F800000 and fs != 0 else 0x7C00)
    # a subnormal result (fe in 0x33000000..0x38000000: a shift of 1..11); below: signed zero
    sig = (0x00800000 + fs) >> min(max(113 - (fe >> 23), 0), 31)
    sig += 0x1000 if (sig & 0x3FFF) != 0x1000 or (f & 0x7FF) != 0 else 0
    small = sign if fe < 0x33000000 else sign + (sig >> 13)
    # normal: a carry out of the significand bumps the exponent
    rounded = fs + (0x1000 if (fs & 0x3FFF) != 0x1000 else 0)
    normal = sign + ((fe - 0x38000000) >> 13) + (rounded >> 13)
    return big if fe >= 0x47800000 else (small if fe <= 0x38000000 else normal)


@njit
def bf16_to_f32_bits(b):
    return b << 16


@njit
def f32_to_bf16_bits(f):
    """Round to nearest even; a NaN becomes the canonical quiet NaN with its sign. (One
    expression: inlined into encode_lanes' loop it becomes a select, and the loop vectorises.)"""
    nan = (f & 0x7FFFFFFF) > 0x7F800000
    return (((f >> 16) & 0x8000) | 0x7FC0) if nan else (f + 0x7FFF + ((f >> 16) & 1)) >> 16


@njit
def fp8_to_f32_bits(b):
    """fp8e4m3fn bits -> fp32 bits; the NaN codes decode to the quiet NaN of their sign
    (0x7F: 0x7FC00000, 0xFF: 0xFFC00000), as ml_dtypes and numerics.py."""
    sign = (b & 0x80) << 24
    if (b & 0x7F) == 0x7F:
        return sign | _QNAN
    e = (b >> 3) & 0xF
    m = b & 0x7
    if e == 0:
        if m == 0:
            return sign
        return sign | f32_bits(np.float32(m) * np.float32(0.001953125))  # m * 2^-9, exact
    return sign | ((e + 120) << 23) | (m << 20)


@njit
def f32_to_fp8_bits(f):
    """Round to nearest even onto the e4m3fn grid; past 464 (ties to even) and NaN give NaN."""
    sign = (f >> 24) & 0x80
    a = f & 0x7FFFFFFF
    if a > 0x7F800000:
        return sign | 0x7F
    if a < 0x3C800000:  # below 2^-6: subnormal grid, steps of 2^-9
        q = np.rint(f32_from_bits(a) * np.float32(512.0))
        return sign | np.int64(q)  # q = 8 is code 0x08, the smallest normal: still right
    e = (a >> 23) - 120  # the fp8 exponent field, >= 1 here
    if e > 15:
        return sign | 0x7F
    code = (e << 3) | ((a >> 20) & 0x7)
    rest = a & 0xFFFFF
    if rest > 0x80000 or (rest == 0x80000 and (code & 1) == 1):
        code += 1
    if code > 0x7F:
        code = 0x7F
    return sign | code


@njit
def decode_f32_bits(code, dtype):
    """Raw lane bits of a float dtype -> fp32 bits (fp32: as is)."""
    if dtype == FP16:
        return f16_to_f32_bits(code)
    if dtype == BF16:
        return bf16_to_f32_bits(code)
    if dtype == FP8:
        return fp8_to_f32_bits(code)
    return code


@njit
def encode_f32_bits(f, dtype):
    """fp32 bits -> raw lane bits of a float dtype, rounding to nearest even."""
    if dtype == FP16:
        return f32_to_f16_bits(f)
    if dtype == BF16:
        return f32_to_bf16_bits(f)
    if dtype == FP8:
        return f32_to_fp8_bits(f)
    return f


# vectorised forms for tests and the Python side (one call per array, never per element)
@entry
def map_bits(src, kind):
    """Apply one converter to every element of an int64 array: kind 0 f16->f32, 1 f32->f16,
    2 bf16->f32, 3 f32->bf16, 4 fp8->f32, 5 f32->fp8."""
    out = np.empty(src.size, dtype=np.int64)
    for i in range(src.size):
        x = src[i]
        if kind == 0:
            out[i] = f16_to_f32_bits(x)
        elif kind == 1:
            out[i] = f32_to_f16_bits(x)
        elif kind == 2:
            out[i] = bf16_to_f32_bits(x)
        elif kind == 3:
            out[i] = f32_to_bf16_bits(x)
        elif kind == 4:
            out[i] = fp8_to_f32_bits(x)
        else:
            out[i] = f32_to_fp8_bits(x)
    return out


# ---------------------------------------------------------------------------------------------
# lane kernels: byte planes <-> lane values; one loop per call, the switch outside the loop.
# Lane values live in one uint32 row per operand with two views of the same memory made on the
# Python side: int32 (integer dtypes, int8 sign-extended) and float32 (every float dtype, decoded
# exactly). Kernels take the views as arguments: an `.view()` inside numba code yields an array
# of unknown layout and kills vectorisation (measured: 10x slower loops).
# ---------------------------------------------------------------------------------------------
@njit
def gather_lanes(heap, sl, w, lanes, out):
    """out[l] = the w byte planes (rows sl[0..w-1] of heap) of lane l, little-endian."""
    r0 = heap[sl[0]]
    if w == 1:
        for lane in range(lanes):
            out[lane] = r0[lane]
    elif w == 2:
        r1 = heap[sl[1]]
        for lane in range(lanes):
            out[lane] = np.uint32(r0[lane]) | (np.uint32(r1[lane]) << 8)
    else:
        r1, r2, r3 = heap[sl[1]], heap[sl[2]], heap[sl[3]]
        for lane in range(lanes):
            out[lane] = (np.uint32(r0[lane]) | (np.uint32(r1[lane]) << 8)
                         | (np.uint32(r2[lane]) << 16) | (np.uint32(r3[lane]) << 24))


@njit
def decode_lanes(heap, sl, dtype, lanes, bits, ints):
    """Decode a stream group into a lane row: bits (uint32) holds int32 values (ints is its
    int32 view; int8 sign-extended) or fp32 bits (floats decode exactly)."""
    gather_lanes(heap, sl, WIDTH[dtype], lanes, bits)
    if dtype == INT8:
        for lane in range(lanes):
            ints[lane] = np.int8(bits[lane])
    elif dtype == BF16:  # one loop per dtype: decode_f32_bits' switch per lane stays scalar
        for lane in range(lanes):
            bits[lane] = bf16_to_f32_bits(bits[lane])
    elif dtype == FP16:
        for lane in range(lanes):
            bits[lane] = f16_to_f32_bits(np.int64(bits[lane]))
    elif dtype != INT32 and dtype != FP32:
        for lane in range(lanes):
            bits[lane] = decode_f32_bits(np.int64(bits[lane]), dtype)


@njit
def encode_lanes(bits, dtype, lanes, out):
    """A lane row -> the byte planes of dtype: integers keep their low bytes (two's-complement
    wrap), floats round to nearest even from fp32. (One loop per width, all planes written in
    it: a loop over planes with a variable shift compiles to code 2.5x slower.)"""
    w = WIDTH[dtype]
    if dtype in (BF16, FP16):
        # one loop per dtype: encode_f32_bits' switch per lane stays scalar
        o0, o1 = out[0], out[1]
        if dtype == BF16:
            for lane in range(lanes):
                b = f32_to_bf16_bits(np.int64(bits[lane]))
                o0[lane] = b & 0xFF
                o1[lane] = (b >> 8) & 0xFF
        else:
            for lane in range(lanes):
                b = f32_to_f16_bits(np.int64(bits[lane]))
                o0[lane] = b & 0xFF
                o1[lane] = (b >> 8) & 0xFF
    elif dtype == FP8:
        for lane in range(lanes):
            out[0, lane] = encode_f32_bits(np.int64(bits[lane]), dtype) & 0xFF
    elif w == 4:
        o0, o1, o2, o3 = out[0], out[1], out[2], out[3]
        for lane in range(lanes):
            b = bits[lane]
            o0[lane] = b & 0xFF
            o1[lane] = (b >> 8) & 0xFF
            o2[lane] = (b >> 16) & 0xFF
            o3[lane] = b >> 24
    else:
        o0 = out[0]
        for lane in range(lanes):
            o0[lane] = bits[lane] & 0xFF


@njit
def is_nan_bits(b):
    return (b & 0x7FFFFFFF) > 0x7F800000


@njit
def nan_rule(xb, yb, rb):
    """The NaN a float op x (op) y gives, as numpy on x86 (SSE): x quieted if x is a NaN, else y
    quieted if y is, else the NaN the hardware made (invalid operation)."""
    if is_nan_bits(xb):
        return xb | 0x400000
    if is_nan_bits(yb):
        return yb | 0x400000
    return rb


# VXM ALU operations (fast_loop maps mnemonics to these)
V_ADD, V_SUB, V_MUL, V_MAX, V_MIN, V_MOV, V_NEG, V_ABS, V_RELU = 0, 1, 2, 3, 4, 5, 6, 7, 8
V_EXP, V_RSQRT, V_TANH, V_ERF = 9, 10, 11, 12


@njit
def float_op(op, xb, yb, rb, x, y, r, lanes, nan_mode):
    """r = op(x, y) in fp32; xb, yb, rb are the uint32 bits of x, y, r (the same memory).
    nan_mode: bit (op - V_EXP) set: that transcendental of a NaN is the canonical quiet NaN (as
    numpy's SIMD tanh gives), else the input NaN quieted (fast.py probes the reference's ops)."""
    if op <= V_MUL:
        nans = 0  # counted in the same loop: a separate pass costs 4x the arithmetic
        if op == V_ADD:
            for lane in range(lanes):
                v = x[lane] + y[lane]
                r[lane] = v
                nans += np.int32(v != v)
        elif op == V_SUB:
            for lane in range(lanes):
                v = x[lane] - y[lane]
                r[lane] = v
                nans += np.int32(v != v)
        else:
            for lane in range(lanes):
                v = x[lane] * y[lane]
                r[lane] = v
                nans += np.int32(v != v)
        if nans:  # which NaN: numpy's rule, whatever operand order the compiler picked
            for lane in range(lanes):
                if r[lane] != r[lane]:
                    rb[lane] = nan_rule(np.int64(xb[lane]), np.int64(yb[lane]), np.int64(rb[lane]))
    elif op in (V_MAX, V_MIN):  # IEEE 754-2019 maximum/minimum: -0 < +0, a NaN wins
        for lane in range(lanes):  # (x's if both); the bits move as they are
            a, b = x[lane], y[lane]
            neg = (xb[lane] >> 31) != 0
            take_x = (a > b or (a == b and not neg)) if op == V_MAX else (a < b or (a == b and neg))
            take_x = (take_x and b == b) or a != a
            rb[lane] = xb[lane] if take_x else yb[lane]
    elif op == V_MOV:
        for lane in range(lanes):
            rb[lane] = xb[lane]
    elif op == V_NEG:
        for lane in range(lanes):
            rb[lane] = xb[lane] ^ np.uint32(0x80000000)
    elif op == V_ABS:
        for lane in range(lanes):
            rb[lane] = xb[lane] & np.uint32(0x7FFFFFFF)
    elif op == V_RELU:
        for lane in range(lanes):
            rb[lane] = xb[lane] if (x[lane] > 0 or x[lane] != x[lane]) else np.uint32(0)
    else:
        transcendental(op, x, r, lanes)
        for lane in range(lanes):
            if x[lane] != x[lane]:
                if (nan_mode >> (op - V_EXP)) & 1:
                    rb[lane] = 0x7FC00000
                else:
                    rb[lane] = xb[lane] | np.uint32(0x400000)


@njit
def transcendental(op, x, r, lanes):
    """In float64 from the fp32 input, rounded to fp32 (design.md 10.7); libm's functions."""
    for lane in range(lanes):
        v = np.float64(x[lane])
        if op == V_EXP:
            r[lane] = np.float32(math.exp(v))
        elif op == V_RSQRT:
            r[lane] = np.float32(1.0 / math.sqrt(v))
        elif op == V_TANH:
            r[lane] = np.float32(math.tanh(v))
        else:
            r[lane] = np.float32(math.erf(v))


@njit
def int_op(op, x, y, r, lanes):
    """r = op(x, y) on int32 lane values (numba computes in int64; storing keeps the low 32
    bits, and encoding the low bytes: two's-complement wrap-around as numpy's)."""
    if op == V_ADD:
        for lane in range(lanes):
            r[lane] = x[lane] + y[lane]
    elif op == V_SUB:
        for lane in range(lanes):
            r[lane] = x[lane] - y[lane]
    elif op == V_MUL:
        for lane in range(lanes):
            r[lane] = np.int64(x[lane]) * np.int64(y[lane])
    elif op == V_MAX:
        for lane in range(lanes):
            r[lane] = x[lane] if x[lane] >= y[lane] else y[lane]
    elif op == V_MIN:
        for lane in range(lanes):
            r[lane] = x[lane] if x[lane] <= y[lane] else y[lane]
    elif op == V_MOV:
        for lane in range(lanes):
            r[lane] = x[lane]
    elif op == V_NEG:
        for lane in range(lanes):
            r[lane] = -np.int64(x[lane])
    elif op == V_ABS:
        for lane in range(lanes):
            r[lane] = x[lane] if x[lane] >= 0 else -np.int64(x[lane])
    elif op == V_RELU:
        for lane in range(lanes):
            r[lane] = x[lane] if x[lane] > 0 else 0


@njit
def convert(src, dst, ints, flts, lanes):
    """Cvt.src.dst in place on one lane row (ints and flts view the same memory): the result is
    int32 values (integer dst) or fp32 values (float dst), before dst's rounding. Floats to
    integers round half to even and saturate, NaN -> 0; integers to floats go through fp32."""
    src_int = src in (INT8, INT32)
    if dst in (INT8, INT32):
        lo, hi = (-128, 127) if dst == INT8 else (-2147483648, 2147483647)
        for lane in range(lanes):
            if src_int:
                v = ints[lane]
                ints[lane] = lo if v < lo else (hi if v > hi else v)
            else:
                d = np.rint(np.float64(flts[lane]))
                if d != d:
                    ints[lane] = 0
                elif d < lo:
                    ints[lane] = lo
                elif d > hi:
                    ints[lane] = hi
                else:
                    ints[lane] = np.int64(d)
    elif src_int:
        for lane in range(lanes):
            flts[lane] = np.float32(ints[lane])
