"""The assembler: source text to a `Program` (design.md sections 6 and 9).

Pass 1 (source.py, parser.py) reads every line, with includes and macros expanded, into
declarations; pass 2 (here) fixes the chip preset, places tensors, builds lane maps and data
segments, resolves every issue cycle (forward labels included, resolve.py), checks and encodes
each instruction against the ISA and the preset (operands.py), and builds the source map.
Every user mistake is an `AsmError` located at the offending token.

Choices where design.md is silent:
- An instruction's source position is its queue token (1-based line and column; columns past
  32767 are stored as 32767, the limit of src_col). Lines from a macro map to the macro body.
- Program.files: without `.file` directives, every source file read (the main file first, then
  includes in the order first read). With `.file` directives (as the disassembler writes them)
  the table is exactly those names, plus the real file of any instruction no `.loc` covers.
- Queues issue in order: after a `Repeat n, d` on a queue, the next instruction of that queue
  must come after the last repetition (issue + (n-1)*d), which is also what `+D` counts from.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from lpu_emu.asm.diag import Where, did_you_mean, error
from lpu_emu.asm.expr import INT64_MAX, Expr
from lpu_emu.asm.layout import lanemap_values, place_tensor, tensor_segments
from lpu_emu.asm.operands import Issue, PlacedTensor, operand_value
from lpu_emu.asm.parser import KIND_NAMES, LocDecl, Unit
from lpu_emu.asm.resolve import Resolver, is_repeat
from lpu_emu.asm.source import Preprocessor, decode_source
from lpu_emu.errors import AsmError
from lpu_emu.files import FileRefused, read_bounded
from lpu_emu.gc_pause import gc_paused
from lpu_emu.program import LaneMap, Program, Tensor
from lpu_emu.spec import Chip, chip_names, default_chip_name, default_isa, get_chip
from lpu_emu.spec.encoding import encode

INT16_MAX = (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def assemble_text(text: str, filename: str = "<input>", chip: str | None = None,
                  base_dir: Path | None = None, sandbox: bool = False) -> Program:
    """Assemble source text. `filename` is how messages and Program.files name it; relative
    `.include`/`.npy` paths resolve against `base_dir` (default: the directory of `filename`
    when it names a file, else the working directory). `sandbox`: every `.include` and `.npy`
    must resolve inside that directory's tree (for graders and servers assembling untrusted
    sources)."""
    pseudo = filename.startswith("<")
    if base_dir is not None:
        directory, display_dir = Path(base_dir), str(base_dir)
    elif pseudo:
        directory, display_dir = Path.cwd(), ""
    else:
        directory, display_dir = Path(filename).parent, os.path.dirname(filename)
    key: object = ("<text>", filename)
    if not pseudo:
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            key = Path(filename).resolve()
    return _assemble(text, filename, chip, directory, key, display_dir, sandbox)


def assemble_file(path: str | os.PathLike, chip: str | None = None,
                  sandbox: bool = False) -> Program:
    """Assemble a source file (UTF-8; an invalid byte is an error at its line and column; a
    binary file, a device or a file over files.MAX_SOURCE_BYTES is refused before parsing).
    `sandbox`: as assemble_text, the tree being the file's directory."""
    display = os.fspath(path)
    p = Path(display)
    try:
        data = read_bounded(p)
        key = p.resolve()
    except (FileRefused, OSError, RuntimeError) as exc:
        raise AsmError(f"cannot read {display}: {getattr(exc, 'strerror', None) or exc}") from None
    text = decode_source(data, display)
    return _assemble(text, display, chip, p.parent, key, os.path.dirname(display), sandbox)


def _all_queue_names() -> frozenset[str]:
    return frozenset(s.name for name in chip_names() for s in get_chip(name).slices)


def _assemble(text: str, display: str, chip: str | None, directory: Path, key: object,
              display_dir: str, sandbox: bool = False) -> Program:
    with gc_paused():  # a long source is a heap of small acyclic objects (lpu_emu/gc_pause.py)
        return _assemble_unit(text, display, chip, directory, key, display_dir, sandbox)


def _assemble_unit(text: str, display: str, chip: str | None, directory: Path, key: object,
                   display_dir: str, sandbox: bool) -> Program:
    if chip is not None and chip.lower() not in chip_names():
        raise AsmError(f"unknown chip '{chip}'", hint=f"chips: {', '.join(chip_names())}")
    isa = default_isa()
    queues = _all_queue_names()
    root = directory.resolve() if sandbox else None
    pre = Preprocessor(queues, root)
    unit = Unit(isa, queues, pre.macros.keys())
    for line in pre.run(text, display, key, directory, display_dir):
        unit.feed(line)
    unit.finish()
    preset = get_chip(_pick_chip(unit, chip))
    return _Pass2(unit, pre.files, preset, root).program()


