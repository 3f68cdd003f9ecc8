"""`lpu compile MODEL.onnx` or `lpu compile --builtin bert-layer|gpt-layer`: compile an ONNX model
(its symbolic dimensions fixed by `--shape`) or a built-in transformer layer (seeded random
weights) for a chip in a precision mode, print its schedule report and roofline, and optionally
write the program (`-o OUT.lpu` commented assembly, `-o OUT.lpx` object file) and run a built-in
layer against numpy (`--run`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from lpu_emu.cli.common import make_console, write_atomically
from lpu_emu.compiler.builtin import BUILTINS
from lpu_emu.compiler.precision import MODES
from lpu_emu.errors import UsageError
from lpu_emu.spec.chip import chip_names, default_chip_name

PROGRESS_DELAY_S = 1.0  # a progress bar only for compiles that take longer than this
SUFFIXES = (".lpu", ".lpx")


class Stages:
    """A transient progress bar on stderr over named stages, shown only on a terminal and only
    once the work has taken more than PROGRESS_DELAY_S."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.label, self.closed = total, 0, "", False
        self.progress = None
        self.task = None
        self.lock = threading.Lock()
        console = make_console(stderr=True)
        self.timer = threading.Timer(PROGRESS_DELAY_S, self._show, args=(console,)) \
            if console.is_terminal else None

    def _show(self, console) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        with self.lock:
            if self.closed:  # the work ended while the timer fired
                return
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"),
                                     TimeElapsedColumn(), console=console, transient=True)
            self.task = self.progress.add_task(self.label, total=self.total,
                                               completed=self.done)
            self.progress.start()

    def stage(self, label: str) -> None:
        """Start the next stage (the previous one is done)."""
        with self.lock:
            if self.label:
                self.done += 1
            self.label = label
            if self.progress is not None:
                self.progress.update(self.task, description=label, completed=self.done)

    @contextmanager
    def running(self) -> Iterator[Stages]:
        if self.timer:
            self.timer.daemon = True
            self.timer.start()
        try:
            yield self
        finally:
            if self.timer:
                self.timer.cancel()
            with self.lock:
                self.closed = True
                if self.progress is not None:
                    self.progress.stop()


@click.command(epilog="""\b
Examples:
  lpu compile model.onnx --shape input_ids=1,16 -o model.lpu
                                                      an exported model; its tensor names kept
  lpu compile --builtin bert-layer                    BERT layer, seq 128, fp32, on lp30
  lpu compile --builtin bert-layer --seq 16 --dtype bf16 --run
  lpu compile --builtin gpt-layer --decode --seq 64   one decode step against a 64-row cache
  lpu compile --builtin gpt-layer -o gpt.lpu          write the commented assembly
  lpu compile --builtin bert-layer --json             the report as one JSON object
""")
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--builtin", "name", metavar="LAYER", default=None,
              help="The layer: " + " or ".join(
                  f"{n} (d {b.d_model}, {b.heads} heads, d_ff {b.d_ff}, seq {b.seq})"
                  for n, b in BUILTINS.items()) + ".")
@click.option("--shape", "shapes", multiple=True, metavar="NAME=D0,D1,..",
              help="MODEL: the sizes of an input with symbolic dimensions (repeat per input).")
@click.option("--seq", type=int, default=None, help="Tokens (gpt-layer --decode: cache rows).")
@click.option("--decode", is_flag=True,
              help="gpt-layer: one decode step against a KV cache of --seq rows.")
@click.option("--heads", type=int, default=None, help="Attention heads.")
@click.option("--d-model", type=int, default=None, help="Model width.")
@click.option("--d-ff", type=int, default=None, help="Feed-forward width.")
@click.option("--dtype", default="fp32", show_default=True, metavar="MODE",
              help=f"Precision mode: {', '.join(MODES)}.")
@click.option("--chip", metavar="NAME", default=None,
              help=f"Chip preset ({', '.join(chip_names())}; default: {default_chip_name()}).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the program: .lpu (commented assembly) or .lpx (object file).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights.")
@click.option("--run", "run_it", is_flag=True,
              help="Run on the fast core and compare with numpy (max abs error / max abs value).")
