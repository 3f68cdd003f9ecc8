"""`lpu chips [NAME]`: the chip presets under isa/chips/."""

from __future__ import annotations

import click

from lpu_emu.cli.common import make_console
from lpu_emu.render.chips import ChipDetail, ChipList
from lpu_emu.spec.chip import chip_names, default_chip_name, get_chip


@click.command(epilog="""\b
Examples:
  lpu chips           every preset: clock, SRAM, bandwidth, peak ops/s
  lpu chips lp30      one preset: parameters with sources, derived figures, slices
""")
@click.argument("name", required=False)
def chips(name: str | None) -> None:
    """List the chip presets, or show one in full.

    With NAME: every parameter with its value, status (published or inferred) and source, the
    figures derived from them, and the slice layout west to east (the queue names to use in
    assembly).
    """
    console = make_console()
    default = default_chip_name()
    if name is None:
        console.print(ChipList(tuple(get_chip(n) for n in chip_names()), default))
        return
    chip = get_chip(name)  # UsageError naming the valid chips
    console.print(ChipDetail(chip, default=chip.name == default))
