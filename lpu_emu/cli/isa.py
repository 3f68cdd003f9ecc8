"""`lpu isa [MNEMONIC]`: the instruction set reference, from isa/lpu.toml."""

from __future__ import annotations

import json

import click

from lpu_emu.cli.common import did_you_mean, make_console
from lpu_emu.errors import UsageError
from lpu_emu.render.isa import InstructionEntry, IsaOverview
from lpu_emu.spec.isa import default_isa


@click.command(epilog="""\b
Examples:
  lpu isa             every instruction, grouped by slice
  lpu isa Add         one instruction: operands, encoding, latency
  lpu isa cvt.fp32    case and dtype suffixes are ignored
  lpu isa --json      the whole reference as one JSON object (docs/json.md)
""")
@click.argument("mnemonic", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def isa(mnemonic: str | None, as_json: bool) -> None:
    """Show the instruction set reference.

    Without MNEMONIC, every instruction grouped by slice; with it, that instruction in full.
    """
    from lpu_emu.render.data import instruction_dict, isa_dict

    spec = default_isa()
    console = make_console()
    if mnemonic is None:
        if as_json:
            click.echo(json.dumps(isa_dict(spec)))
        else:
            console.print(IsaOverview(spec))
        return
    ins = spec.lookup(mnemonic.split(".")[0])
    if ins is None:
        names = [i.mnemonic for i in spec.instructions]
        hint = did_you_mean(mnemonic.split(".")[0], names)
        raise UsageError(
            f"unknown instruction {mnemonic!r}",
            hint=f"{hint} (`lpu isa` lists them all)" if hint else "`lpu isa` lists them all",
        )
    if as_json:
        click.echo(json.dumps(instruction_dict(spec, ins)))
    else:
        console.print(InstructionEntry(spec, ins))
