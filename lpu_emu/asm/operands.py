"""Instruction operands, driven by the ISA: parse them (pass 1), check and encode them (pass 2).

Parsing follows `Instruction.operands` from isa/lpu.toml in order (a `dtype2` operand is the
mnemonic's second suffix, not written among the operands). Checking needs the chip preset and
every symbol, so it happens once the whole source has been read:
- streams: index < streams_per_direction, aligned to the group width, group inside the streams;
- SRAM: bank < mem_banks, address < mem_addresses_per_bank; a tensor operand must name a tensor
  in the instruction's slice, and its offset must stay within the tensor's addresses there;
- integers: the field width, the operand's `min`, and preset bounds chosen per field below
  (`acc` < mxm_accumulators, `shift` < lanes); `link` < c2c_links_per_edge; LW's `rows` at most
  the rows of one load group (mxm_load_streams / width(dtype)), which is also its default;
- lane maps: a defined `.lanemap`; `Permute` needs a permutation (its semantics in the ISA say so).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from lpu_emu.asm.diag import Where, error
from lpu_emu.asm.expr import (
    Cursor,
    Expr,
    FloatValue,
    Value,
    describe,
    float_bits,
    literal,
    parse_expr,
    parse_value,
)
from lpu_emu.asm.floats import int_to_f32_bits
from lpu_emu.spec import Chip, DType, Instruction, Isa, Operand
from lpu_emu.spec.encoding import STREAM_INDEX_MASK, OperandValue, stream_code
from lpu_emu.spec.isa import ACC_DTYPE, SG16

STREAM_RE = re.compile(r"[sS]([0-9]+)([eEwW])")
# preset bounds on integer fields (chosen): field -> (parameter, what one value is, plural noun)
PRESET_BOUNDS = {
    "acc": ("mxm_accumulators", "accumulator", "accumulators per MXM plane"),
    "shift": ("lanes", "shift", "lanes"),
}
PERMUTATION_MNEMONICS = ("Permute",)
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True)
class StreamArg:
    index: int
    west: bool
    where: Where


@dataclass(frozen=True)
class MemArg:
    where: Where
    bank: Expr | None = None  # BANK:ADDR form
    addr: Expr | None = None
    tensor: str | None = None  # tensor form: x, x[k], x+k
    tensor_where: Where | None = None
    offset: Expr | None = None


@dataclass(frozen=True)
class IntArg:
    expr: Expr
    where: Where


@dataclass(frozen=True)
class GroupArg:
    """An omitted operand whose default is the rows of a whole load group (chip- and dtype-
    dependent, so resolved in pass 2)."""

    where: Where


@dataclass(frozen=True)
class ImmArg:
    value: Value
    where: Where


@dataclass(frozen=True)
class MapArg:
    name: str
    where: Where


Arg = StreamArg | MemArg | IntArg | ImmArg | MapArg | GroupArg


def stream_match(tok) -> re.Match | None:
    return STREAM_RE.fullmatch(tok.text) if tok.kind == "ident" else None


# ---------------------------------------------------------------------------- pass 1: parse

def parse_operands(cur: Cursor, ins: Instruction, dtype: DType | None) -> dict[str, Arg]:
    """The operands after the mnemonic, by operand name (defaults filled in)."""
    ops = [op for op in ins.operands if op.kind != "dtype2"]
    required = sum(1 for op in ops if op.default is None)
    hint = f"syntax: {ins.syntax()}"
    args: dict[str, Arg] = {}
    given = 0
    for op in ops:
        if given and not cur.at_end():
            sep = cur.peek()
            if not sep.is_op(","):
                raise cur.fail(sep, f"expected ',' between operands, got {describe(sep)}", hint)
            cur.next()
            if cur.at_end():
                raise cur.fail(cur.peek(), "expected an operand after ','", hint)
        if cur.at_end():
            if op.default is not None:
                w = cur.where(cur.peek())
                args[op.name] = (GroupArg(w) if isinstance(op.default, str)
                                 else IntArg(literal(op.default, w), w))
                continue
            count = str(required) if required == len(ops) else f"{required} to {len(ops)}"
            raise cur.fail(cur.peek(), f"{ins.mnemonic} expects {count} operand(s), got {given}",
                           hint)
        args[op.name] = _parse_one(cur, ins, op, dtype, hint)
        given += 1
    if not cur.at_end():
        tok = cur.peek()
        if tok.is_op(","):
            extra = cur.peek(1)
            raise cur.fail(extra if extra.kind != "eol" else tok,
                           f"too many operands: {ins.mnemonic} takes {len(ops)}", hint)
        raise cur.fail(tok, f"unexpected {describe(tok)} after the operands", hint)
    return args


def _parse_one(cur: Cursor, ins: Instruction, op: Operand, dtype: DType | None, hint: str) -> Arg:
    tok = cur.peek()
    stream = stream_match(tok)
    what = f"operand {op.name} of {ins.mnemonic}"
    if op.kind == "stream":
        if not stream:
            raise cur.fail(tok, f"{what} must be a stream (S<i>E or S<i>W), got {describe(tok)}",
                           hint)
        cur.next()
        digits = stream.group(1)
        index = int(digits) if len(digits) <= 9 else 10**9
        return StreamArg(index, stream.group(2) in "wW", cur.where(tok))
    if stream:
        kinds = {"mem": "an SRAM address (BANK:ADDR or a tensor)", "lanemap": "a lane map name",
                 "imm32": "an immediate"}
        raise cur.fail(tok, f"{what} must be {kinds.get(op.kind, 'an integer')}, got stream "
                       f"'{tok.text}'", hint)
    if op.kind == "mem":
        return _parse_mem(cur, what, hint)
    if op.kind == "imm32":
        value = parse_value(cur)
        where = value.where
        if isinstance(value, FloatValue) and dtype is not None and dtype.kind == "int":
            raise error(where, f"{ins.mnemonic}.{dtype.name} takes an integer immediate, "
                        f"not a float", "float immediates go with float dtypes")
        return ImmArg(value, where)
    if op.kind == "lanemap":
        if tok.kind != "ident":
            raise cur.fail(tok, f"{what} must be a lane map name, got {describe(tok)}", hint)
        cur.next()
        return MapArg(tok.text, cur.where(tok))
    expr = parse_expr(cur)  # uimm, simm, link
    return IntArg(expr, expr.where)


def _parse_mem(cur: Cursor, what: str, hint: str) -> MemArg:
    first = cur.peek()
    depth, j = 0, cur.pos
    colon = False
    while True:
        t = cur.tokens[j]
        if t.kind == "eol" or (depth == 0 and t.is_op(",")):
            break
        if t.is_op("(", "["):
            depth += 1
        elif t.is_op(")", "]"):
            depth -= 1
        elif depth == 0 and t.is_op(":"):
            colon = True
            break
        j += 1
    if colon:
        bank = parse_expr(cur)
        cur.expect(":", "between bank and address")
        addr = parse_expr(cur)
        return MemArg(cur.where_between(first, cur.tokens[cur.pos - 1]), bank=bank, addr=addr)
    if first.kind != "ident":
        raise cur.fail(first, f"{what} must be BANK:ADDR or a tensor (x, x[k], x+k), got "
                       f"{describe(first)}", hint)
    cur.next()
    offset = None
    if cur.peek().is_op("["):
        cur.next()
        offset = parse_expr(cur)
        cur.expect("]", f"to close {first.text}[")
    elif cur.peek().is_op("+", "-"):
        sign = cur.next()
        offset = parse_expr(cur)
        if sign.text == "-":
            offset = Expr(offset.rpn + (("un", "-", cur.where(sign)),), offset.where)
    return MemArg(cur.where_between(first, cur.tokens[cur.pos - 1]), tensor=first.text,
                  tensor_where=cur.where(first), offset=offset)


# ---------------------------------------------------------------------------- pass 2: check

@dataclass(frozen=True)
class PlacedTensor:
    """A tensor after layout: `extent` addresses in each of its slices from `addr`."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    slices: tuple[str, ...]
    bank: int
    addr: int
    extent: int
    where: Where

    def slices_text(self) -> str:
        return self.slices[0] if len(self.slices) == 1 else f"{self.slices[0]}..{self.slices[-1]}"


