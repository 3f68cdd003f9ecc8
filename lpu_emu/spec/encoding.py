"""Instruction words: encode operand values into the 64-bit word and decode them back.

Both directions are driven by the field table and operand lists of isa/lpu.toml, so the
assembler, the disassembler and the core agree by construction.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lpu_emu.spec.isa import DType, Instruction, Isa, Operand

STREAM_WEST = 1 << 6  # direction bit of a stream code (design.md section 5)
STREAM_INDEX_MASK = STREAM_WEST - 1

OperandValue = int | tuple[int, int]  # mem operands are (bank, addr); everything else an int


def stream_code(index: int, west: bool) -> int:
    return index | (STREAM_WEST if west else 0)


def stream_parts(code: int) -> tuple[int, bool]:
    """(index, west) of a stream code."""
    return code & STREAM_INDEX_MASK, bool(code & STREAM_WEST)


def stream_text(code: int) -> str:
    index, west = stream_parts(code)
    return f"S{index}{'W' if west else 'E'}"


def imm_to_bits(value: int | float, dtype: DType) -> int:
    """An imm32 operand's bits: int32 two's complement for integer dtypes, fp32 for floats."""
    if dtype.kind == "int":
        return int(value) & 0xFFFFFFFF
    return struct.unpack("<I", struct.pack("<f", float(value)))[0]


def bits_to_imm(bits: int, dtype: DType) -> int | float:
    if dtype.kind == "int":
        return bits - (1 << 32) if bits & 0x80000000 else bits
    return struct.unpack("<f", struct.pack("<I", bits))[0]


@dataclass(frozen=True)
class Decoded:
    ins: Instruction
    dtype: DType | None
    dtype2: DType | None
    values: dict[str, OperandValue]  # by operand name; dtype2 operands hold the dtype code


def _put(word: int, isa: Isa, field: str, value: int) -> int:
    f = isa.fields[field]
    if value < 0 or value > f.mask:
        raise ValueError(f"value {value} does not fit field {field} ({f.width} bits)")
    return word | (value << f.lsb)


def _get(word: int, isa: Isa, field: str) -> int:
    f = isa.fields[field]
    return (word >> f.lsb) & f.mask


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value & (1 << (width - 1)) else value


def encode(isa: Isa, ins: Instruction, dtype: DType | None, values: dict[str, OperandValue]) -> int:
    """Pack an instruction; values are range-checked by the assembler (ValueError if not)."""
    word = _put(0, isa, "opcode", ins.opcode)
    if ins.typed:
        if dtype is None:
            raise ValueError(f"{ins.mnemonic} needs a dtype")
        word = _put(word, isa, "dtype", dtype.code)
    for op in ins.operands:
        word = _encode_operand(word, isa, op, values[op.name])
    return word


def _encode_operand(word: int, isa: Isa, op: Operand, value: OperandValue) -> int:
    if op.kind == "mem":
        bank, addr = value  # type: ignore[misc]
        word = _put(word, isa, op.fields[0], bank)
        return _put(word, isa, op.fields[1], addr)
    if op.kind == "simm":
        width = isa.fields[op.fields[0]].width
        if not -(1 << (width - 1)) <= value < (1 << (width - 1)):  # type: ignore[operator]
            raise ValueError(f"value {value} does not fit a signed {width}-bit field")
        value = value & ((1 << width) - 1)  # type: ignore[operator]
    return _put(word, isa, op.fields[0], value)  # type: ignore[arg-type]


def decode(isa: Isa, word: int) -> Decoded:
    """Unpack a word; ValueError for an unknown opcode, dtype, or bits no field explains."""
    word = int(word)
    opcode = _get(word, isa, "opcode")
    ins = isa.by_opcode().get(opcode)
    if ins is None:
        raise ValueError(f"unknown opcode 0x{opcode:02x}")
    by_code = isa.dtype_by_code()
    dtype = None
    used = isa.fields["opcode"].mask << isa.fields["opcode"].lsb
    if ins.typed:
        code = _get(word, isa, "dtype")
        dtype = by_code.get(code)
        if dtype is None or dtype.name not in ins.dtypes:
            raise ValueError(f"{ins.mnemonic}: dtype code {code} is not allowed")
        used |= isa.fields["dtype"].mask << isa.fields["dtype"].lsb
    values: dict[str, OperandValue] = {}
    dtype2 = None
    for op in ins.operands:
        for f in op.fields:
            used |= isa.fields[f].mask << isa.fields[f].lsb
        if op.kind == "mem":
            values[op.name] = (_get(word, isa, op.fields[0]), _get(word, isa, op.fields[1]))
        elif op.kind == "simm":
            values[op.name] = _signed(_get(word, isa, op.fields[0]), isa.fields[op.fields[0]].width)
        else:
            values[op.name] = _get(word, isa, op.fields[0])
        if op.kind == "dtype2":
            dtype2 = by_code.get(values[op.name])  # type: ignore[arg-type]
            if dtype2 is None:
                raise ValueError(f"{ins.mnemonic}: target dtype code {values[op.name]} is unknown")
    if word & ~used:
        raise ValueError(f"{ins.mnemonic}: stray bits 0x{word & ~used:016x} set in the word")
    return Decoded(ins, dtype, dtype2, values)