def _pick_chip(unit: Unit, requested: str | None) -> str:
    names = chip_names()
    for name, where in unit.chips:
        if name.lower() not in names:
            raise error(where, f"unknown chip '{name}'",
                        did_you_mean(name, names, fold_case=True) or f"chips: {', '.join(names)}")
    if unit.chips:
        first, fwhere = unit.chips[0]
        for name, where in unit.chips[1:]:
            if name.lower() != first.lower():
                raise error(where, f".chip {name} contradicts .chip {first} at {fwhere}")
        if requested is not None and requested.lower() != first.lower():
            raise error(fwhere, f"the source is for chip {first.lower()}, but chip "
                        f"{requested.lower()} was requested",
                        "remove the .chip line or request the same chip")
        return first.lower()
    return (requested or default_chip_name()).lower()


class _Pass2:
    """Pass 2 over the declarations; also the operand checks' Context."""

    def __init__(self, unit: Unit, files: list[str], chip: Chip, sandbox: Path | None = None):
        self.unit = unit
        self.sandbox = sandbox  # .npy files must resolve inside this tree (layout._npy)
        self.real_files = files
        self.chip = chip
        self.isa = unit.isa
        self.res = Resolver(unit)
        self.slices = {s.name: s for s in chip.slices}
        self.placed: dict[str, PlacedTensor] = {}
        self.maps: dict[str, tuple[int, tuple[int, ...]]] = {}

    # ---- Context ----
    def eval(self, expr: Expr) -> int:
        return self.res.eval(expr)

    def tensor(self, name: str, where: Where,
               hint: str | None = "an SRAM operand is BANK:ADDR or a tensor") -> PlacedTensor:
        if name in self.placed:
            return self.placed[name]
        raise self._not_a(name, where, "tensor", hint)

    def lanemap(self, name: str, where: Where) -> tuple[int, tuple[int, ...]]:
        if name in self.maps:
            return self.maps[name]
        raise self._not_a(name, where, "lane map", None)

    def _not_a(self, name: str, where: Where, kind: str, hint: str | None) -> AsmError:
        sym = self.unit.symbols.get(name)
        if sym is None:
            pool = self.placed if kind == "tensor" else self.maps
            return error(where, f"undefined {kind} '{name}'", did_you_mean(name, pool) or hint)
        return error(where, f"'{name}' is a {KIND_NAMES[sym.kind]}, not a {kind}", hint)

    # ---- the program ----
    def program(self) -> Program:
        unit = self.unit
        placed: list[PlacedTensor] = []
        for decl in unit.tensors:
            placed.append(place_tensor(self, decl, placed))
        self.placed = {t.name: t for t in placed}
        lanemaps = []
        for k, decl in enumerate(unit.lanemaps):
            values = lanemap_values(self, decl)
            lanemaps.append(LaneMap(decl.name, values))
            self.maps[decl.name] = (k, values)
        for data in unit.data.values():
            self.tensor(data.name, data.name_where, f"declare it with .tensor {data.name}, ...")
        segments = []
        for t in placed:
            if t.name in unit.data:
                segments.extend(tensor_segments(self, t, unit.data[t.name]))
        cycles, queues, words = self._instructions()
        self._check_constants()
        files, src_file, src_line, src_col = self._source_map()
        return Program(
            chip=self.chip.name,
            cycle=np.array(cycles, dtype=np.int64),
            queue=np.array(queues, dtype=np.int16),
            word=np.array(words, dtype=np.uint64),
            src_file=np.array(src_file, dtype=np.int16),
            src_line=np.array(src_line, dtype=np.int32),
            src_col=np.array(src_col, dtype=np.int16),
            files=tuple(files),
            symbols=tuple(Tensor(t.name, t.dtype.name, t.shape, t.slices, t.bank, t.addr)
                          for t in placed),
            segments=tuple(segments),
            lanemaps=tuple(lanemaps),
        )

    def _instructions(self) -> tuple[list[int], list[int], list[int]]:
        chip, res = self.chip, self.res
        large = tuple(int(k) for k in chip.p("vxm_large_alus"))
        cycles, queues, words = [], [], []
        for d in self.unit.instrs:
            sl = self.slices.get(d.queue)
            if sl is None:
                raise error(d.queue_where, f"unknown queue '{d.queue_text}' on {chip.name}",
                            did_you_mean(d.queue, self.slices, fold_case=True))
            ins = d.ins
            if ins.slice not in ("ICU", sl.kind):
                raise error(d.mn_where, f"{ins.mnemonic} is a {ins.slice} instruction; {sl.name} "
                            f"is a {sl.kind} queue",
                            f"{ins.slice} queues on {chip.name}: "
                            + _queue_examples(chip, ins.slice))
            if ins.alu == "large" and (sl.kind != "VXM" or sl.unit not in large):
                raise error(d.queue_where, f"{ins.mnemonic} needs a large ALU; {sl.name} is not "
                            f"one on {chip.name}",
                            "large ALUs: " + ", ".join(f"VXM{k}" for k in large))
            cycle = res.value(("cycle", d.index), d.timing_expr.where)
            if cycle < 0:
                raise error(d.timing_expr.where, f"issue cycle {cycle} is negative")
            if cycle > INT64_MAX:
                raise error(d.timing_expr.where, f"issue cycle {cycle} does not fit in int64")
            prev = res.prev[d.index]
            if prev is not None:
                p = self.unit.instrs[prev]
                last = res.value(("last", prev), p.queue_where)
                if cycle <= last:
                    what = (f"the last repetition of the Repeat at {p.queue_where}"
                            if is_repeat(p.ins)
                            else f"the previous {sl.name} instruction at {p.queue_where}")
                    raise error(d.timing_expr.where, f"{sl.name} issues in order: cycle {cycle} is "
                                f"not after cycle {last}, {what}")
            if is_repeat(ins):
                if prev is None:
                    raise error(d.mn_where, f"{ins.mnemonic} has nothing to repeat: it is the "
                                f"first instruction on {sl.name}")
                if self.unit.instrs[prev].ins.slice == "ICU":
                    raise error(d.mn_where, f"{ins.mnemonic} must follow a non-ICU instruction on "
                                f"{sl.name}, not {self.unit.instrs[prev].ins.mnemonic}")
            issue = Issue(ins, d.dtype, d.dtype2, sl.name)
            values = {op.name: operand_value(self, issue, op, d.args.get(op.name))  # type: ignore[arg-type]
                      for op in ins.operands}
            try:
                word = encode(self.isa, ins, d.dtype, values)
            except ValueError as exc:  # every operand was range-checked; this is a last guard
                raise error(d.mn_where, f"cannot encode {ins.mnemonic}: {exc}") from None
            cycles.append(cycle)
            queues.append(sl.index)
            words.append(word)
        return cycles, queues, words

    def _check_constants(self) -> None:
        """Every `.equ` evaluates, used or not: an error in an unused constant (`1/0`, an
        undefined name) is reported, in source order, not silently kept."""
        for name, sym in self.unit.symbols.items():
            if sym.kind == "equ":
                self.res.value(("sym", name), sym.where)

    def _source_map(self) -> tuple[list[str], list[int], list[int], list[int]]:
        unit = self.unit
        declared = bool(unit.files)
        table = [] if declared else list(self.real_files)
        for k, fd in enumerate(unit.files):
            n = self.eval(fd.number)
            if n != k:
                raise error(fd.number.where,
                            f".file numbers count up from 0: expected {k}, got {n}")
            table.append(fd.name)
        locs: dict[int, tuple[int, int, int]] = {}
        src_file, src_line, src_col = [], [], []
        for d in unit.instrs:
            if d.loc is not None:
                if id(d.loc) not in locs:
                    locs[id(d.loc)] = self._loc(d.loc, len(table))
                f, ln, col = locs[id(d.loc)]
            else:
                ln, col = d.line, min(d.col, INT16_MAX)
                f = d.file_id
                if declared:
                    name = self.real_files[d.file_id]
                    if name not in table:
                        table.append(name)
                    f = table.index(name)
            src_file.append(f)
            src_line.append(ln)
            src_col.append(col)
        if len(table) > INT16_MAX + 1:
            raise AsmError(f"too many source files ({len(table)}); at most {INT16_MAX + 1}")
        return table, src_file, src_line, src_col

    def _loc(self, loc: LocDecl, nfiles: int) -> tuple[int, int, int]:
        f, ln, col = self.eval(loc.file), self.eval(loc.line), self.eval(loc.col)
        if not 0 <= f < nfiles:
            raise error(loc.file.where, f"file {f} has no .file directive"
                        if self.unit.files else f"file {f} does not exist (there are {nfiles})")
        if not INT32_MIN <= ln <= INT32_MAX:
            raise error(loc.line.where, f"line {ln} does not fit in int32")
        if not -INT16_MAX - 1 <= col <= INT16_MAX:
            raise error(loc.col.where, f"column {col} does not fit in int16")
        return f, ln, col


def _queue_examples(chip: Chip, kind: str) -> str:
    names = [s.name for s in chip.slices if s.kind == kind]
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, ..., {names[-1]}"
