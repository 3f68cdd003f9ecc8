"""`lpu disasm FILE.lpx [-o OUT.lpu]`: an object file back to assembly source."""

from __future__ import annotations

from pathlib import Path

import click

from lpu_emu.cli.asm import summary
from lpu_emu.cli.common import write_atomically
from lpu_emu.program import Program


@click.command(epilog="""\b
Examples:
  lpu disasm programs/vecadd.lpx               the source, on stdout
  lpu disasm programs/vecadd.lpx -o again.lpu  lpu asm again.lpu gives the same .lpx
""")
@click.argument("objfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Source file to write (default: standard output).")
def disasm(objfile: Path, output: Path | None) -> None:
    """Disassemble a .lpx object file back into assembly source.

    Every instruction is written with its absolute @cycle, with the .file/.loc directives that
    keep the line map: assembling the output gives the same object file, byte for byte.
    """
    from lpu_emu.asm import disassemble  # here, so that `lpu disasm --help` needs no assembler

    program = Program.load(objfile)  # LoadError: truncated, corrupted, foreign or wrong version
    text = disassemble(program)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_atomically(output, text.encode("utf-8"))
    click.echo(f"{objfile} -> {output}: {summary(program)}")
