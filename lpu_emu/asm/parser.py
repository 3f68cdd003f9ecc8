"""Pass 1: statements of each line into declarations (symbols, tensors, data, instructions).

Nothing here depends on the chip preset, so `.chip` may appear anywhere; every check that needs
the preset or the value of a symbol (forward labels included) waits for pass 2 (assembler.py).

Choices where design.md section 9 is silent:
- Labels, `.equ` constants, tensors and lane maps share one case-sensitive namespace; defining a
  name twice is an error (there is no `.set`). Names of the stream form (`S4E`), names starting
  with `.` (directives) and the float words `inf`, `nan`, `f32` cannot be symbols.
- A tensor name in an expression stands for its base address.
- A label names the issue cycle of the next instruction line (of the same line if it has one);
  a label with no instruction after it is an error.
- `.chip` takes a preset name, bare or in quotes; several `.chip` lines must agree.
- `.values` may be given before or after its `.tensor`; each tensor takes at most one of
  `.values`, `.npy`, `.hex`.
- `.file N, "name"` must number files 0, 1, 2, ... in order; `.loc N, LINE, COL` applies to every
  following instruction until the next `.loc`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lpu_emu.asm.diag import Where, did_you_mean, error
from lpu_emu.asm.expr import Cursor, Expr, describe, parse_expr, parse_value
from lpu_emu.asm.layout import DataDecl, LaneMapDecl, TensorDecl
from lpu_emu.asm.lexer import Token
from lpu_emu.asm.operands import STREAM_RE, Arg, parse_operands
from lpu_emu.asm.source import SrcLine
from lpu_emu.spec import DType, Instruction, Isa

DIRECTIVES = (".chip", ".equ", ".include", ".macro", ".endm", ".tensor", ".values", ".npy",
              ".hex", ".lanemap", ".file", ".loc")
RESERVED = ("inf", "nan", "f32")
KIND_NAMES = {"equ": "constant", "label": "label", "tensor": "tensor", "lanemap": "lane map"}
_CHIP_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass
class SymDef:
    name: str
    kind: str  # "equ" | "label" | "tensor" | "lanemap"
    where: Where
    expr: Expr | None = None  # equ
    index: int = -1  # label: instruction; tensor: TensorDecl; lanemap: LaneMapDecl


@dataclass
class LocDecl:
    file: Expr
    line: Expr
    col: Expr
    where: Where


@dataclass
class FileDecl:
    number: Expr
    name: str
    where: Where


@dataclass
class InstrDecl:
    index: int
    queue: str
    queue_where: Where
    timing: str  # "@" | "+"
    timing_expr: Expr
    ins: Instruction
    mn_where: Where
    dtype: DType | None
    dtype2: DType | None
    args: dict[str, Arg]
    file_id: int
    line: int
    col: int
    loc: LocDecl | None
    queue_text: str = ""  # as written (queue is upper-cased)


class Unit:
    """Everything pass 1 collects from the lines of one program."""

    def __init__(self, isa: Isa, queue_names: frozenset[str], macro_names=()):
        self.isa = isa
        self.queue_names = queue_names
        self.macro_names = macro_names
        self.symbols: dict[str, SymDef] = {}
        self.tensors: list[TensorDecl] = []
        self.data: dict[str, DataDecl] = {}
        self.lanemaps: list[LaneMapDecl] = []
        self.instrs: list[InstrDecl] = []
        self.files: list[FileDecl] = []
        self.chips: list[tuple[str, Where]] = []
        self.pending: list[SymDef] = []
        self.loc: LocDecl | None = None

    # ---- names ----
    def define(self, name: str, kind: str, where: Where, **kw) -> SymDef:
        if name.startswith("."):
            raise error(where, f"'{name}' starts with '.' like a directive and cannot name a "
                        f"{KIND_NAMES[kind]}")
        if STREAM_RE.fullmatch(name):
            raise error(where, f"'{name}' is a stream name and cannot name a {KIND_NAMES[kind]}")
        if name.lower() in RESERVED:
            raise error(where, f"'{name}' is reserved for float immediates and cannot name a "
                        f"{KIND_NAMES[kind]}")
        old = self.symbols.get(name)
        if old is not None:
            raise error(where, f"duplicate symbol '{name}'",
                        f"first defined at {old.where} (as a {KIND_NAMES[old.kind]})")
        sym = SymDef(name, kind, where, **kw)
        self.symbols[name] = sym
        return sym

    def finish(self) -> None:
        if self.pending:
            label = self.pending[0]
            raise error(label.where, f"label '{label.name}' is not followed by an instruction",
                        "a label names the issue cycle of the next instruction line")

    # ---- lines ----
    def feed(self, line: SrcLine) -> None:
        cur = Cursor(line.tokens, line.where)
        while cur.peek().kind == "ident" and cur.peek(1).is_op(":"):
            tok = cur.next()
            cur.next()
            self.pending.append(self.define(tok.text, "label", cur.where(tok)))
        if cur.at_end():
            return
        head = cur.peek()
        if head.kind == "ident" and head.text.startswith("."):
            self._directive(cur, line)
        elif head.kind == "ident" and cur.peek(1).is_op("="):
            cur.next()
            cur.next()
            self.define(head.text, "equ", cur.where(head), expr=self._expr_to_end(cur))
        elif head.kind == "ident" and cur.peek(1).is_op("@", "+"):
            self._instruction(cur, line)
        else:
            self._unknown(cur, head)

    def _unknown(self, cur: Cursor, head: Token) -> None:
        if head.kind == "ident" and head.text.upper() in self.queue_names:
            nxt = cur.peek(1)
            raise cur.fail(nxt, f"missing timing after {head.text}: write @CYCLE or +DELAY before "
                           "the mnemonic")
        if head.kind == "ident" and self.isa.lookup(head.text.split(".")[0]) is not None:
            raise cur.fail(head, f"missing queue before {head.text}",
                           "an instruction line is QUEUE @CYCLE MNEMONIC operands, "
                           "e.g. MEM_W0 @0 Read.int8 x, S0E")
        known = sorted(self.queue_names) + list(self.macro_names)
        hint = did_you_mean(head.text, known, fold_case=True) if head.kind == "ident" else None
        raise cur.fail(head, f"expected an instruction (QUEUE @CYCLE MNEMONIC ...), a directive or "
                       f"a label, got {describe(head)}", hint)

    def _end(self, cur: Cursor, what: str) -> None:
        if not cur.at_end():
            tok = cur.peek()
            raise cur.fail(tok, f"unexpected {describe(tok)} after {what}")

    def _expr_to_end(self, cur: Cursor) -> Expr:
        e = parse_expr(cur)
        self._end(cur, "the expression")
        return e

    def _comma(self, cur: Cursor, what: str) -> None:
        cur.expect(",", what)

    def _instruction(self, cur: Cursor, line: SrcLine) -> None:
        q = cur.next()
        timing = cur.next().text
        texpr = parse_expr(cur)
        mn = cur.peek()
        if mn.kind != "ident":
            raise cur.fail(mn, f"expected a mnemonic after the timing, got {describe(mn)}")
        cur.next()
        ins, dtype, dtype2 = self._mnemonic(cur, mn)
        args = parse_operands(cur, ins, dtype)
        qw = cur.where(q)
        decl = InstrDecl(len(self.instrs), q.text.upper(), qw, timing, texpr, ins, cur.where(mn),
                         dtype, dtype2, args, line.file_id, qw.span.line, qw.span.col, self.loc,
                         q.text)
        for label in self.pending:
            label.index = decl.index
        self.pending = []
        self.instrs.append(decl)

    def _mnemonic(self, cur: Cursor, mn: Token) -> tuple[Instruction, DType | None, DType | None]:
        parts, col = [], mn.col
        for text in mn.text.split("."):
            parts.append((text, cur.where_fn(col, max(1, len(text)))))
            col += len(text) + 1
        name, nwhere = parts[0]
        ins = self.isa.lookup(name)
        if ins is None:
            raise error(nwhere, f"unknown mnemonic '{name}'",
                        did_you_mean(name, [i.mnemonic for i in self.isa.instructions],
                                     fold_case=True))
        dtypes = []
        for text, w in parts[1:]:
            d = self.isa.dtypes.get(text.lower())
            if d is None:
                raise error(w, f"unknown dtype '{text}'",
                            did_you_mean(text, list(self.isa.dtypes), fold_case=True)
                            or f"dtypes: {', '.join(self.isa.dtypes)}")
            dtypes.append((d, w))
        allowed = ", ".join(ins.dtypes)
        if not ins.typed:
            if dtypes:
                raise error(dtypes[0][1], f"{ins.mnemonic} takes no dtype",
                            f"syntax: {ins.syntax()}")
            return ins, None, None
        if not dtypes:
            raise error(cur.where(mn), f"{ins.mnemonic} needs a dtype: {ins.mnemonic}.<dtype> with "
                        f"<dtype> one of {allowed}")
        dtype, dw = dtypes[0]
        if dtype.name not in ins.dtypes:
            raise error(dw, f"{ins.mnemonic} does not take dtype {dtype.name}",
                        f"allowed: {allowed}")
        want = 2 if ins.has_dtype2 else 1
        if len(dtypes) < want:
            raise error(cur.where(mn), f"{ins.mnemonic} needs a target dtype: {ins.syntax()}",
                        f"dtypes: {', '.join(self.isa.dtypes)}")
        if len(dtypes) > want:
            raise error(dtypes[want][1], f"{ins.mnemonic} takes {want} dtype(s), got {len(dtypes)}",
                        f"syntax: {ins.syntax()}")
        return ins, dtype, dtypes[1][0] if want == 2 else None

    # ---- directives ----
    def _directive(self, cur: Cursor, line: SrcLine) -> None:
        tok = cur.next()
        name = tok.text.lower()
        handler = {
            ".chip": self._chip, ".equ": self._equ, ".tensor": self._tensor,
            ".values": self._values, ".npy": self._npy, ".hex": self._hex,
            ".lanemap": self._lanemap, ".file": self._file, ".loc": self._loc,
        }.get(name)
        if handler is None:
            raise cur.fail(tok, f"unknown directive '{tok.text}'",
                           did_you_mean(tok.text, DIRECTIVES, fold_case=True))
        handler(cur, line)

    def _chip(self, cur: Cursor, line: SrcLine) -> None:
        first = cur.peek()
        if first.kind == "str":
            cur.next()
            name = str(first.value)
            last = first
        else:
            toks = []
            while not cur.at_end():
                toks.append(cur.next())
            if not toks:
                raise cur.fail(first, "expected a chip name after .chip")
            last = toks[-1]
            name = line.text[first.col : last.end]
        where = cur.where_between(first, last)
        if not _CHIP_NAME.fullmatch(name):
            raise error(where, f"invalid chip name '{name}'")
        self._end(cur, "the chip name")
        self.chips.append((name, where))

    def _equ(self, cur: Cursor, line: SrcLine) -> None:
        name = cur.expect_ident("a constant name after .equ")
        self._comma(cur, "after the constant name")
        self.define(name.text, "equ", cur.where(name), expr=self._expr_to_end(cur))

    def _tensor(self, cur: Cursor, line: SrcLine) -> None:
        name = cur.expect_ident("a tensor name after .tensor")
        self._comma(cur, "after the tensor name")
        dt = cur.expect_ident("a dtype")
        dtype = self.isa.dtypes.get(dt.text.lower())
        if dtype is None:
            raise cur.fail(dt, f"unknown dtype '{dt.text}'",
                           did_you_mean(dt.text, list(self.isa.dtypes), fold_case=True)
                           or f"dtypes: {', '.join(self.isa.dtypes)}")
        self._comma(cur, "after the dtype")
        cur.expect("(", "to start the shape, e.g. (320) or (4, 320)")
        shape = [parse_expr(cur)]
        while cur.peek().is_op(","):
            cur.next()
            if cur.peek().is_op(")"):
                break
            shape.append(parse_expr(cur))
        cur.expect(")", "to close the shape")
        self._comma(cur, "after the shape")
        first = cur.expect_ident("a MEM slice (e.g. MEM_W0) or a range (MEM_W0..MEM_W3)")
        last = None
        end_tok = first
        if cur.peek().is_op(".."):
            cur.next()
            last_tok = cur.expect_ident("the last MEM slice of the range")
            last = (last_tok.text, cur.where(last_tok))
            end_tok = last_tok
        range_where = cur.where_between(first, end_tok)
        self._comma(cur, "after the slice(s)")
        bank = parse_expr(cur)
        self._comma(cur, "after the bank")
        addr = parse_expr(cur)
        self._end(cur, "the address")
        decl = TensorDecl(name.text, cur.where(name), dtype, shape, (first.text, cur.where(first)),
                          last, range_where, bank, addr)
        self.define(name.text, "tensor", decl.name_where, index=len(self.tensors))
        self.tensors.append(decl)

    def _data(self, cur: Cursor, line: SrcLine, kind: str) -> DataDecl:
        directive = cur.tokens[cur.pos - 1]
        name = cur.expect_ident(f"a tensor name after .{kind}")
        old = self.data.get(name.text)
        if old is not None:
            raise cur.fail(directive, f"tensor '{name.text}' already has data "
                           f"(.{old.kind} at {old.where})",
                           "give at most one of .values, .npy, .hex per tensor")
        decl = DataDecl(kind, name.text, cur.where(name), cur.where(directive),
                        directory=line.directory)
        self.data[name.text] = decl
        return decl

    def _values(self, cur: Cursor, line: SrcLine) -> None:
        decl = self._data(cur, line, "values")
        while not cur.at_end():
            self._comma(cur, "between values")
            decl.values.append(parse_value(cur))

    def _strings(self, cur: Cursor, what: str) -> list[tuple[str, Where]]:
        out = []
        while True:
            self._comma(cur, f"before the {what}")
            tok = cur.peek()
            if tok.kind != "str":
                raise cur.fail(tok, f"expected the {what} in quotes, got {describe(tok)}")
            cur.next()
            out.append((str(tok.value), cur.where(tok)))
            if cur.at_end():
                return out

    def _npy(self, cur: Cursor, line: SrcLine) -> None:
        decl = self._data(cur, line, "npy")
        decl.strings = self._strings(cur, "file name")
        if len(decl.strings) > 1:
            raise error(decl.strings[1][1], ".npy takes one file name")
        decl.path = decl.strings[0][0]

    def _hex(self, cur: Cursor, line: SrcLine) -> None:
        decl = self._data(cur, line, "hex")
        decl.strings = self._strings(cur, "hex data")

    def _lanemap(self, cur: Cursor, line: SrcLine) -> None:
        name = cur.expect_ident("a lane map name after .lanemap")
        entries = []
        while not cur.at_end():
            self._comma(cur, "between lane indices")
            entries.append(parse_expr(cur))
        decl = LaneMapDecl(name.text, cur.where(name), entries)
        self.define(name.text, "lanemap", decl.where, index=len(self.lanemaps))
        self.lanemaps.append(decl)

    def _file(self, cur: Cursor, line: SrcLine) -> None:
        first = cur.tokens[cur.pos - 1]
        number = parse_expr(cur)
        self._comma(cur, "after the file number")
        tok = cur.peek()
        if tok.kind != "str":
            raise cur.fail(tok, f"expected the file name in quotes, got {describe(tok)}")
        cur.next()
        self._end(cur, "the file name")
        self.files.append(FileDecl(number, str(tok.value), cur.where_between(first, tok)))

    def _loc(self, cur: Cursor, line: SrcLine) -> None:
        first = cur.tokens[cur.pos - 1]
        f = parse_expr(cur)
        self._comma(cur, "after the file number")
        ln = parse_expr(cur)
        self._comma(cur, "after the line")
        col = parse_expr(cur)
        self._end(cur, "the column")
        self.loc = LocDecl(f, ln, col, cur.where_between(first, cur.tokens[cur.pos - 1]))
