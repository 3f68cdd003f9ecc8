"""The disassembler: a Program back to assembly that reassembles to the same bytes.

It writes `.chip`, every source file as `.file N, "name"`, every tensor as `.tensor` (plus `.hex`
with its SRAM image when it has data; one quoted string per vector), every lane map, and
every instruction with its queue and absolute `@cycle`, preceded by `.loc` whenever the source
position changes, so that `assemble_text(disassemble(p)) == p` byte for byte for any program the
assembler produces. SRAM operands inside a tensor of the instruction's slice print as `name[k]`,
others as `BANK:ADDR`; float immediates print as the shortest decimal that reads back as the same
fp32 bits (`f32(0x...)` for NaN payloads).

A program that cannot be written as assembly (an undecodable word, a queue or chip that does not
exist, data outside every tensor, an unprintable name) is a `LoadError`; it can only come from a
damaged or foreign `.lpx`. Values the preset rejects but the syntax can express (an address past
the bank, say) are printed as they are, and the assembler reports them on the way back.
"""

from __future__ import annotations

import math
import re

from lpu_emu.asm.floats import f32_text
from lpu_emu.asm.operands import STREAM_RE
from lpu_emu.asm.parser import RESERVED
from lpu_emu.errors import LoadError, SpecError, UsageError
from lpu_emu.program import Program, Segment
from lpu_emu.spec import Chip, default_isa, get_chip
from lpu_emu.spec.encoding import decode, stream_text

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_QUOTE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def disassemble(program: Program) -> str:
    """Assembly text for a program (see the module doc for what it guarantees)."""
    return _Disassembler(program).text()


