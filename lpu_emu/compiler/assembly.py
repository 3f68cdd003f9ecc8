"""A compiled program as readable assembly: every instruction on its own line with its queue,
issue cycle and, as a comment, the graph op it comes from.

The text is exact: assembling it (`lpu asm`, `assemble_file`) gives the same Program, byte for
byte, as `program_for(name)` (the data travel as `.hex`, the source map is the text's own lines),
where `name` is the path the text is assembled under.
"""

from __future__ import annotations

import bisect
import dataclasses

import numpy as np

from lpu_emu.asm.disassembler import _Disassembler
from lpu_emu.program import Program

HEADER = "; compiled by lpu-emu: {name} for {chip}, {mode} mode, {n} instructions, {cycles} cycles"


class _Text(_Disassembler):
    """The disassembler's tensor, data and operand text, with a fast address -> tensor index."""

    def index(self) -> None:
        self._where: dict[tuple[str, int], tuple[list[int], list[tuple[int, str]]]] = {}
        for t in self.p.symbols:
            for s in t.slices:
                starts, items = self._where.setdefault((s, t.bank), ([], []))
                k = bisect.bisect(starts, t.addr)
                starts.insert(k, t.addr)
                items.insert(k, (t.addr + self.extents[t.name], t.name))

    def _tensor_at(self, slice_name: str, bank: int, addr: int) -> str | None:
        starts, items = self._where.get((slice_name, bank), ([], []))
        k = bisect.bisect(starts, addr) - 1
        if k >= 0 and addr < items[k][0]:
            return f"{items[k][1]}[{addr - starts[k]}]"
        return None


def assembly(program: Program, notes: list[str], note_ix: np.ndarray, name: str, mode: str,
             cycles: int) -> tuple[str, Program]:
    """(text, the Program that assembling the text under `name` gives)."""
    d = _Text(program)
    head = [HEADER.format(name=name, chip=program.chip, mode=mode, n=len(program.word),
                          cycles=cycles), f".chip {d.chip.name}"]
    head += d._tensors()
    for m in program.lanemaps:
        values = list(m.values)
        while values and values[-1] == -1:
            values.pop()
        head.append(f".lanemap {m.name}" + "".join(f", {int(v)}" for v in values))
    d.index()
    rows = [(*d.fields(i), notes[int(note_ix[i])]) for i in range(len(program.word))]
    widths = [max((len(r[k]) for r in rows), default=0) for k in range(4)]
    body = []
    for queue, cycle, mn, ops, note in rows:
        line = (f"{queue:<{widths[0]}}  {cycle:<{widths[1]}}  {mn:<{widths[2]}}  "
                f"{ops:<{widths[3]}}  ; {note}")
        body.append(f"        {line}".rstrip())
    first = len(head) + 1
    n = len(program.word)
    exact = dataclasses.replace(
        program, files=(name,), src_file=np.zeros(n, dtype=np.int16),
        src_line=(first + np.arange(n)).astype(np.int32),
        src_col=np.full(n, 9, dtype=np.int16), meta={})
    return "\n".join(head + body) + "\n", exact