class Context(Protocol):
    """What operand checks need from the assembler's second pass."""

    isa: Isa
    chip: Chip

    def eval(self, expr: Expr) -> int: ...
    def tensor(self, name: str, where: Where) -> PlacedTensor: ...
    def lanemap(self, name: str, where: Where) -> tuple[int, tuple[int, ...]]: ...


@dataclass(frozen=True)
class Issue:
    """The instruction an operand belongs to, as pass 2 sees it."""

    ins: Instruction
    dtype: DType | None
    dtype2: DType | None
    queue: str


def operand_value(ctx: Context, issue: Issue, op: Operand, arg: Arg) -> OperandValue:
    """The checked value of one operand, ready for `encoding.encode`."""
    if op.kind == "dtype2":
        assert issue.dtype2 is not None
        return issue.dtype2.code
    if isinstance(arg, StreamArg):
        return _stream(ctx, issue, op, arg)
    if isinstance(arg, MemArg):
        return _mem(ctx, issue, op, arg)
    if isinstance(arg, ImmArg):
        return _imm(ctx, issue, arg)
    if isinstance(arg, MapArg):
        return _lanemap(ctx, issue, op, arg)
    if isinstance(arg, GroupArg):
        return group_rows(ctx.chip, issue.dtype)
    assert isinstance(arg, IntArg)
    return _integer(ctx, issue, op, arg)


