"""`lpu chips`: the presets side by side, and one preset in full (params, derived figures, layout).

Every number shown is a parameter of the preset or computed by lpu_emu.spec.chip from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from lpu_emu.render.fmt import param_value, plural, si, size
from lpu_emu.render.isa import heading, row, table
from lpu_emu.spec.chip import Chip, Slice


@dataclass(frozen=True)
class ChipList:
    """One line per preset; the default is marked with a *."""

    chips: tuple[Chip, ...]
    default: str

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = table("chip", "title", "clock", "SRAM", "SRAM B/W", "int8 peak", wrap=("title",))
        for c in self.chips:
            name = c.name + (" *" if c.name == self.default else "")
            row(t, name, c.title, si(c.clock_hz, "Hz"), si(c.sram_bytes, "B"),
                si(c.sram_bytes_per_s, "B/s"), si(c.mxm_int8_ops_per_s, "ops/s"))
        yield t
        yield Text("")
        yield Text("* the default chip. `lpu chips NAME` shows a preset in full.")


def derived_rows(chip: Chip) -> list[tuple[str, str, str]]:
    """(figure, value, how it is computed), values from the Chip's derived properties."""
    clock = si(chip.clock_hz, "Hz")
    mem, planes = len(chip.mem_slices), chip.mxm_planes
    link = si(chip.p("c2c_link_bytes_per_s"), "B/s")
    return [
        ("SRAM capacity", f"{chip.sram_bytes:,} B = {size(chip.sram_bytes)}",
         f"{mem} MEM slices x {chip.p('mem_banks')} banks x "
         f"{chip.p('mem_addresses_per_bank')} addresses x {chip.lanes} B"),
        ("SRAM bandwidth", si(chip.sram_bytes_per_s, "B/s"),
         f"{mem} MEM slices x {chip.lanes} B x 2 (read + write) x {clock}"),
        ("MXM int8/fp8 peak", si(chip.mxm_int8_ops_per_s, "ops/s"),
         f"{planes} planes x {chip.p('mxm_rows')} x {chip.p('mxm_cols')} MACs x 2 ops x {clock}"),
        ("MXM fp16/bf16 peak", si(chip.mxm_fp16_ops_per_s, "ops/s"),
         f"int8 peak x mxm_fp16_fraction ({chip.p('mxm_fp16_fraction')})"),
        ("C2C bandwidth", si(chip.c2c_bytes_per_s, "B/s"),
         f"{chip.c2c_links} links x {link}"),
    ]


def layout_rows(chip: Chip) -> list[tuple[str, str, str]]:
    """(positions, kind, queues): runs of same-kind, same-hemisphere slices, west to east."""
    rows = []
    large = {f"VXM{a}" for a in chip.p("vxm_large_alus")}
    for (kind, _), run in groupby(chip.slices, key=lambda s: (s.kind, s.hemisphere)):
        group: list[Slice] = list(run)
        first, last = group[0].position, group[-1].position
        where = str(first) if first == last else f"{first}..{last}"
        names = [s.name for s in group]
        if len(names) <= 4:
            queues = ", ".join(names)
        else:
            queues = f"{names[0]} .. {names[-1]} ({len(names)})"
        if kind == "VXM":
            queues += f"; large ALUs: {', '.join(n for n in names if n in large)}"
        rows.append((where, kind, queues))
    return rows


@dataclass(frozen=True)
class ChipDetail:
    """Every parameter with its status and source, the derived figures, the slice layout."""

    chip: Chip
    default: bool = False

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        chip = self.chip
        mark = " (the default chip)" if self.default else ""
        yield heading(f"{chip.name}: {chip.title}{mark}")
        yield Text("")
        yield heading("Parameters")
        params = table("param", "value", "status", "source", wrap=("source",))
        for p in chip.params.values():
            row(params, p.name, param_value(p.name, p.value), p.status, p.source)
        yield params
        yield Text("")
        yield heading("Derived (computed from the parameters)")
        derived = table("figure", "value", "from", wrap=("from",))
        for r in derived_rows(chip):
            row(derived, *r)
        yield derived
        yield Text("")
        title = (f"Slice layout, west to east ({plural(chip.positions, 'position')}, "
                 f"{plural(len(chip.slices), 'queue')})")
        yield heading(title)
        layout = table("position", "kind", "queues", wrap=("queues",))
        for r in layout_rows(chip):
            row(layout, *r)
        yield layout
        yield Text("")
        overrides = ", ".join(f"{m} {c}" for m, c in chip.latency.items()) or "none"
        yield Text(f"Latency overrides of isa/lpu.toml: {overrides}")
