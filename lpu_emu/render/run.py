"""`lpu run` and `lpu demo`: a run's summary, its utilization table, the demo's table, and the
same facts as one JSON-ready dict. Renderables build text and never print."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from lpu_emu.core.result import RunResult, Stats
from lpu_emu.render.fmt import plural, si
from lpu_emu.render.isa import row, table

KINDS = ("MEM", "VXM", "MXM", "SXM", "C2C")


def duration(seconds: float) -> str:
    """A short time with an SI prefix: 4.667 ns, 304.7 ns, 1.2 us."""
    for prefix, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {prefix}"
    return f"{seconds / 1e-9:.4g} ns"


def headline(name: str, result: RunResult) -> str:
    """`NAME on CHIP: N cycles, T at CLOCK` (+ where a strict run stopped)."""
    chip = result.chip
    text = (f"{name} on {chip.name}: {plural(result.cycles, 'cycle')}, {duration(result.seconds)} "
            f"at {si(chip.clock_hz, 'Hz')}")
    if result.stopped:
        text += " (stopped at the first violation)"
    return text


def busiest(stats: Stats) -> str:
    kinds = {k: v for k, v in stats.kind_utilization.items() if v > 0}
    if not kinds:
        return "-"
    kind = max(kinds, key=kinds.get)  # type: ignore[arg-type]
    return f"{kind} {kinds[kind]:.1%}"


@dataclass(frozen=True)
class Utilization:
    """Per slice kind (and, with `queues`, per busy queue): busy cycles and utilization; then
    SRAM traffic and MXM work against the preset's peaks."""

    result: RunResult
    queues: bool = False

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s, chip = self.result.stats, self.result.chip
        t = table("slices", "queues", "busy", "busy cycles", "utilization")
        for kind in KINDS:
            names = [q.name for q in chip.slices if q.kind == kind]
            busy = [n for n in names if s.busy[n]]
            row(t, kind, str(len(names)), str(len(busy)), f"{sum(s.busy[n] for n in names):,}",
                f"{s.kind_utilization[kind]:.2%}")
            if self.queues:
                for n in busy:
                    row(t, f"  {n}", "", "", f"{s.busy[n]:,}", f"{s.utilization[n]:.2%}")
        yield t
        yield Text(f"SRAM: {s.sram_bytes_read:,} B read, {s.sram_bytes_written:,} B written, "
                   f"{si(s.sram_bytes_per_s, 'B/s')} of {si(s.sram_peak_bytes_per_s, 'B/s')} peak "
                   f"({s.sram_fraction:.2%})")
        yield Text(f"MXM: {s.mxm_ops:,} ops, {si(s.mxm_ops_per_s, 'ops/s')} "
                   f"({s.mxm_fraction:.2%} of peak)")
        if self.queues:
            yield Text(f"engine: {self.result.engine}")


@dataclass(frozen=True)
class DemoTable:
    """One line per example program: did it match numpy, how long, how busy."""

    rows: tuple[tuple[str, RunResult, list[str]], ...]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = table("program", "result", "instructions", "cycles", "time", "busiest", "SRAM B/W")
        for name, result, problems in self.rows:
            status = "ok" if not problems else "FAIL"
            row(t, name, status, f"{len(result.program):,}", f"{result.cycles:,}",
                duration(result.seconds), busiest(result.stats),
                si(result.stats.sram_bytes_per_s, "B/s"))
        yield t


def stats_dict(stats: Stats) -> dict:
    return {
        "busy": {k: v for k, v in stats.busy.items() if v},
        "utilization": {k: v for k, v in stats.utilization.items() if v},
        "kind_utilization": stats.kind_utilization,
        "sram_bytes_read": stats.sram_bytes_read,
        "sram_bytes_written": stats.sram_bytes_written,
        "sram_bytes_per_s": stats.sram_bytes_per_s,
        "sram_peak_bytes_per_s": stats.sram_peak_bytes_per_s,
        "mxm_ops": stats.mxm_ops,
        "mxm_ops_per_s": stats.mxm_ops_per_s,
        "mxm_fraction_of_peak": stats.mxm_fraction,
    }


def result_dict(name: str, result: RunResult, outputs: dict[str, np.ndarray]) -> dict:
    """Everything `lpu run` prints, as one JSON-ready object."""
    return {
        "program": name,
        "chip": result.chip.name,
        "clock_hz": result.chip.clock_hz,
        "cycles": result.cycles,
        "seconds": result.seconds,
        "engine": result.engine,
        "stopped": result.stopped,
        "violations": [
            {"kind": v.kind, "cycle": v.cycle, "queue": v.queue, "source": v.source,
             "stream": v.stream, "position": v.position, "address": v.address, "bank": v.bank,
             "message": v.message}
            for v in result.violations
        ],
        "stats": stats_dict(result.stats),
        "outputs": {
            k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.tolist()}
            for k, v in outputs.items()
        },
    }