def _stream(ctx: Context, issue: Issue, op: Operand, arg: StreamArg) -> int:
    streams = int(ctx.chip.p("streams_per_direction"))
    d = "W" if arg.west else "E"
    name = f"S{arg.index}{d}"
    if op.width == "dtype":
        width, why = (issue.dtype.width, issue.dtype.name) if issue.dtype else (1, "one stream")
    elif op.width == "dtype2":
        assert issue.dtype2 is not None
        width, why = issue.dtype2.width, issue.dtype2.name
    elif op.width == "acc":
        acc = ctx.isa.dtypes[ACC_DTYPE.get(issue.dtype.name if issue.dtype else "", "fp32")]
        width, why = acc.width, f"the {acc.name} accumulator"
    elif op.width == "sg16":
        width, why = SG16, f"{issue.ins.mnemonic}'s stream group"
    elif op.width == "load":
        width, why = ctx.chip.mxm_load_streams, "an MXM load group: mxm_load_streams"
    else:
        width, why = 1, "one stream"
    if arg.index >= streams:
        raise error(arg.where, f"stream {name} does not exist: {ctx.chip.name} has {streams} "
                    f"streams per direction (S0{d}..S{streams - 1}{d})")
    if arg.index % width:
        raise error(arg.where, f"{name} cannot start a {width}-stream group ({why}): "
                    f"the index must be a multiple of {width}")
    if arg.index + width > streams:
        raise error(arg.where, f"the {width}-stream group {name}..S{arg.index + width - 1}{d} "
                    f"runs past S{streams - 1}{d}")
    if arg.index > STREAM_INDEX_MASK:
        raise error(arg.where, f"stream {name} does not fit the "
                    f"{STREAM_INDEX_MASK.bit_length()}-bit stream index")
    return stream_code(arg.index, arg.west)


def check_bank_addr(ctx: Context, bank: int, addr: int, bank_where: Where, addr_where: Where,
                    fields: tuple[str, str] = ("bank", "addr")) -> None:
    """Bank and address inside the preset's MEM slice (and inside the instruction fields)."""
    chip = ctx.chip
    banks = int(chip.p("mem_banks"))
    addrs = int(chip.p("mem_addresses_per_bank"))
    if not 0 <= bank < banks:
        raise error(bank_where, f"bank {bank} does not exist: MEM slices of {chip.name} have "
                    f"{banks} banks (0..{banks - 1})")
    if not 0 <= addr < addrs:
        raise error(addr_where, f"address {addr} is out of range: MEM slices of {chip.name} have "
                    f"{addrs} addresses per bank (0..{addrs - 1})")
    for value, fname, where in ((bank, fields[0], bank_where), (addr, fields[1], addr_where)):
        f = ctx.isa.fields[fname]
        if value > f.mask:
            raise error(where, f"{fname} {value} does not fit its {f.width}-bit field "
                        f"(0..{f.mask})")


def _mem(ctx: Context, issue: Issue, op: Operand, arg: MemArg) -> tuple[int, int]:
    fields = (op.fields[0], op.fields[1])
    if arg.tensor is None:
        assert arg.bank is not None and arg.addr is not None
        bank, addr = ctx.eval(arg.bank), ctx.eval(arg.addr)
        check_bank_addr(ctx, bank, addr, arg.bank.where, arg.addr.where, fields)
        return bank, addr
    assert arg.tensor_where is not None
    t = ctx.tensor(arg.tensor, arg.tensor_where)
    if issue.queue not in t.slices:
        raise error(arg.tensor_where, f"tensor '{t.name}' is not in {issue.queue}: it is in "
                    f"{t.slices_text()}", f"'{t.name}' is defined at {t.where}")
    k = ctx.eval(arg.offset) if arg.offset is not None else 0
    if not 0 <= k < t.extent:
        raise error(arg.where, f"{t.name}[{k}] is outside tensor '{t.name}': it spans {t.extent} "
                    f"address(es) in {issue.queue} ({t.name}[0]..{t.name}[{t.extent - 1}])")
    check_bank_addr(ctx, t.bank, t.addr + k, arg.where, arg.where, fields)
    return t.bank, t.addr + k


