"""Views of the chip at one cycle: pure rich renderables over (Traced, cycle).

Each view computes what it shows from the index when rich renders it (at the width rich gives it)
and never prints. What changed this step is marked by a character, not only a style (`*` for a
value placed or a lane changed, `>` for a line issuing now, `^` for a position issuing), so every
view reads the same with NO_COLOR and in a screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from lpu_emu.core import events as E
from lpu_emu.core import plan as P
from lpu_emu.spec.encoding import stream_text
from lpu_emu.trace.index import WEST
from lpu_emu.trace.listing import cycle_lines, issues_at
from lpu_emu.trace.model import Traced

LABEL = 8  # width of the row labels of the chip strip
KIND_LETTER = {"VXM": "V", "MXM": "X", "SXM": "S", "C2C": "C", "MEM": "M"}  # in priority order
BOLD = "bold"


def header(t: Traced, cycle: int, what: str = "") -> Text:
    """`cycle N` (always the first line of a block), then the command it answers."""
    return Text(f"cycle {cycle}" + (f"  ({what})" if what else ""), style=BOLD)


@dataclass
class StepView:
    """What happens at this cycle: one line per event, as `--text` lists them."""

    t: Traced
    cycle: int

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = cycle_lines(self.t, self.cycle)
        n = len(issues_at(self.t, self.cycle))
        viol = sum(1 for v in self.t.violations if v.cycle == self.cycle)
        summary = f"{n} issue{'s' * (n != 1)}, {len(lines)} event{'s' * (len(lines) != 1)}"
        if viol:
            summary += f", {viol} violation{'s' * (viol != 1)}"
        yield Text(f"{summary} (of cycles 0..{self.t.last_cycle})")
        for line in lines:
            mark = "! " if line.startswith("violation") else "  "
            yield Text(mark + line, style=BOLD if mark == "! " else "")


@dataclass
class ChipView:
    """The chip as a west-to-east strip: slice kinds, the positions issuing now, and one row per
    stream carrying a value (`>` east, `<` west, `*` placed this cycle). `zoom` positions share a
    column; the default fits the whole chip in the width, `at` centres a window at zoom 1."""

    t: Traced
    cycle: int
    at: int | None = None
    zoom: int | None = None

    def window(self, cols: int) -> tuple[int, int, int]:
        """(first position, zoom, number of columns)."""
        n = self.t.index.positions
        zoom = self.zoom or (1 if self.at is not None else max(1, -(-n // cols)))
        span = min(n, cols * zoom)
        centre = self.at if self.at is not None else n // 2
        first = min(max(0, centre - span // 2), n - span)
        return first, zoom, -(-span // zoom)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t, cycle = self.t, self.cycle
        first, zoom, cols = self.window(max(8, options.max_width - LABEL))
        last = min(t.index.positions, first + cols * zoom) - 1
        per = f"{zoom} positions per column" if zoom > 1 else "1 position per column"
        yield Text(f"chip {t.chip.name}: positions {first}..{last} of 0..{t.index.positions - 1}"
                   f", {per}")
        col = lambda p: (p - first) // zoom  # noqa: E731
        inside = lambda p: first <= p <= last  # noqa: E731
        yield Text("pos".ljust(LABEL) + _ruler(first, zoom, cols))
        kinds = [" "] * cols
        rank = {k: i for i, k in enumerate(KIND_LETTER)}
        best = [len(rank)] * cols
        for s in t.chip.slices:
            if inside(s.position) and rank[s.kind] < best[col(s.position)]:
                best[col(s.position)] = rank[s.kind]
                kinds[col(s.position)] = KIND_LETTER[s.kind]
        yield Text("slices".ljust(LABEL) + "".join(kinds))
        issued = ["."] * cols
        for i in issues_at(t, cycle).tolist():
            p = int(t.plan.issues[i, P.POS])
            if inside(p):
                issued[col(p)] = "^"
        yield Text("issued".ljust(LABEL) + "".join(issued), style=BOLD if "^" in issued else "")
        s = t.index.streams_at(cycle)
        codes = sorted(set(s[:, 0].tolist()), key=lambda c: (c & WEST, c))
        for code in codes:
            rows = s[(s[:, 0] == code) & (s[:, 1] >= first) & (s[:, 1] <= last)]
            if not len(rows):
                continue
            glyphs = ["."] * cols
            arrow = "<" if code & WEST else ">"
            for x, placed in zip(rows[:, 1].tolist(), rows[:, 6].tolist(), strict=True):
                j = col(x)
                if placed == cycle:
                    glyphs[j] = "*"
                elif glyphs[j] != "*":
                    glyphs[j] = arrow
            yield Text(stream_text(code).ljust(LABEL) + "".join(glyphs))
        if not len(codes):
            yield Text("streams".ljust(LABEL) + "nothing on any stream at this cycle")
        yield Text("M=MEM V=VXM X=MXM S=SXM C=C2C  ^ issues now  >/< flowing east/west  "
                   "* placed now")


def _ruler(first: int, zoom: int, cols: int) -> str:
    out = [" "] * cols
    j = 0
    while j < cols:
        label = str(first + j * zoom)
        if j + len(label) <= cols:
            out[j:j + len(label)] = label
        j += 10
    return "".join(out)


@dataclass
class SourceView:
    """The source listing around the lines issuing at this cycle, each marked `>` (and bold),
    with its comments (on a compiled program, the graph op each line comes from)."""

    t: Traced
    cycle: int
    context: int = 3
    height: int = 16

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = self.t
        issues = issues_at(t, self.cycle).tolist()
        where = [t.src(i) for i in issues]
        note = ""
        if not where:
            nxt = int(np.searchsorted(t.plan.issues[:, P.CYCLE], self.cycle, "right"))
            if nxt >= len(t.plan.issues):
                yield Text(f"nothing issues at cycle {self.cycle} or after")
                return
            where = [t.src(nxt)]
            note = f"nothing issues at cycle {self.cycle}; the next issue is at cycle " \
                   f"{int(t.plan.issues[nxt, P.CYCLE])}"
        f = where[0][0]
        now = {n for g, n in where if g == f} if not note else set()
        lines = t.source.lines(f)
        name = t.program.files[f] if 0 <= f < len(t.program.files) else "?"
        if not lines:
            yield Text(f"{name}: source not available; issuing: "
                       + ", ".join(f"{t.queue_name(int(t.plan.issues[i, P.QUEUE]))} "
                                   f"{t.mnemonic(i)}" for i in issues))
            return
        lo_line = min(n for _, n in where)
        hi_line = max(n for _, n in where)
        lo = max(1, lo_line - self.context)
        hi = min(len(lines), max(hi_line + self.context, lo + self.height - 1))
        if hi - lo + 1 > self.height:
            hi = lo + self.height - 1
        yield Text(note or f"{name}: lines issuing at cycle {self.cycle} marked >")
        width = len(str(hi))
        for n in range(lo, hi + 1):
            mark = ">" if n in now else " "
            yield Text(f"{mark} {n:>{width}}  {lines[n - 1]}", style=BOLD if mark == ">" else "",
                       no_wrap=True, overflow="ellipsis")


@dataclass
class QueueView:
    """One queue: its last issues up to this cycle and its next ones, whether its unit is busy."""

    t: Traced
    cycle: int
    queue: int
    around: int = 3

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t, s = self.t, self.t.chip.slices[self.queue]
        rows = np.flatnonzero(t.plan.issues[:, P.QUEUE] == self.queue)
        cyc = t.plan.issues[rows, P.CYCLE]
        k = int(np.searchsorted(cyc, self.cycle, "right"))
        busy = [int(cyc[j] + t.plan.issues[rows[j], P.OCC]) for j in range(max(0, k - 1), k)]
        state = f"busy until cycle {busy[0]}" if busy and busy[0] > self.cycle else "idle"
        yield Text(f"queue {s.name} ({s.kind}, position {s.position}): {len(rows)} "
                   f"issue{'s' * (len(rows) != 1)}, "
                   f"{state} at cycle {self.cycle}")
        shown = range(max(0, k - self.around), min(len(rows), k + self.around))
        if not len(rows):
            yield Text("  issues nothing in this program")
        for j in shown:
            i = int(rows[j])
            c = int(cyc[j])
            mark = ">" if c == self.cycle else " "
            yield Text(f"{mark} cycle {c:<7} {t.instruction(i)}  ({t.where(i)})",
                       style=BOLD if mark == ">" else "", no_wrap=True, overflow="ellipsis")


@dataclass
class MxmView:
    """MXM planes: rows loaded since the last IW, installed weights, the last ABC and ACC."""

    t: Traced
    cycle: int
    plane: int | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = self.t
        ev = t.index.ev
        mx = ev[np.isin(ev[:, 1], (E.LW, E.IW, E.ABC, E.ACC))]
        planes = [self.plane] if self.plane is not None else sorted(set(mx[:, 3].tolist()))
        if not planes:
            yield Text("no MXM plane is used by this program")
            return
        for p in planes:
            yield from self._plane(t, mx[(mx[:, 3] == p) & (mx[:, 0] <= self.cycle)], p)

    def _plane(self, t: Traced, ev: np.ndarray, p: int):
        iw = ev[ev[:, 1] == E.IW]
        since = int(iw[-1, 0]) if len(iw) else -1
        lw = ev[(ev[:, 1] == E.LW) & (ev[:, 0] > since) & (ev[:, 4] >= 0)]
        now = ev[ev[:, 0] == self.cycle]
        mark = "*" if len(now) else " "
        yield Text(f"{mark} {t.plane_name(p)}: {len(lw)} weight rows buffered since the last IW",
                   style=BOLD if len(now) else "")
        if len(iw):
            lands = int(iw[-1, 4])
            state = "installed" if lands <= self.cycle else "installing"
            yield Text(f"    weights {state} at cycle {lands} ({int(iw[-1, 5])} rows, IW at "
                       f"cycle {since})")
        else:
            yield Text("    no weights installed yet")
        for kind, word in ((E.ABC, "ABC"), (E.ACC, "ACC")):
            last = ev[ev[:, 1] == kind]
            if len(last):
                r = last[-1]
                yield Text(f"    last {word} at cycle {int(r[0])}: accumulator {int(r[4])}"
                           f" ({t.where(int(r[2]))})")
        for r in now:
            yield Text(f"    now: {E.KIND_NAMES[int(r[1])]} ({t.where(int(r[2]))})")
