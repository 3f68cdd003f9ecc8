"""`lpu chips [NAME]`: the chip presets under isa/chips/."""

from __future__ import annotations

import json

import click

from lpu_emu.cli.common import make_console
from lpu_emu.render.chips import ChipDetail, ChipList
from lpu_emu.spec.chip import chip_names, default_chip_name, get_chip


@click.command(epilog="""\b
Examples:
  lpu chips           every preset: clock, SRAM, bandwidth, peak ops/s
  lpu chips lp30      one preset: parameters with sources, derived figures, slices
  lpu chips --json    the presets as one JSON object (docs/json.md)
""")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def chips(name: str | None, as_json: bool) -> None:
    """List the chip presets, or show one in full.

    With NAME: every parameter with its value, status (published or inferred) and source, the
    figures derived from them, and the slice layout west to east (the queue names to use in
    assembly).
    """
    from lpu_emu.render.data import chip_dict, chip_summary

    console = make_console()
    default = default_chip_name()
    if name is None:
        presets = tuple(get_chip(n) for n in chip_names())
        if as_json:
            click.echo(json.dumps({"chips": [chip_summary(c, default) for c in presets]}))
        else:
            console.print(ChipList(presets, default))
        return
    chip = get_chip(name)  # UsageError naming the valid chips
    if as_json:
        click.echo(json.dumps(chip_dict(chip, default)))
    else:
        console.print(ChipDetail(chip, default=chip.name == default))
