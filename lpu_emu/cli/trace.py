"""`lpu trace PROGRAM`: step through a run, forward and back, in a terminal UI or from a script.

The program runs once (engine auto: a small program on the reference interpreter, no numba; event
log on; lenient: the whole schedule is visible even past a violation); everything after that is
lookups in the log (lpu_emu/trace). Modes: the interactive UI (a terminal on stdin and stdout),
`--script FILE` or commands piped on stdin (one plain-text block per command), `--text` (every
event, one line each) and `--perfetto OUT.json`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command(epilog="""\b
Examples:
  lpu trace programs/vecadd.lpu                       the interactive UI
  lpu trace programs/vecadd.lpu --script docs/tracer/streams.cmds
  echo "break op Add; continue" | tr ';' '\\n' | lpu trace programs/vecadd.lpu
  lpu trace programs/matvec.lpu --text --from 400 --to 460 | grep place
  lpu trace programs/matvec.lpu --perfetto matvec.json   then open it in ui.perfetto.dev
""")
@click.argument("program", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chip", metavar="NAME", help="Chip preset; default: the one the program was "
              "built for.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy",
              help="Overwrite tensor NAME with a .npy before the run (repeatable).")
@click.option("--script", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="FILE", help="Run the commands in FILE (one per line) and print each "
              "block as plain text.")
@click.option("--text", "as_text", is_flag=True,
              help="Print every event, one line each (`cycle N: ...`), and exit.")
@click.option("--from", "first", type=click.IntRange(min=0), default=0, metavar="C",
              help="With --text: the first cycle listed.")
@click.option("--to", "last", type=click.IntRange(min=0), default=None, metavar="C",
              help="With --text: the last cycle listed.")
@click.option("--perfetto", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT.json",
              help="Write the run as Chrome Trace Event JSON (ui.perfetto.dev).")
def trace(program: Path, chip: str | None, inputs: tuple[str, ...], script: Path | None,
          as_text: bool, first: int, last: int | None, perfetto: Path | None) -> None:
    """Step through a run, forward and back, with breakpoints.

    Commands (the same in the UI, in --script files and on stdin): step [N], back [N],
    goto CYCLE, continue, reverse-continue, break cycle|line|queue|op|stream|violation ...,
    watch TENSOR|[SLICE] BANK:ADDR, show chip|source|stream|sram|tensor|queue|mxm ...,
    info breakpoints, delete [N], help [COMMAND], quit. Exit status 1 if a scripted command
    failed, 2 on a usage or input error.
    """
    from lpu_emu.errors import UsageError

    if last is not None and last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    if (first or last is not None) and not as_text:
        raise UsageError("--from and --to go with --text")
    traced = _traced(program, chip, inputs)
    if perfetto is not None:
        from lpu_emu.cli.common import write_atomically
        from lpu_emu.trace.perfetto import perfetto_json

        write_atomically(perfetto, perfetto_json(traced).encode("utf-8"))
        click.echo(f"wrote {perfetto} (open it in ui.perfetto.dev)", err=True)
    if as_text:
        from lpu_emu.trace.listing import text_listing

        listing = text_listing(traced, first, last)
        if listing:
            click.echo("\n".join(listing))
    if script is not None:
        _headless(traced, script.read_text(encoding="utf-8").splitlines())
    elif not as_text and perfetto is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            _interactive(traced)
        else:
            _headless(traced, sys.stdin.read().splitlines())


def _traced(program: Path, chip: str | None, inputs: tuple[str, ...]):
    from lpu_emu.cli.run import load_program, read_npy, split_pair
    from lpu_emu.core.tensors import symbol
    from lpu_emu.errors import UsageError
    from lpu_emu.trace.model import Traced

    prog = load_program(program, chip)
    values = {}
    for item in inputs:
        name, file = split_pair(item, "--input")
        if file is None:
            raise UsageError(f"--input {item!r}: expected NAME=FILE.npy")
        symbol(prog, name)
        values[name] = read_npy(name, file)
    return Traced.run(prog, chip, inputs=values, name=program.name, base=program.parent)


def _headless(traced, lines: list[str]) -> None:
    from lpu_emu.cli.common import make_console
    from lpu_emu.trace.session import Session

    console = make_console()
    session = Session(traced)
    first = True
    for line in lines:
        block = session.run(line)
        if block is None:
            continue
        if not first:
            console.print()
        first = False
        for part in block:
            console.print(part)
        if session.done:
            break
    if session.errors:
        raise click.exceptions.Exit(1)


def _interactive(traced) -> None:
    from lpu_emu.trace.app import TraceApp
    from lpu_emu.trace.session import Session

    TraceApp(Session(traced)).run()
