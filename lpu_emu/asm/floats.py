"""fp32 immediates: decimal text to the exact fp32 bits, and fp32 bits back to the shortest text.

A float immediate is stored as fp32 bits (design.md section 5). Going decimal -> double -> fp32
rounds twice and can miss the correctly rounded fp32 by one ulp, so the literal is converted
exactly (as a Fraction) and rounded once, to nearest even, like C's strtof. The disassembler prints
the shortest decimal that this conversion maps back to the same bits (numpy's float32 repr), and
`f32(0x...)` for NaNs other than the canonical quiet one (`nan` = 0x7fc00000).
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

F32_INF = 0x7F800000
F32_NAN = 0x7FC00000
F32_SIGN = 0x80000000
_LITERAL = re.compile(r"([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")


def fraction_to_f32_bits(q: Fraction) -> int:
    """Round a rational to fp32, nearest even; overflow gives infinity (as strtof)."""
    sign = F32_SIGN if q < 0 else 0
    q = abs(q)
    if q == 0:
        return sign
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if q < Fraction(2) ** e:
        e -= 1  # now 2**e <= q < 2**(e+1)
    if e < -126:  # subnormal: units of 2**-149
        m = _round_even(q * Fraction(2) ** 149)
        return sign | m  # m == 2**23 spills into the exponent field: the smallest normal
    m = _round_even(q * Fraction(2) ** (23 - e))
    if m == 1 << 24:
        m, e = 1 << 23, e + 1
    if e > 127:
        return sign | F32_INF
    return sign | ((e + 127) << 23) | (m - (1 << 23))


def _round_even(q: Fraction) -> int:
    whole, rest = divmod(q.numerator, q.denominator)
    twice = 2 * rest
    if twice > q.denominator or (twice == q.denominator and whole & 1):
        whole += 1
    return whole


def decimal_to_f32_bits(text: str) -> int:
    """An unsigned decimal float literal (as the lexer accepts it) to fp32 bits."""
    m = _LITERAL.fullmatch(text)
    if m is None:
        raise ValueError(f"not a float literal: {text!r}")
    whole, frac, exp_text = m.group(1), m.group(2) or "", m.group(3) or "0"
    digits = (whole + frac).lstrip("0")
    if not digits:
        return 0
    if len(exp_text.lstrip("+-").lstrip("0")) > 6:  # |exponent| >= 10**6: certainly 0 or inf
        return 0 if exp_text.startswith("-") else F32_INF
    exp10 = int(exp_text) - len(frac)
    magnitude = exp10 + len(digits)  # value is in [10**(magnitude-1), 10**magnitude)
    if magnitude - 1 > 39:
        return F32_INF
    if magnitude < -46:  # below 1e-46 < 2**-150: rounds to zero
        return 0
    value = Fraction(int(digits)) * (Fraction(10) ** exp10)
    return fraction_to_f32_bits(value)


def int_to_f32_bits(value: int) -> int:
    return fraction_to_f32_bits(Fraction(value))


def f32_bits_to_float(bits: int) -> float:
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


def f32_text(bits: int) -> str:
    """The text the assembler reads back as exactly these fp32 bits."""
    bits &= 0xFFFFFFFF
    neg = "-" if bits & F32_SIGN else ""
    if bits & F32_INF == F32_INF:
        if bits & 0x7FFFFF == 0:
            return f"{neg}inf"
        return "nan" if bits == F32_NAN else f"f32(0x{bits:08x})"
    text = str(np.array([bits], dtype=np.uint32).view(np.float32)[0])
    body = text[1:] if text.startswith("-") else text
    try:
        back = decimal_to_f32_bits(body)
    except ValueError:
        back = -1
    if back != bits & ~F32_SIGN:
        return f"f32(0x{bits:08x})"
    return text
