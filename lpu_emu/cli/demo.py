"""`lpu demo`: the README's first command. Runs every example program on the default chip,
checks each result against numpy, and prints one table; exit status 1 if any example fails.

The examples are written for one chip each (their `.chip` line: issue cycles follow that chip's
positions and latencies), so `--chip NAME` runs the examples written for NAME and lists the
others with the chip they run on, instead of failing on them.
"""

from __future__ import annotations

import json

import click

from lpu_emu.cli.common import make_console
from lpu_emu.spec.chip import default_chip_name, get_chip


@click.command(epilog="""\b
Examples:
  lpu demo                 every example program on lp30, checked against numpy
  lpu demo --chip lp30     the same, naming the chip
  lpu demo --json          one JSON object (docs/json.md)
""")
@click.option("--chip", metavar="NAME", default=None,
              help=f"Chip preset (default: {default_chip_name()}, which the examples are for).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def demo(chip: str | None, as_json: bool) -> None:
    """Run every example program on the default chip and check its results."""
    from lpu_emu.asm import assemble_file
    from lpu_emu.core.run import run
    from lpu_emu.examples import EXAMPLES, check
    from lpu_emu.render.data import demo_dict
    from lpu_emu.render.run import DemoTable

    chip_name = get_chip(chip).name  # an unknown name is a UsageError naming the valid ones
    rows, elsewhere = [], []
    for example in EXAMPLES:
        program = assemble_file(example.path)
        if program.chip != chip_name:
            elsewhere.append((example.name, program.chip))
            continue
        result = run(program)
        problems = [v.message for v in result.violations] + check(example, result.tensor)
        rows.append((example.name, result, problems))
    failed = [(name, p) for name, _, problems in rows for p in problems]
    if as_json:
        doc = demo_dict(chip_name, rows)
        doc["not_run"] = [{"name": n, "chip": c} for n, c in elsewhere]
        click.echo(json.dumps(doc))
    else:
        _print(chip_name, rows, elsewhere, DemoTable)
    for name, problem in failed:
        click.echo(f"error: {name}: {problem}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def _print(chip_name: str, rows, elsewhere, table) -> None:
    console = make_console()
    total = len(rows) + len(elsewhere)
    console.print(f"lpu demo: {len(rows)} example programs from programs/ on {chip_name}"
                  if not elsewhere else
                  f"lpu demo: {len(rows)} of {total} example programs from programs/ run on "
                  f"{chip_name}")
    if rows:
        console.print(table(tuple(rows)))
    for other in sorted({c for _, c in elsewhere}):
        names = ", ".join(n for n, c in elsewhere if c == other)
        console.print(f"written for {other} (`lpu demo --chip {other}`): {names}")
    if rows and not any(problems for _, _, problems in rows):
        console.print("every result matches numpy, bit for bit")
