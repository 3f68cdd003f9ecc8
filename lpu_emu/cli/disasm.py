"""`lpu disasm FILE.lpx [-o OUT.lpu]`: an object file back to assembly source."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lpu_emu.cli.asm import report
from lpu_emu.cli.common import check_outputs, write_atomically
from lpu_emu.program import Program


@click.command(epilog="""\b
Examples:
  lpu disasm programs/vecadd.lpx               the source, on stdout
  lpu disasm programs/vecadd.lpx -o again.lpu  lpu asm again.lpu gives the same .lpx
""")
@click.argument("objfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Source file to write (default: standard output).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (the source in it, unless -o) instead of text.")
def disasm(objfile: Path, output: Path | None, as_json: bool) -> None:
    """Disassemble a .lpx object file back into assembly source.

    Every instruction is written with its absolute @cycle, with the .file/.loc directives that
    keep the line map: assembling the output gives the same object file, byte for byte.
    """
    from lpu_emu.asm import disassemble  # here, so that `lpu disasm --help` needs no assembler

    if output is not None:
        check_outputs([(output, f"-o {output}")], inputs=[objfile])
    program = Program.load(objfile)  # LoadError: truncated, corrupted, foreign or wrong version
    text = disassemble(program)
    if output is None:
        if as_json:
            from lpu_emu.render.data import program_dict

            click.echo(json.dumps({**program_dict(str(objfile), None, program), "text": text}))
        else:
            click.echo(text, nl=not text.endswith("\n"))
        return
    write_atomically(output, text.encode("utf-8"))
    report(objfile, output, program, as_json)
