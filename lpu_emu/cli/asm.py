"""`lpu asm FILE.lpu [-o FILE.lpx] [--chip NAME]`: assemble to an object file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lpu_emu.cli.common import check_outputs, write_atomically
from lpu_emu.errors import UsageError
from lpu_emu.program import Program
from lpu_emu.render.fmt import plural
from lpu_emu.spec.chip import default_chip_name, get_chip


def summary(program: Program) -> str:
    """`N instructions, M tensors, cycles A..B on CHIP`."""
    n = len(program)
    span = f"cycles {int(program.cycle.min())}..{int(program.cycle.max())}" if n else "no cycles"
    return (f"{plural(n, 'instruction')}, {plural(len(program.symbols), 'tensor')}, {span} "
            f"on {program.chip}")


@click.command(epilog="""\b
Examples:
  lpu asm programs/vecadd.lpu                  writes programs/vecadd.lpx
  lpu asm kernel.lpu -o out/kernel.lpx --chip tsp-v1
  lpu asm hand-in.lpu --sandbox --json         includes only from its own folder
""")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Object file to write (default: SOURCE with the suffix .lpx).")
@click.option("--chip", metavar="NAME",
              help=f"Chip preset (default: the source's .chip, else {default_chip_name()}).")
@click.option("--sandbox", is_flag=True,
              help="Confine .include and .npy files to the source's directory tree.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def asm(source: Path, output: Path | None, chip: str | None, sandbox: bool,
        as_json: bool) -> None:
    """Assemble a .lpu source into a .lpx object file.

    Prints one line: the instructions, tensors and cycle span of the program.
    """
    from lpu_emu.asm import assemble_file  # here, so that `lpu asm --help` needs no assembler

    if chip is not None:
        get_chip(chip)  # an unknown name is a UsageError listing the valid ones
    output = output or source.with_suffix(".lpx")
    if output.resolve() == source.resolve():
        raise UsageError(f"{source}: the output would overwrite the source", hint="pass -o FILE")
    check_outputs([(output, f"-o {output}")])
    program = assemble_file(source, chip=chip, sandbox=sandbox)
    write_atomically(output, program.to_bytes())
    report(source, output, program, as_json)


def report(source: Path, output: Path | None, program: Program, as_json: bool) -> None:
    """The one line (or JSON object) `lpu asm` and `lpu disasm -o` print."""
    if as_json:
        from lpu_emu.render.data import program_dict

        click.echo(json.dumps(program_dict(str(source), None if output is None else str(output),
                                           program)))
    else:
        click.echo(f"{source} -> {output}: {summary(program)}")
