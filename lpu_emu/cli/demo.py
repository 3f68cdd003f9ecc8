"""`lpu demo`: the README's first command. Runs every example program on the default chip,
checks each result against numpy, and prints one table; then compiles the built-in BERT layer
(lpu_emu.compiler.builtin.DEMO) for the chip, runs it, checks it against numpy and prints its
schedule report in a few lines. Exit status 1 if any example or the layer fails.

`lpu demo NAME...` runs only the named examples (`layer`: the compiled layer), so a student can
rerun one program in a fraction of a second: a small example runs on the reference interpreter
(engine auto, no numba start-up) and the compiler is not imported unless the layer runs.

The examples are written for one chip each (their `.chip` line: issue cycles follow that chip's
positions and latencies), so `--chip NAME` runs the examples written for NAME and lists the
others with the chip they run on, instead of failing on them.
"""

from __future__ import annotations

import json

import click

from lpu_emu.cli.common import make_console
from lpu_emu.errors import UsageError
from lpu_emu.spec.chip import default_chip_name, get_chip

LAYER = "layer"  # the NAME of the compiled layer among the examples


@click.command(epilog="""\b
Examples:
  lpu demo                 every example program on lp30 and a compiled BERT layer, checked
  lpu demo vecadd gelu     only those two example programs
  lpu demo layer           only the compiled layer
  lpu demo --chip lp30     every example, naming the chip
  lpu demo --json          one JSON object (docs/json.md)
""")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--chip", metavar="NAME", default=None,
              help=f"Chip preset (default: {default_chip_name()}, which the examples are for).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def demo(names: tuple[str, ...], chip: str | None, as_json: bool) -> None:
    """Run every example program on the default chip and check its results.

    NAME: run only these examples (`layer`: the compiled BERT layer); default all of them."""
    from lpu_emu.asm import assemble_file
    from lpu_emu.core.run import run
    from lpu_emu.examples import check
    from lpu_emu.render.data import demo_dict
    from lpu_emu.render.run import DemoTable

    chip_name = get_chip(chip).name  # an unknown name is a UsageError naming the valid ones
    examples, with_layer = chosen(names)
    rows, elsewhere = [], []
    for example in examples:
        program = assemble_file(example.path)
        if program.chip != chip_name:
            elsewhere.append((example.name, program.chip))
            continue
        result = run(program)
        problems = [v.message for v in result.violations] + check(example, result.tensor)
        rows.append((example.name, result, problems))
    failed = [(name, p) for name, _, problems in rows for p in problems]
    layer = demo_layer(chip_name) if with_layer else None
    if layer is not None:
        from lpu_emu.compiler.builtin import within

        _, rep, error = layer
        if not within(error, rep.mode):
            failed.append((LAYER, f"the compiled layer does not match numpy within the "
                                  f"{rep.mode} bound"))
    if as_json:
        doc = demo_dict(chip_name, rows)
        doc["not_run"] = [{"name": n, "chip": c} for n, c in elsewhere]
        doc["layer"] = None
        if layer is not None:
            from lpu_emu.render.report import demo_layer_dict

            doc["layer"] = demo_layer_dict(*layer)
            doc["ok"] = doc["ok"] and doc["layer"]["check"]["ok"]
        click.echo(json.dumps(doc))
    else:
        if rows or elsewhere:
            _print(chip_name, rows, elsewhere, DemoTable)
        if layer is not None:
            from lpu_emu.render.report import DemoLayer

            console = make_console()
            if rows or elsewhere:
                console.print()
            console.print(DemoLayer(*layer))
    for name, problem in failed:
        click.echo(f"error: {name}: {problem}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def chosen(names: tuple[str, ...]) -> tuple[list, bool]:
    """The examples NAME... selects, in the order given, and whether the layer runs: all of
    them when no NAME is given. UsageError on a name that is neither, listing the valid ones."""
    from lpu_emu.examples import EXAMPLES

    if not names:
        return list(EXAMPLES), True
    by_name = {e.name: e for e in EXAMPLES}
    for name in names:
        if name not in by_name and name != LAYER:
            valid = ", ".join([*by_name, LAYER])
            raise UsageError(f"unknown example {name!r}", hint=f"valid names: {valid}")
    picked = dict.fromkeys(n for n in names if n != LAYER)  # in order, once each
    return [by_name[n] for n in picked], LAYER in names


def _print(chip_name: str, rows, elsewhere, table) -> None:
    console = make_console()
    total = len(rows) + len(elsewhere)
    programs = "example program" if total == 1 else "example programs"
    console.print(f"lpu demo: {len(rows)} {programs} from programs/ on {chip_name}"
                  if not elsewhere else
                  f"lpu demo: {len(rows)} of {total} {programs} from programs/ run on "
                  f"{chip_name}")
    if rows:
        console.print(table(tuple(rows)))
    for other in sorted({c for _, c in elsewhere}):
        names = ", ".join(n for n, c in elsewhere if c == other)
        console.print(f"written for {other} (`lpu demo --chip {other}`): {names}")
    if rows and not any(problems for _, _, problems in rows):
        console.print("every result matches numpy, bit for bit")


def demo_layer(chip: str | None):
    """The built-in BERT layer (compiler.builtin.DEMO) compiled, run and checked:
    (description, report, (max abs error, max abs value))."""
    from lpu_emu.compiler.builtin import DEMO, build, describe
    from lpu_emu.compiler.report import report

    built = build(DEMO["name"], seq=DEMO["seq"], dtype=DEMO["dtype"], chip=chip)
    error = built.check()
    return describe(built), report(built.compiled), error
