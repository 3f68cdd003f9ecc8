"""`lpu run PROGRAM`: run a program on a chip preset; print cycles, time, utilization, outputs.

Exit codes: 0 ok (a --lenient run with violations included: they are warnings), 1 a schedule
violation, 2 a usage or input error. Output files (--output, --save-outputs, --trace-out) are
checked before the run (directory, permissions, name, not the program itself) and written after a
successful run all or none, atomically: a failure never leaves a half-written or partial set. A
strict run that stops at a violation prints no tensor values (they are not results) and writes
no files.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
import numpy as np

from lpu_emu.cli.common import check_outputs, make_console, write_all_atomically
from lpu_emu.core.plan import DEFAULT_MAX_ISSUES
from lpu_emu.errors import LoadError, UsageError
from lpu_emu.files import FileRefused, load_npy, npy_header
from lpu_emu.program import Program
from lpu_emu.spec.chip import chip_names


def load_program(path: Path, chip: str | None, sandbox: bool = False) -> Program:
    """A .lpx object file, or anything else as assembly source."""
    if path.suffix == ".lpx":
        return Program.load(path)
    from lpu_emu.asm import assemble_file

    return assemble_file(path, chip=chip, sandbox=sandbox)


def split_pair(text: str, option: str) -> tuple[str, str | None]:
    name, sep, file = text.partition("=")
    if not name or (sep and not file):
        raise UsageError(f"{option} {text!r}: expected NAME=FILE")
    return name, (file if sep else None)


def read_npy(name: str, file: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A .npy file's array (no pickles), its header checked first (against the tensor's shape,
    if given, and the file's size) so nothing is allocated for a file that cannot be right;
    UsageError naming the option for anything else."""
    where = f"--input {name}={file}"
    try:
        header_shape, _ = npy_header(file)
        if shape is not None and header_shape != tuple(shape):
            raise UsageError(f"input {name!r}: shape {header_shape} does not match the "
                             f"tensor's shape {tuple(shape)}")
        return load_npy(file)
    except FileRefused as exc:
        reason = {"No such file or directory": "no such file",
                  "it is not a .npy file (it does not start with the NumPy magic)":
                  "not a .npy file (no NUMPY header)"}.get(str(exc), str(exc))
        raise UsageError(f"{where}: {reason}") from None


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@click.command(epilog="""\b
Examples:
  lpu run programs/vecadd.lpu                      cycles, time, utilization
  lpu run programs/vecadd.lpu --output z           print tensor z after the run
  lpu run prog.lpx --input x=x.npy --output z=z.npy --json
  lpu run prog.lpu --lenient --stats --trace-out prog.events.npz
""")
@click.argument("program", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chip", metavar="NAME", help=f"Chip preset ({', '.join(chip_names())}); "
              "default: the one the program was built for.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy",
              help="Overwrite tensor NAME with a .npy before the run (repeatable).")
@click.option("--output", "outputs", multiple=True, metavar="NAME[=FILE.npy]",
              help="After the run, write tensor NAME to FILE.npy, or print it (repeatable).")
@click.option("--save-outputs", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE.npz", help="Save every tensor of the program after the run.")
@click.option("--stats", is_flag=True, help="Show every busy queue in the utilization table.")
@click.option("--max-cycles", type=click.IntRange(min=1), metavar="N",
              help="Refuse a program whose schedule runs longer than N cycles.")
@click.option("--lenient", is_flag=True,
              help="Report violations as warnings and go on with what silicon would see.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--trace-out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Record the event log of the run and save it (.npz).")
@click.option("--engine", type=click.Choice(["auto", "fast", "reference"]), default="auto",
              show_default=True,
              help="The numba core, the plain reference interpreter, or auto: the reference "
                   "for small programs (no numba start-up), else the numba core.")
@click.option("--max-issues", type=click.IntRange(min=1), default=DEFAULT_MAX_ISSUES,
              show_default=True, metavar="N",
              help="Refuse a program whose Plan (Repeats expanded) has more issues.")
@click.option("--sandbox", is_flag=True,
              help="Confine .include and .npy files to the program's directory tree.")
def run(program: Path, chip: str | None, inputs: tuple[str, ...], outputs: tuple[str, ...],
        save_outputs: Path | None, stats: bool, max_cycles: int | None, lenient: bool,
        as_json: bool, trace_out: Path | None, engine: str, max_issues: int,
        sandbox: bool) -> None:
    """Run a program (.lpu or .lpx) on a chip preset.

    Prints the cycle count, the time at the preset's clock and a utilization table; exit status
    1 on a schedule violation (each one named with its cycle, slice, stream or address and source
    line), 2 on a usage or input error.
    """
    from lpu_emu.core.run import run as run_program
    from lpu_emu.core.tensors import symbol

    wanted = [split_pair(item, "--output") for item in outputs]
    targets = [(Path(file), f"--output {name}={file}") for name, file in wanted if file]
    targets += [(p, f"{o} {p}") for p, o in ((save_outputs, "--save-outputs"),
                                             (trace_out, "--trace-out")) if p is not None]
    check_outputs(targets, inputs=[program])
    prog = load_program(program, chip, sandbox)
    values = {}
    for item in inputs:
        name, file = split_pair(item, "--input")
        if file is None:
            raise UsageError(f"--input {item!r}: expected NAME=FILE.npy")
        t = symbol(prog, name)  # an unknown name is a UsageError listing the tensors
        values[name] = read_npy(name, file, t.shape)
    for name, _ in wanted:
        symbol(prog, name)
    result = run_program(prog, chip, inputs=values, lenient=lenient, max_cycles=max_cycles,
                         engine=engine, trace=trace_out is not None, max_issues=max_issues)
    shown = {} if result.stopped else {name: result.tensor(name)
                                       for name, file in wanted if file is None}
    _report(program.name, result, shown, as_json, stats)
    if result.stopped:
        if wanted or save_outputs is not None or trace_out is not None:
            click.echo("note: no tensor printed and no file written: the run stopped at its "
                       "first violation (--lenient runs to the end)", err=True)
        raise click.exceptions.Exit(1)
    files = {Path(file): npy_bytes(result.tensor(name)) for name, file in wanted if file}
    if save_outputs is not None:
        files[save_outputs] = npz_bytes({t.name: result.tensor(t.name) for t in prog.symbols})
    if trace_out is not None:
        if result.events is None:
            raise LoadError("the run recorded no event log")
        files[trace_out] = result.events.to_bytes()
    write_all_atomically(files)


def _report(name: str, result, shown: dict[str, np.ndarray], as_json: bool, queues: bool) -> None:
    from lpu_emu.render.run import Utilization, headline, result_dict

    if as_json:
        click.echo(json.dumps(result_dict(name, result, shown)))
        return
    console = make_console()
    console.print(headline(name, result))
    for v in result.violations:
        prefix = "warning" if not result.stopped else "error"
        click.echo(f"{prefix}: {v.message}", err=True)
    console.print(Utilization(result, queues=queues))
    with np.printoptions(threshold=64, edgeitems=8, linewidth=console.width):
        for tensor, value in shown.items():
            console.print(f"{tensor} ({value.dtype}, shape {value.shape}):\n{value}")
