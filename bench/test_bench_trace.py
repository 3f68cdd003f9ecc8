"""Benchmarks of the tracer on a 100,000-issue program (programs/trace/pipeline.lpu), each as a
ratio to a baseline measured in the same run (see bench/README.md):

- open: run + plan + index (`Traced.run`) against the traced run alone;
- step: one `step` and the screen it shows (the step view and the chip strip, rendered to text)
  at cycle ~20,000, against replaying the log to that cycle (`EventLog.sram_at` and `streams_at`,
  what a tracer without the index would do per step);
- perfetto: the Chrome JSON export against the traced run;
- compiled: the same open and step on the compiled BERT layer (seq 16, bf16: `lpu compile
  --builtin bert-layer --seq 16 --dtype bf16`), stepped at its middle cycle.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from workloads import best, pick

from lpu_emu.asm import assemble_file
from lpu_emu.compiler.builtin import build
from lpu_emu.core import fast
from lpu_emu.core.run import run
from lpu_emu.trace.model import Traced
from lpu_emu.trace.perfetto import perfetto_json
from lpu_emu.trace.session import Session
from lpu_emu.trace.views import ChipView

ROOT = Path(__file__).resolve().parents[1]
RESULTS: dict[str, dict] = {}
# the heading of RESULTS in the session's summary
SUMMARY = "lpu-emu tracer: ratios to baselines measured in this run"
CYCLE = 20_000



@pytest.fixture(scope="module")
def program():
    fast.warm_up()
    return assemble_file(ROOT / "programs" / "trace" / "pipeline.lpu")


@pytest.fixture(scope="module")
def traced(program):
    return Traced.run(program)


def _report(name: str, benchmark, **figures) -> None:
    benchmark.extra_info.update(figures)
    RESULTS[name] = figures


def _step_and_screen(traced: Traced, cycle: int):
    """One `step` from `cycle` and the screen it shows (step view + chip strip), as text."""
    session = Session(traced, cycle)
    console = Console(file=io.StringIO(), width=100, color_system=None)

    def step():
        session.goto(cycle)
        for part in session.run("step"):
            console.print(part)
        console.print(ChipView(traced, session.cycle))
    return step


def test_open_100k_issues(benchmark, program):
    t_run = best(lambda: run(program, lenient=True, trace=True), pick(3, 2))
    t_open = best(lambda: Traced.run(program), pick(3, 2))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    issues = len(Traced.run(program).plan.issues)
    _report("trace_open", benchmark, issues=issues, traced_run_s=t_run, open_s=t_open,
            ratio=t_open / t_run)
    assert issues == 100_000 and t_open < 10
    assert t_open / t_run < 6  # 3.8x the median 1.6 (quick; full 1.4)


def test_step_latency_100k_issues(benchmark, traced):
    step = _step_and_screen(traced, CYCLE)

    def replay():
        traced.index.log.sram_at(CYCLE + 1)
        traced.index.log.streams_at(CYCLE + 1)

    t_step = best(step, rounds=pick(20, 10))
    t_replay = best(replay, pick(3, 2))
    benchmark.pedantic(step, rounds=5, iterations=1)
    _report("trace_step", benchmark, step_ms=t_step * 1e3, replay_ms=t_replay * 1e3,
            speedup_vs_replay=t_replay / t_step)
    assert t_step < 0.1  # no lag: well under a keystroke's repeat interval (median 1.1 ms)
    assert t_replay / t_step > 6  # 3.9x below the median 24 (quick; full 32)


def test_perfetto_export_100k_issues(benchmark, program, traced):
    t_run = best(lambda: run(program, lenient=True, trace=True), pick(3, 2))
    t_export = best(lambda: perfetto_json(traced), pick(3, 2))
    benchmark.pedantic(lambda: perfetto_json(traced), rounds=1, iterations=1)
    size = len(perfetto_json(traced))
    _report("trace_perfetto", benchmark, export_s=t_export, traced_run_s=t_run,
            ratio=t_export / t_run, megabytes=size / 1e6)
    assert t_export < 10
    assert t_export / t_run < 50  # 4x the median 12.4 (quick; full 9.7)


def test_step_latency_compiled_layer(benchmark):
    """Open the compiled BERT layer's Program in the tracer and step once in its middle (with
    the screen), against the traced run alone and against replaying the log to that cycle."""
    built = build("bert-layer", seq=16, dtype="bf16")
    program, inputs = built.compiled.program, built.compiled.inputs_for(built.inputs())
    traced = Traced.run(program, inputs=inputs)
    assert traced.violations == []
    cycle = traced.last_cycle // 2
    step = _step_and_screen(traced, cycle)
    t_run = best(lambda: run(program, inputs=inputs, lenient=True, trace=True), pick(3, 2))
    t_open = best(lambda: Traced.run(program, inputs=inputs), pick(3, 2))
    t_step = best(step, pick(20, 10))
    t_replay = best(lambda: (traced.index.log.sram_at(cycle + 1),
                             traced.index.log.streams_at(cycle + 1)), pick(3, 2))
    benchmark.pedantic(step, rounds=3, iterations=1)
    _report("trace_compiled_bert16", benchmark, issues=len(traced.plan.issues),
            cycles=traced.last_cycle, traced_run_s=t_run, open_s=t_open,
            open_vs_traced_run=t_open / t_run, step_ms=t_step * 1e3, replay_ms=t_replay * 1e3,
            speedup_vs_replay=t_replay / t_step)
    assert t_step < 0.1  # as on the 100,000-issue program (median 1.3 ms)
    assert t_open / t_run < 6  # 3.8x the median 1.57 (full; quick 1.2)
    assert t_replay / t_step > 3  # 3.7x below the median 11.2 (full; quick 13.9)
