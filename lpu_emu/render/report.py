"""`lpu compile` and `lpu demo`: a compiled program's schedule report as text. Renderables build
text and never print; the figures come from lpu_emu.compiler.report.Report."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from lpu_emu.compiler.builtin import ERROR_BOUNDS, within
from lpu_emu.compiler.report import Report
from lpu_emu.render.fmt import si
from lpu_emu.render.isa import row, table
from lpu_emu.render.run import duration

TOP_OPS = 8  # graph ops listed by `lpu compile` (the rest are summed on one line)


def headline(r: Report) -> str:
    """`NAME on CHIP, MODE: N cycles, T at CLOCK`."""
    return (f"{r.name} on {r.chip}, {r.mode}: {r.cycles:,} cycles, {duration(r.seconds)} at "
            f"{si(r.clock_hz, 'Hz')}")


def counts(r: Report) -> list[str]:
    """`N instructions, M issues` and `MXM: X MACs issued, Y in the graph's matmuls (P%)`."""
    share = f" ({r.useful_macs / r.macs:.1%})" if r.macs else ""
    return [f"{r.instructions:,} instructions, {r.issues:,} issues (Repeats expanded)",
            f"MXM: {r.macs:,} MACs issued, {r.useful_macs:,} in the graph's "
            f"matmuls{share}"]


def bound_line(r: Report) -> str:
    """`roofline: B cycles, bound by RESOURCE; schedule efficiency E`."""
    return (f"roofline: {r.bound:,.0f} cycles, bound by {r.binding.name}; schedule efficiency "
            f"{r.efficiency:.1%}")


def data_line(r: Report) -> str | None:
    """`data alone: D cycles (kernels ordered by data only); resources add N`."""
    if r.data_bound is None:
        return None
    return (f"data alone: {r.data_bound:,} cycles (kernels ordered by data only); resources "
            f"add {r.cycles - r.data_bound:,}")


def _plane_text(issues: dict[str, int]) -> str:
    return ", ".join(f"{m} {n:,}" for m, n in issues.items() if n) or "-"


@dataclass(frozen=True)
class Busy:
    """Busy time per resource: each MXM plane's issues and busy cycles, the VXM, SXM, MEM and
    stream totals with their busiest queue or position."""

    report: Report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.report
        t = table("unit", "issues", "busy cycles", "busy", right=("busy cycles", "busy"))

        def pct(busy: int) -> str:
            return f"{busy / r.cycles:.1%}" if r.cycles else "-"

        for p in r.planes:
            row(t, p.name, _plane_text(p.issues), f"{p.busy:,}", pct(p.busy))
        name, busy = r.vxm_busiest
        row(t, "VXM", f"{r.vxm_issues:,} ({r.vxm_large_issues:,} large); busiest {name}",
            f"{busy:,}", pct(busy))
        row(t, "SXM", f"{r.sxm_issues:,}", "", "")
        name, busy = r.mem_busiest
        row(t, "MEM", f"{r.sram_reads:,} reads, {r.sram_writes:,} writes; busiest {name}",
            f"{busy:,}", pct(busy))
        where, placed = r.stream_busiest
        row(t, "streams", f"{r.stream_values:,} values; {placed:,} at {where}", "", "")
        yield t


@dataclass(frozen=True)
class Roofline:
    """Each resource's cycles at the chip's capacity, the binding one marked."""

    report: Report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.report
        t = table("resource", "cycles", "share", "work", right=("cycles", "share"),
                  wrap=("work",))
        binding = r.binding
        for res in r.resources:
            mark = " <" if res is binding else ""
            share = f"{res.cycles / r.cycles:.1%}" if r.cycles else "-"
            row(t, res.name + mark, f"{res.cycles:,.0f}", share, res.work)
        yield t


@dataclass(frozen=True)
class Ops:
    """The graph ops with the longest kernels (summed spans; kernels overlap in time)."""

    report: Report
    top: int = TOP_OPS

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.report
        t = table("graph op", "kernels", "kernel cycles", "MACs",
                  right=("kernels", "kernel cycles", "MACs"))
        for o in r.ops[:self.top]:
            row(t, o.name, str(o.kernels), f"{o.cycles:,}", f"{o.macs:,}" if o.macs else "")
        rest = r.ops[self.top:]
        if rest:
            row(t, f"({len(rest)} more ops)", str(sum(o.kernels for o in rest)),
                f"{sum(o.cycles for o in rest):,}", f"{sum(o.macs for o in rest):,}")
        yield t


@dataclass(frozen=True)
class FullReport:
    """`lpu compile`'s report: headline, counts, busy time, roofline, the costliest ops."""

    report: Report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.report
        yield Text(headline(r))
        for line in counts(r):
            yield Text(line)
        yield Text("")
        yield Busy(r)
        yield Text("")
        yield Roofline(r)
        yield Text(bound_line(r))
        line = data_line(r)
        if line:
            yield Text(line)
        yield Text("")
        yield Ops(r)


@dataclass(frozen=True)
class ShortReport:
    """`lpu demo`'s few lines about a compiled layer."""

    report: Report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.report
        yield Text(headline(r))
        yield Text(counts(r)[1])
        yield Text(bound_line(r))


def check_dict(error: tuple[float, float], dtype: str) -> dict:
    """A comparison with numpy as JSON: the errors, their ratio, the mode's bound, the verdict."""
    err, scale = error
    rel = err / scale if scale else err
    bound = ERROR_BOUNDS[dtype]
    return {"max_abs_error": err, "max_abs_value": scale, "relative": rel, "bound": bound,
            "ok": within(error, dtype)}


def check_line(error: tuple[float, float], dtype: str) -> str:
    """`against numpy: max abs error E / max abs value V = R <= B: ok` (B: the mode's bound)."""
    c = check_dict(error, dtype)
    verdict = "<=" if c["ok"] else ">"
    return (f"against numpy: max abs error {c['max_abs_error']:.3g} / max abs value "
            f"{c['max_abs_value']:.3g} = {c['relative']:.3g} {verdict} {c['bound']:g}: "
            f"{'ok' if c['ok'] else 'FAIL'}")


def demo_layer_dict(description: str, report: Report, error: tuple[float, float]) -> dict:
    """`lpu demo`'s compiled layer as JSON (for `lpu demo --json`): what, the report, the check."""
    return {"description": description, "report": report.to_json(),
            "check": check_dict(error, report.mode)}


@dataclass(frozen=True)
class DemoLayer:
    """`lpu demo`'s lines about the compiled layer: what it is, the check, the report."""

    description: str
    report: Report
    error: tuple[float, float]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(f"compiled: {self.description}")
        yield ShortReport(self.report)
        yield Text(check_line(self.error, self.report.mode))
