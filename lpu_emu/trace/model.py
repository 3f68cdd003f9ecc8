"""Traced: one program run with the event log on, and what the views need to name things.

The run is lenient (violations are recorded as events and the run goes on with what silicon would
see), so a person can look past the first schedule bug; `violations` lists them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpu_emu.core import plan as P
from lpu_emu.core.plan import Plan
from lpu_emu.core.result import Violation
from lpu_emu.program import Program, Tensor
from lpu_emu.spec import Chip, Isa
from lpu_emu.trace.index import TraceIndex

_REPEAT = re.compile(r"(?i)(?<![\w.])repeat(?!\w)")


def split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a source line; `;` in a string literal does not start a comment."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


@dataclass
class Source:
    """The text of a program's source files, read once; a file that is gone reads as empty (the
    views then fall back to the decoded mnemonic)."""

    files: tuple[str, ...]
    base: Path | None = None  # the program file's folder, tried when a path is relative
    _lines: dict[int, list[str]] = field(default_factory=dict)

    def lines(self, f: int) -> list[str]:
        if f not in self._lines:
            self._lines[f] = self._read(f)
        return self._lines[f]

    def _read(self, f: int) -> list[str]:
        if not 0 <= f < len(self.files):
            return []
        name = Path(self.files[f])
        for path in (name, (self.base / name) if self.base else None,
                     (self.base / name.name) if self.base else None):
            if path is not None and path.is_file():
                return path.read_text(encoding="utf-8", errors="replace").splitlines()
        return []

    def line(self, f: int, n: int) -> str:
        lines = self.lines(f)
        return lines[n - 1] if 1 <= n <= len(lines) else ""


@dataclass(eq=False)
class Traced:
    """A traced run: Program, Chip, Plan, event log, final SRAM, violations, and the index."""

    program: Program
    chip: Chip
    isa: Isa
    plan: Plan
    index: TraceIndex
    violations: list[Violation]
    source: Source
    name: str = "program"
    _names: dict = field(default_factory=dict, repr=False)  # memoised texts, by what they depend on

    @classmethod
    def run(cls, program: Program, chip: Chip | str | None = None, *,
            inputs: dict[str, np.ndarray] | None = None, name: str = "program",
            base: Path | None = None) -> Traced:
        """Run `program` with tracing on (lenient) on the engine `auto` picks (a small program
        on the reference interpreter: no numba start-up; both cores record the same log) and
        index the log."""
        from lpu_emu.core.plan import make_plan
        from lpu_emu.core.run import run
        from lpu_emu.spec import default_isa

        result = run(program, chip, inputs=inputs, lenient=True, trace=True)
        isa = default_isa()
        plan = make_plan(program, result.chip, isa)
        index = TraceIndex(result.events, result.sram, plan)
        return cls(program, result.chip, isa, plan, index, result.violations,
                   Source(program.files, base), name)

    # ---- names ----
    @property
    def last_cycle(self) -> int:
        return self.index.last_cycle

    def queue_name(self, q: int) -> str:
        return self.chip.slices[q].name

    def mnemonic(self, issue: int) -> str:
        """`Add.int8`: the issue's mnemonic with its dtype suffixes (one list for all issues,
        made on first use)."""
        if "mnemonics" not in self._names:
            by_op, names, text = self.isa.by_opcode(), self.dtype_names, {}
            cols = self.plan.issues[:, [P.OP, P.DTYPE, P.DTYPE2]].tolist()
            for key in set(map(tuple, cols)):
                text[key] = ".".join([by_op[key[0]].mnemonic] + [names[c] for c in key[1:] if c])
            self._names["mnemonics"] = [text[tuple(k)] for k in cols]
        return self._names["mnemonics"][issue]

    @property
    def dtype_names(self) -> dict[int, str]:
        if "dtypes" not in self._names:
            self._names["dtypes"] = {d.code: d.name for d in self.isa.dtypes.values()}
        return self._names["dtypes"]

    def src_index(self, issue: int) -> int:
        """The program instruction an issue comes from (a Repeat's line for a repetition)."""
        if "src" not in self._names:
            self._names["src"] = self.plan.issues[:, P.SRC].tolist()
        return self._names["src"][issue]

    def issue_queue(self, issue: int) -> int:
        if "queue" not in self._names:
            self._names["queue"] = self.plan.issues[:, P.QUEUE].tolist()
        return self._names["queue"][issue]

    def src(self, issue: int) -> tuple[int, int]:
        """(file index, line) of the program instruction an issue comes from."""
        i = int(self.plan.issues[issue, P.SRC])
        return int(self.program.src_file[i]), int(self.program.src_line[i])

    def where(self, issue: int) -> str:
        key = ("w", self.src_index(issue))
        if key not in self._names:
            self._names[key] = self.program.where(key[1])
        return self._names[key]

    def instruction(self, issue: int) -> str:
        """The issue as written: mnemonic and operands from its source line (the decoded
        mnemonic when the source is not at hand), plus the line's comment (on compiled programs,
        the graph op it comes from)."""
        key = ("i", self.src_index(issue), self.mnemonic(issue))
        if key not in self._names:
            self._names[key] = self._instruction(issue)
        return self._names[key]

    def _instruction(self, issue: int) -> str:
        code, comment = split_comment(self.source.line(*self.src(issue)))
        base = self.mnemonic(issue).split(".")[0]
        m = re.search(rf"(?i)(?<![\w.]){re.escape(base)}(?:\.\w+)*(?!\w)", code)
        if m:
            text = " ".join(code[m.start():].split())
        elif _REPEAT.search(code):
            text = f"{self.mnemonic(issue)} by Repeat"
        else:
            text = self.mnemonic(issue)
        return f"{text}  ; {comment}" if comment else text

    def _of_kind(self, kind: str) -> list[str]:
        key = ("kind", kind)
        if key not in self._names:
            self._names[key] = [s.name for s in self.chip.slices if s.kind == kind]
        return self._names[key]

    def mem_name(self, unit: int) -> str:
        """The MEM slice with ordinal `unit` (the first axis of the SRAM array)."""
        return self._of_kind("MEM")[unit]

    def mem_unit(self, name: str) -> int | None:
        names = [n.lower() for n in self._of_kind("MEM")]
        return names.index(name.lower()) if name.lower() in names else None

    def plane_name(self, plane: int) -> str:
        return self._of_kind("MXM")[plane]

    def violation_of(self, issue: int, kind: int) -> Violation | None:
        name = P.VIOLATION_NAMES.get(kind)
        return next((v for v in self.violations if v.issue == issue and v.kind == name), None)

    def tensor(self, name: str) -> Tensor | None:
        return self.program.symbol(name)

    def slice_named(self, name: str):
        return next((s for s in self.chip.slices if s.name.lower() == name.lower()), None)