def _integer(ctx: Context, issue: Issue, op: Operand, arg: IntArg) -> int:
    f = ctx.isa.fields[op.fields[0]]
    v = ctx.eval(arg.expr)
    mn = issue.ins.mnemonic
    if op.kind == "simm":
        lo, hi = -(1 << (f.width - 1)), (1 << (f.width - 1)) - 1
        if not lo <= v <= hi:
            raise error(arg.where, f"{mn} {op.name} = {v} does not fit its {f.width}-bit signed "
                        f"field ({lo}..{hi})")
        return v
    if op.kind == "link":
        links = int(ctx.chip.p("c2c_links_per_edge"))
        if not 0 <= v < links:
            raise error(arg.where, f"link {v} does not exist: {ctx.chip.name} has {links} C2C "
                        f"links per edge (0..{links - 1})")
    if v < op.min:
        raise error(arg.where, f"{mn} {op.name} must be at least {op.min}, got {v}")
    if op.name == "rows" and any(o.width == "load" for o in issue.ins.operands):
        limit = group_rows(ctx.chip, issue.dtype)
        if v > limit:
            assert issue.dtype is not None
            raise error(arg.where, f"{mn} rows = {v} is out of range: a load group of "
                        f"{ctx.chip.name} ({ctx.chip.mxm_load_streams} streams) holds {limit} "
                        f"{issue.dtype.name} rows (1..{limit})")
    bound = PRESET_BOUNDS.get(op.fields[0])
    if bound is not None:
        param, noun, plural = bound
        limit = int(ctx.chip.p(param))
        if v >= limit:
            raise error(arg.where, f"{noun} {v} is out of range: {ctx.chip.name} has {limit} "
                        f"{plural} (0..{limit - 1})")
    if v > f.mask:
        raise error(arg.where, f"{mn} {op.name} = {v} does not fit its {f.width}-bit field "
                    f"({op.min}..{f.mask})")
    return v


def group_rows(chip: Chip, dtype: DType | None) -> int:
    """Rows of dtype in one MXM load group: mxm_load_streams / width(dtype)."""
    return chip.mxm_load_streams // (dtype.width if dtype else 1)


def _imm(ctx: Context, issue: Issue, arg: ImmArg) -> int:
    dtype = issue.dtype
    value = arg.value
    if dtype is None or dtype.kind == "int":
        assert isinstance(value, Expr)
        v = ctx.eval(value)
        if not INT32_MIN <= v <= INT32_MAX:
            raise error(arg.where, f"immediate {v} does not fit int32 ({INT32_MIN}..{INT32_MAX})")
        return v & 0xFFFFFFFF
    if isinstance(value, FloatValue):
        return float_bits(value, ctx_lookup(ctx))
    return int_to_f32_bits(ctx.eval(value))


def ctx_lookup(ctx: Context):
    """A symbol lookup for `float_bits`, evaluated through the context."""
    def lookup(name: str, where: Where) -> int:
        return ctx.eval(Expr((("sym", name, where),), where))
    return lookup


def _lanemap(ctx: Context, issue: Issue, op: Operand, arg: MapArg) -> int:
    index, values = ctx.lanemap(arg.name, arg.where)
    f = ctx.isa.fields[op.fields[0]]
    if index > f.mask:
        raise error(arg.where, f"lane map '{arg.name}' is number {index}; the {f.width}-bit map "
                    f"field holds 0..{f.mask}")
    if issue.ins.mnemonic in PERMUTATION_MNEMONICS:
        lanes = ctx.chip.lanes
        counts = Counter(values)
        for lane in range(lanes):
            c = counts.get(lane, 0)
            if c != 1:
                problem = f"lane {lane} is missing" if c == 0 else f"lane {lane} appears {c} times"
                raise error(arg.where, f"lane map '{arg.name}' is not a permutation of the {lanes} "
                            f"lanes: {problem}",
                            f"{issue.ins.mnemonic} needs every lane exactly once; Distribute "
                            "allows repeats and -1")
    return index
