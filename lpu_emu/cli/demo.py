"""`lpu demo`: the README's first command. Runs every example program on the default chip,
checks each result against numpy, and prints one table; then compiles the built-in BERT layer
(lpu_emu.compiler.builtin.DEMO), runs it, checks it against numpy and prints its report in a few
lines. Exit status 1 if any example or the layer fails."""

from __future__ import annotations

import click

from lpu_emu.cli.common import make_console
from lpu_emu.spec.chip import default_chip_name


@click.command(epilog="""\b
Examples:
  lpu demo                 every example program on lp30 and a compiled BERT layer, checked
  lpu demo --chip lp30     the same, naming the chip
""")
@click.option("--chip", metavar="NAME", default=None,
              help=f"Chip preset (default: {default_chip_name()}, which the examples are for).")
def demo(chip: str | None) -> None:
    """Run every example program on the default chip and check its results."""
    from lpu_emu.asm import assemble_file
    from lpu_emu.core.run import run
    from lpu_emu.examples import EXAMPLES, check
    from lpu_emu.render.run import DemoTable

    console = make_console()
    rows = []
    for example in EXAMPLES:
        result = run(assemble_file(example.path, chip=chip))
        problems = [v.message for v in result.violations] + check(example, result.tensor)
        rows.append((example.name, result, problems))
    chip_name = rows[0][1].chip.name if rows else (chip or default_chip_name())
    console.print(f"lpu demo: {len(rows)} example programs from programs/ on {chip_name}")
    console.print(DemoTable(tuple(rows)))
    failed = [(name, p) for name, _, problems in rows for p in problems]
    for name, problem in failed:
        click.echo(f"error: {name}: {problem}", err=True)
    if failed:
        raise click.exceptions.Exit(1)
    console.print("every result matches numpy, bit for bit")
    _layer(console, chip)


def demo_layer(chip: str | None):
    """The built-in BERT layer (compiler.builtin.DEMO) compiled, run and checked:
    (description, report, (max abs error, max abs value))."""
    from lpu_emu.compiler.builtin import DEMO, build, describe
    from lpu_emu.compiler.report import report

    built = build(DEMO["name"], seq=DEMO["seq"], dtype=DEMO["dtype"], chip=chip)
    error = built.check()
    return describe(built), report(built.compiled), error


def _layer(console, chip: str | None) -> None:
    """Print the compiled layer's lines; exit 1 if it does not match numpy."""
    from lpu_emu.compiler.builtin import within
    from lpu_emu.render.report import DemoLayer

    description, rep, error = demo_layer(chip)
    console.print()
    console.print(DemoLayer(description, rep, error))
    if not within(error, rep.mode):
        click.echo(f"error: the compiled layer does not match numpy within the {rep.mode} "
                   "bound", err=True)
        raise click.exceptions.Exit(1)
