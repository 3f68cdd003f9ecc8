"""Session: where a person is in a traced run (the cycle) and what they want to stop at.

`run(line)` parses one command line and returns its block: a list of renderables whose first is
always `cycle N  (command)`; an error is one line in the block and the session goes on. The
interactive UI, --script files and stdin all go through here, so they understand the same words.
Moving (step, back, goto, continue, reverse-continue) only changes `cycle`: the views compute
everything else from the index, so going back N cycles costs what going forward does.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from lpu_emu.trace.breakpoints import Breakpoint, find_slice, make_breakpoint, tensor_keys
from lpu_emu.trace.commands import COMMANDS, Command, CommandError, parse
from lpu_emu.trace.model import Traced
from lpu_emu.trace.views import (
    ChipView,
    MxmView,
    QueueView,
    SourceView,
    StepView,
    header,
)
from lpu_emu.trace.views_data import SramView, StreamView, TensorView


class Session:
    """The cursor (cycle), the breakpoints, and the chip view's window."""

    def __init__(self, traced: Traced, cycle: int = 0) -> None:
        self.t = traced
        self.cycle = cycle
        self.breakpoints: list[Breakpoint] = []
        self.numbered = 0
        self.done = False
        self.errors = 0
        self.chip_at: int | None = None
        self.chip_zoom: int | None = None

    # ---- the one entry point ----
    def run(self, line: str) -> list[RenderableType] | None:
        """The block for one command line (None for a blank line or a comment)."""
        try:
            cmd = parse(line)
        except CommandError as err:
            self.errors += 1
            return [header(self.t, self.cycle, line.strip()), Text(f"error: {err}")]
        if cmd is None:
            return None
        try:
            body = getattr(self, "_" + cmd.name.replace("-", "_"))(cmd)
        except CommandError as err:
            self.errors += 1
            body = [Text(f"error: {err}")]
        return [header(self.t, self.cycle, cmd.text), *body]

    def goto(self, cycle: int) -> None:
        self.cycle = min(max(0, cycle), self.t.last_cycle)

    # ---- moving ----
    def _step(self, cmd: Command) -> list[RenderableType]:
        return self._move(self.cycle + cmd.args[0])

    def _back(self, cmd: Command) -> list[RenderableType]:
        return self._move(self.cycle - cmd.args[0])

    def _goto(self, cmd: Command) -> list[RenderableType]:
        if cmd.args[0] > self.t.last_cycle:
            raise CommandError(f"goto: cycle {cmd.args[0]} is past the end of the run "
                               f"(cycles 0..{self.t.last_cycle})")
        return self._move(cmd.args[0])

    def _move(self, cycle: int) -> list[RenderableType]:
        note = []
        if cycle > self.t.last_cycle:
            note = [Text(f"the run ends at cycle {self.t.last_cycle}")]
        elif cycle < 0:
            note = [Text("the run starts at cycle 0")]
        self.goto(cycle)
        return [*note, StepView(self.t, self.cycle)]

    def _continue(self, cmd: Command) -> list[RenderableType]:
        hits = [(c, b) for b in self.breakpoints if (c := b.next_after(self.cycle)) is not None]
        if not hits:
            self.goto(self.t.last_cycle)
            return [Text("no breakpoint ahead: at the last cycle"),
                    StepView(self.t, self.cycle)]
        return self._stop_at(min(c for c, _ in hits), [b for _, b in hits])

    def _reverse_continue(self, cmd: Command) -> list[RenderableType]:
        hits = [(c, b) for b in self.breakpoints if (c := b.last_before(self.cycle)) is not None]
        if not hits:
            self.goto(0)
            return [Text("no breakpoint behind: at cycle 0"), StepView(self.t, self.cycle)]
        return self._stop_at(max(c for c, _ in hits), [b for _, b in hits])

    def _stop_at(self, cycle: int, candidates: list[Breakpoint]) -> list[RenderableType]:
        self.goto(cycle)
        hit = [b for b in candidates if cycle in b.hits]
        said = [Text(f"breakpoint {b.number}: {b.text}") for b in hit]
        return [*said, StepView(self.t, self.cycle)]

    # ---- breakpoints ----
    def _add(self, cmd: Command) -> list[RenderableType]:
        bp = make_breakpoint(self.t, self.numbered + 1, cmd.name, cmd.args)
        self.numbered += 1
        self.breakpoints.append(bp)
        n = len(bp.hits)
        first = f", first at cycle {int(bp.hits[0])}" if n else ""
        return [Text(f"breakpoint {bp.number}: {bp.text} ({n} hit{'s' * (n != 1)}{first})")]

    _break = _add
    _watch = _add

    def _info(self, cmd: Command) -> list[RenderableType]:
        if not self.breakpoints:
            return [Text("no breakpoints")]
        out: list[RenderableType] = [Text("num  what                          hits  next")]
        for b in self.breakpoints:
            nxt = b.next_after(self.cycle)
            out.append(Text(f"{b.number:<4} {b.text:<29} {len(b.hits):<5} "
                            f"{'-' if nxt is None else nxt}"))
        return out

    def _delete(self, cmd: Command) -> list[RenderableType]:
        n = cmd.args[0]
        if n is None:
            k = len(self.breakpoints)
            self.breakpoints.clear()
            return [Text(f"deleted {k} breakpoint{'s' * (k != 1)}")]
        if not any(b.number == n for b in self.breakpoints):
            have = ", ".join(str(b.number) for b in self.breakpoints) or "none"
            raise CommandError(f"delete: no breakpoint {n} (breakpoints: {have})")
        self.breakpoints = [b for b in self.breakpoints if b.number != n]
        return [Text(f"deleted breakpoint {n}")]

    # ---- views ----
    def _show(self, cmd: Command) -> list[RenderableType]:
        kind, *args = cmd.args
        t, c = self.t, self.cycle
        if kind == "chip":
            opts = args[0]
            self.chip_at = opts.get("at", self.chip_at)
            self.chip_zoom = opts.get("zoom", self.chip_zoom if "at" not in opts else None)
            return [ChipView(t, c, self.chip_at, self.chip_zoom)]
        if kind == "source":
            return [SourceView(t, c)]
        if kind == "stream":
            code, place, opts = args
            return [StreamView(t, c, code, self._position(place), place, opts)]
        if kind == "sram":
            name, bank, first, last, opts = args
            unit = self._mem_unit(name)
            self._check_rows(bank, first, last)
            return [SramView(t, c, unit, bank, first, last, opts)]
        if kind == "tensor":
            name, rows, opts = args
            tensor_keys(t, name)  # a CommandError naming the tensors if there is none
            return [TensorView(t, c, t.tensor(name), rows, opts)]
        if kind == "queue":
            return [QueueView(t, c, find_slice(t, args[0]).index)]
        plane = None
        if args[0] is not None:
            s = find_slice(t, args[0], ("MXM",))
            plane = [x.name for x in t.chip.slices if x.kind == "MXM"].index(s.name)
        return [MxmView(t, c, plane)]

    def _position(self, place: str) -> int:
        if place.isdigit():
            p = int(place)
            if p >= self.t.index.positions:
                raise CommandError(f"position {p} is off the chip (positions 0.."
                                   f"{self.t.index.positions - 1})")
            return p
        return find_slice(self.t, place).position

    def _mem_unit(self, name: str) -> int:
        return self.t.mem_unit(find_slice(self.t, name, ("MEM",)).name)

    def _check_rows(self, bank: int, first: int, last: int) -> None:
        banks, size = self.t.index.sram.shape[1], self.t.index.sram.shape[2]
        if not (0 <= bank < banks and last < size):
            raise CommandError(f"{bank}:{first}..{last} is outside SRAM (banks 0..{banks - 1}, "
                               f"addresses 0..{size - 1})")

    # ---- the rest ----
    def _help(self, cmd: Command) -> list[RenderableType]:
        if cmd.args[0] is not None:
            use, what = COMMANDS[cmd.args[0]]
            return [Text(f"{use}\n  {what}")]
        width = max(len(n) for n in COMMANDS)
        lines = [Text(f"{n:<{width}}  {what}") for n, (_, what) in COMMANDS.items()]
        return [*lines, Text("`help COMMAND` for its arguments; s, c, rc, q are short for "
                             "step, continue, reverse-continue, quit")]

    def _quit(self, cmd: Command) -> list[RenderableType]:
        self.done = True
        return [Text("bye")]