def quote(s: str) -> str:
    """A string literal the lexer reads back as s."""
    out = []
    for ch in s:
        code = ord(ch)
        if ch in _QUOTE:
            out.append(_QUOTE[ch])
        elif ch.isprintable() and not 0xD800 <= code <= 0xDFFF:
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class _Disassembler:
    def __init__(self, program: Program):
        self.p = program
        self.name = str(program.meta.get("path", "<program>"))
        self.isa = default_isa()
        self.chip = self._chip()
        self.extents: dict[str, int] = {}  # tensor name -> addresses per slice

    def fail(self, message: str) -> LoadError:
        return LoadError(f"{self.name}: cannot disassemble: {message}",
                         hint="the .lpx was not written by this lpu-emu's assembler")

    def _chip(self) -> Chip:
        try:
            return get_chip(self.p.chip)
        except (UsageError, SpecError, TypeError):
            raise self.fail(f"unknown chip {self.p.chip!r}") from None

    def _ident(self, name: str, what: str) -> str:
        if (not isinstance(name, str) or not _NAME.fullmatch(name) or STREAM_RE.fullmatch(name)
                or name.lower() in RESERVED):
            raise self.fail(f"{what} name {name!r} is not a valid assembly name")
        return name

    def text(self) -> str:
        p = self.p
        n = len(p.word)
        if any(len(a) != n for a in (p.cycle, p.queue, p.src_file, p.src_line, p.src_col)):
            raise self.fail("the instruction arrays differ in length")
        out = ["; disassembled by lpu-emu", f".chip {self.chip.name}"]
        out += [f".file {i}, {quote(f)}" for i, f in enumerate(p.files)]
        out += self._tensors()
        for m in p.lanemaps:
            values = list(m.values)
            while values and values[-1] == -1:
                values.pop()
            out.append(f".lanemap {self._ident(m.name, 'lane map')}"
                       + "".join(f", {int(v)}" for v in values))
        out += self._instructions()
        return "\n".join(out) + "\n"

    # ---- tensors and data ----
    def _tensors(self) -> list[str]:
        segs: dict[tuple[str, int, int], Segment] = {}
        for s in self.p.segments:
            segs.setdefault((s.slice, s.bank, s.addr), s)
        used: set[int] = set()
        out = []
        for t in self.p.symbols:
            self._ident(t.name, "tensor")
            dtype = self.isa.dtypes.get(t.dtype)
            if dtype is None or not t.shape or not t.slices:
                raise self.fail(f"tensor {t.name!r} has no valid dtype, shape or slices")
            for s in t.slices:
                self._ident(s, "slice")
            where = t.slices[0] if len(t.slices) == 1 else f"{t.slices[0]}..{t.slices[-1]}"
            shape = ", ".join(str(d) for d in t.shape)
            out.append(f".tensor {t.name}, {dtype.name}, ({shape}), {where}, {t.bank}, {t.addr}")
            vectors = math.prod(t.shape[:-1]) if all(d >= 1 for d in t.shape) else 0
            extent = vectors if len(t.slices) > 1 else vectors * dtype.width
            self.extents[t.name] = extent
            found = [segs.get((s, t.bank, t.addr)) for s in t.slices]
            if all(f is None for f in found):
                continue
            size = extent * self.chip.lanes
            if any(f is None or len(f.data) != size for f in found) or size == 0:
                raise self.fail(f"the data segments of tensor {t.name!r} do not match its layout")
            used.update(id(f) for f in found)
            image = b"".join(f.data for f in found)  # type: ignore[union-attr]
            step = self.chip.lanes  # one quoted string per vector
            chunks = [image[k : k + step].hex() for k in range(0, len(image), step)]
            out.append(f".hex {t.name}, " + ", ".join(f'"{c}"' for c in chunks))
        for s in self.p.segments:
            if id(s) not in used:
                raise self.fail(f"the data segment at {s.slice} bank {s.bank} address {s.addr} "
                                "belongs to no tensor")
        return out

    def _tensor_at(self, slice_name: str, bank: int, addr: int) -> str | None:
        for t in self.p.symbols:
            inside = t.addr <= addr < t.addr + self.extents[t.name]
            if slice_name in t.slices and t.bank == bank and inside:
                return f"{t.name}[{addr - t.addr}]"
        return None

    # ---- instructions ----
    def _instructions(self) -> list[str]:
        p = self.p
        rows: list[tuple[str | None, tuple[str, str, str, str]]] = []
        last_loc = None
        for i in range(len(p.word)):
            loc = (int(p.src_file[i]), int(p.src_line[i]), int(p.src_col[i]))
            loc_line = None
            if loc != last_loc:
                loc_line = f".loc {loc[0]}, {loc[1]}, {loc[2]}"
                last_loc = loc
            rows.append((loc_line, self.fields(i)))
        widths = [max((len(r[1][k]) for r in rows), default=0) for k in range(3)]
        out = []
        for loc_line, (queue, cycle, mn, ops) in rows:
            if loc_line:
                out.append(loc_line)
            row = f"{queue:<{widths[0]}}  {cycle:<{widths[1]}}  {mn:<{widths[2]}}  {ops}"
            out.append(f"        {row}".rstrip())
        return out

    def fields(self, i: int) -> tuple[str, str, str, str]:
        """Instruction i as (queue, @cycle, mnemonic with its dtypes, operands)."""
        p, chip = self.p, self.chip
        q = int(p.queue[i])
        if not 0 <= q < len(chip.slices):
            raise self.fail(f"instruction {i}: queue {q} does not exist on {chip.name}")
        queue = chip.slices[q].name
        word = int(p.word[i])
        try:
            dec = decode(self.isa, word)
        except ValueError as exc:
            raise self.fail(f"instruction {i}: word 0x{word:016x}: {exc}") from None
        mn = dec.ins.mnemonic
        if dec.dtype is not None:
            mn += f".{dec.dtype.name}"
        if dec.dtype2 is not None:
            mn += f".{dec.dtype2.name}"
        ops = ", ".join(self._operand(op, dec, queue) for op in dec.ins.operands
                        if op.kind != "dtype2")
        return queue, f"@{int(p.cycle[i])}", mn, ops

    def _operand(self, op, dec, queue: str) -> str:
        value = dec.values[op.name]
        if op.kind == "stream":
            return stream_text(value)
        if op.kind == "mem":
            bank, addr = value
            return self._tensor_at(queue, bank, addr) or f"{bank}:{addr}"
        if op.kind == "imm32":
            if dec.dtype is not None and dec.dtype.kind == "float":
                return f32_text(value)
            return str(value - (1 << 32) if value & 0x80000000 else value)
        if op.kind == "lanemap":
            if value >= len(self.p.lanemaps):
                raise self.fail(f"lane map {value} has no .lanemap")
            return self._ident(self.p.lanemaps[value].name, "lane map")
        return str(value)