def compile(model: Path | None, name: str | None, shapes: tuple[str, ...], seq: int | None,
            decode: bool, heads: int | None, d_model: int | None, d_ff: int | None, dtype: str,
            chip: str | None, output: Path | None, as_json: bool, seed: int,
            run_it: bool) -> None:
    """Compile an ONNX model or a built-in layer; report its schedule."""
    from lpu_emu.compiler.builtin import build, within
    from lpu_emu.compiler.report import report
    from lpu_emu.render.report import check_dict, check_line
    from lpu_emu.spec.chip import get_chip

    _check_source(model, name, shapes, seq=seq, decode=decode, heads=heads, d_model=d_model,
                  d_ff=d_ff, seed=seed, run=run_it)
    chip_name = get_chip(chip).name  # an unknown name is a UsageError naming the valid ones
    if output is not None and output.suffix not in SUFFIXES:
        raise UsageError(f"-o {output}: the file must end in {' or '.join(SUFFIXES)}",
                         hint=".lpu writes the commented assembly, .lpx the object file")
    stages = Stages(3 + run_it + (output is not None))
    start = time.perf_counter()
    built = None
    with stages.running():
        stages.stage(f"compiling {model.name if model is not None else name}")
        if model is not None:
            compiled = _compile_model(model, shapes, dtype, chip_name)
        else:
            built = build(name, seq=seq, decode=decode, heads=heads, d_model=d_model,
                          d_ff=d_ff, dtype=dtype, chip=chip_name, seed=seed)
            compiled = built.compiled
        stages.stage("planning")
        rep = report(compiled)
        seconds = time.perf_counter() - start
        data = None
        if output is not None:
            stages.stage(f"writing {output.name}")
            data = (compiled.assembly(output.name)[0].encode() if output.suffix == ".lpu"
                    else compiled.program.to_bytes())
        error = None
        if built is not None and run_it:
            stages.stage("running")
            error = built.check()
        stages.stage("done")
    if data is not None:
        write_atomically(output, data)
    if as_json:
        doc = rep.to_json()
        doc["compile_seconds"] = seconds
        if error is not None:
            doc["check"] = check_dict(error, dtype)
        click.echo(json.dumps(doc))
    else:
        from lpu_emu.render.report import FullReport
        console = make_console()
        console.print(FullReport(rep))
        if output is not None:
            console.print(f"wrote {output}")
        if error is not None:
            console.print(check_line(error, dtype))
    if error is not None and not within(error, dtype):
        raise click.exceptions.Exit(1)




def _check_source(model: Path | None, name: str | None, shapes: tuple[str, ...],
                  **builtin_options: object) -> None:
    """Exactly one of MODEL and --builtin; each with only its own options."""
    from lpu_emu.compiler.builtin import BUILTINS
    if (model is None) == (name is None):
        raise UsageError("give a model file (MODEL.onnx) or --builtin LAYER, not "
                         + ("both" if model is not None else "neither"),
                         hint=f"built-in layers: {', '.join(BUILTINS)}")
    if model is not None:
        given = [k for k, v in builtin_options.items() if v not in (None, False, 0)]
        if given:
            option = "--" + given[0].replace("_", "-")
            raise UsageError(f"{option} is an option of --builtin layers, not of a model file",
                             hint="a model's sizes come from the file and --shape; run its "
                                  "program with `lpu run OUT.lpu --input NAME=FILE.npy` or "
                                  "through lpu_emu.onnx_backend")
    elif shapes:
        raise UsageError("--shape is an option of model files, not of --builtin layers",
                         hint="a built-in layer's sizes: --seq, --heads, --d-model, --d-ff")


def _compile_model(path: Path, shapes: tuple[str, ...], dtype: str, chip: str):
    """An ONNX file -> Compiled, its inputs and outputs named as in the model."""
    from lpu_emu.compiler import compile_graph
    from lpu_emu.compiler.builtin import check_choice
    from lpu_emu.compiler.frontends.onnx import load_onnx, parse_shapes
    check_choice("--dtype", dtype, MODES)
    if path.suffix != ".onnx":
        raise UsageError(f"{path}: a model file ends in .onnx",
                         hint="or compile a built-in layer with --builtin LAYER")
    graph = load_onnx(path, parse_shapes(shapes))
    return compile_graph(graph, chip, dtype, name=path.stem)
