"""Benchmarks of the fast core, each reported as a ratio to a baseline measured in the same run.

`pytest bench` runs them (they are not in the default `pytest` run); add `--benchmark-enable`
for pytest-benchmark's own statistics of the timed calls. The ratios (what to read) are printed
at the end of the session and stored in each benchmark's extra_info; see bench/README.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import pytest
from workloads import (
    MEM_PAIRS,
    QUICK,
    best,
    blas_threads,
    mem_heavy,
    mxm_heavy,
    numpy_mem,
    numpy_mxm,
    numpy_sxm,
    numpy_vxm,
    one_blas_thread,
    pick,
    sxm_heavy,
    sxm_lanemaps,
    timed,
    vxm_heavy,
)

from lpu_emu.core import fast, reference
from lpu_emu.core import fast_loop as F
from lpu_emu.core import jit_ops as J
from lpu_emu.core.plan import make_plan
from lpu_emu.core.run import run
from lpu_emu.core.state import new_machine
from lpu_emu.spec import default_isa, get_chip

ROOT = Path(__file__).resolve().parents[1]
RESULTS: dict[str, dict] = {}
# the heading of RESULTS in the session's summary
SUMMARY = "lpu-emu fast core: ratios to baselines measured in this run"
# speedup_vs_numpy_blas must stay above: 4-5x below the medians with one BLAS thread (int8 1.9
# over 1.2-3.7; fp16 0.6 over 0.5-1.6)
MXM_BLAS_FLOOR = {"int8": 0.45, "fp16": 0.12}



def _runner(program, trace: bool = False, engine=fast.run_plan):
    """A zero-argument callable running `program` on a fresh machine (built outside the timing
    would be nicer, but a Machine is single-use; its lazy SRAM costs microseconds to make)."""
    chip = get_chip(program.chip)
    plan = make_plan(program, chip, default_isa())

    def go():
        return engine(plan, new_machine(chip, program), False, trace)
    go.plan = plan  # type: ignore[attr-defined]
    return go


def _report(name: str, benchmark, **figures) -> None:
    benchmark.extra_info.update(figures)
    RESULTS[name] = figures


@pytest.fixture(scope="module", autouse=True)
def _warm():
    fast.warm_up()


def test_vxm_heavy_throughput(benchmark):
    """16 issues per cycle (8 MEM Reads feeding 8 VXM ALU ops on fp32) for 2,000 cycles, against
    numpy doing the same lane work one call per op, and against the reference interpreter."""
    cycles = 2000
    go = _runner(vxm_heavy(cycles))
    raw, stopped, _ = go()
    assert raw == [] and stopped == -1
    issues = len(go.plan)
    t_fast = best(go)
    benchmark.pedantic(go, rounds=3, iterations=1)
    x = np.linspace(-3, 3, 320).astype(np.float32)
    t_numpy = best(lambda: numpy_vxm(cycles, x, x[::-1].copy()), 3)
    ref = _runner(vxm_heavy(40), engine=reference.run_plan)
    t_ref_issue = best(ref, 2) / len(ref.plan)
    _report("vxm_heavy", benchmark, issues=issues, fast_s=t_fast,
            issues_per_s=issues / t_fast, numpy_s=t_numpy, speedup_vs_numpy=t_numpy / t_fast,
            speedup_vs_reference=t_ref_issue / (t_fast / issues))
    # the jitted loop beats one numpy call per op (median 3.5: 3.6 quick, 3.5 full)
    assert t_numpy / t_fast > 1


def test_mem_heavy_throughput(benchmark):
    """64 SRAM accesses per cycle (32 row Reads onto 32 east streams, 32 row Writes 32 hops on)
    for 2,000 cycles: a copy of 32 tensors of 2,000 rows, against one numpy row copy per access,
    and against the reference interpreter. The copy is checked row for row first."""
    cycles = 2000
    program = mem_heavy(cycles)
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, (MEM_PAIRS, cycles, 320)).astype(np.int8)
    result = run(program, inputs={f"a{i}": a[i] for i in range(MEM_PAIRS)}, engine="fast")
    assert result.ok
    assert all(np.array_equal(np.asarray(result.tensor(f"b{i}")), a[i])
               for i in range(MEM_PAIRS))
    go = _runner(program)
    raw, stopped, _ = go()
    assert raw == [] and stopped == -1
    issues = len(go.plan)
    t_fast = best(go)
    benchmark.pedantic(go, rounds=3, iterations=1)
    t_numpy = best(lambda: numpy_mem(cycles, a), 3)
    ref = _runner(mem_heavy(40), engine=reference.run_plan)
    t_ref_issue = best(ref, 2) / len(ref.plan)
    _report("mem_heavy", benchmark, issues=issues, fast_s=t_fast, issues_per_s=issues / t_fast,
            sram_bytes_per_s=issues * 320 / t_fast, numpy_s=t_numpy,
            speedup_vs_numpy=t_numpy / t_fast,
            speedup_vs_reference=t_ref_issue / (t_fast / issues))
    assert t_numpy / t_fast > 0.2  # 3.7x below the median 0.75 (full; quick 1.04)


def test_sxm_heavy_throughput(benchmark):
    """The four SXM units each move one fp32 vector per cycle (Rotate, Permute, Distribute,
    ShiftUp), fed by 8 MEM Reads, for 2,000 cycles: against numpy doing the same lane work one
    call per op, and against the reference interpreter."""
    cycles = 2000
    go = _runner(sxm_heavy(cycles))
    raw, stopped, _ = go()
    assert raw == [] and stopped == -1
    issues = len(go.plan)
    t_fast = best(go)
    benchmark.pedantic(go, rounds=3, iterations=1)
    x, y = np.linspace(-3, 3, 320).astype(np.float32), np.linspace(2, -2, 320).astype(np.float32)
    t_numpy = best(lambda: numpy_sxm(cycles, x, y, sxm_lanemaps(320)), 3)
    ref = _runner(sxm_heavy(40), engine=reference.run_plan)
    t_ref_issue = best(ref, 2) / len(ref.plan)
    _report("sxm_heavy", benchmark, issues=issues, fast_s=t_fast, issues_per_s=issues / t_fast,
            numpy_s=t_numpy, speedup_vs_numpy=t_numpy / t_fast,
            speedup_vs_reference=t_ref_issue / (t_fast / issues))
    assert t_numpy / t_fast > 0.95  # 4x below the median 3.8 (quick 3.86, full 3.81)


@pytest.mark.parametrize("dtype", ("int8", "fp16"))
def test_mxm_heavy_throughput(benchmark, dtype):
    """320 LW + IW, then one 320x320 ACC per cycle for 1,000 cycles, against one BLAS fp32
    matrix-vector product per ACC in numpy, and against the reference interpreter. BLAS on one
    thread for both (int8 batches are one numpy sgemm each): with numpy's default two threads
    on a loaded 2-core VM the same run swung from 2.9 to 124 ms (best of 5), so the threshold
    is on the one-thread figures; `default_threads_s` is the run as users get it (bench/README)."""
    cycles = 1000
    go = _runner(mxm_heavy(cycles, dtype))
    raw, stopped, _ = go()
    assert raw == [] and stopped == -1
    t_default = best(go)
    rng = np.random.default_rng(0)
    w, x = rng.integers(-3, 4, (320, 320)), rng.integers(-3, 4, 320)
    with one_blas_thread():
        t_fast = timed(benchmark, go, 5)
        t_numpy = best(lambda: numpy_mxm(cycles, x, w), 3)
    ref = _runner(mxm_heavy(20, dtype), engine=reference.run_plan)
    t_ref = best(ref, 2)
    per_acc_fast = t_fast / cycles  # LW/IW are ~1/3 of the issues but a small part of the time
    _report(f"mxm_heavy_{dtype}", benchmark, issues=len(go.plan), fast_s=t_fast,
            default_threads_s=t_default, acc_per_s=1 / per_acc_fast,
            macs_per_s=320 * 320 / per_acc_fast, numpy_s=t_numpy,
            speedup_vs_numpy_blas=t_numpy / t_fast,
            speedup_vs_reference=(t_ref / len(ref.plan)) / (t_fast / len(go.plan)))
    # threshold ~4x below the median: MXM_BLAS_FLOOR
    assert t_numpy / t_fast > MXM_BLAS_FLOOR[dtype]


@numba.njit  # not cached: a cache keyed on this file would outlive changes to the core
def _float_batch(xb, yb, wdec, wmeta, bmeta, acc, regs, rows, cols):
    F.batch_compute_float(xb, yb, wdec, wmeta, bmeta, acc, regs, rows, cols)


def _float_kernel_vs_sgemm(dtype: str) -> dict:
    """The float batch kernel alone on 128 ACCs, checked bit for bit against the definition,
    and timed against sgemm of the same shapes (BLAS on one thread: the caller's)."""
    nb, rows, cols, nacc = fast.BATCH, 320, 320, 64
    rng = np.random.default_rng(0)
    x = rng.standard_normal((nb, 320)).astype(np.float16).astype(np.float32)
    w = rng.standard_normal((rows, cols)).astype(np.float16).astype(np.float32)
    yb, acc = np.zeros((nb, cols), np.float32), np.zeros((1, nacc, 320), np.uint32)
    bmeta = np.zeros((nb, F.BM_COLS), np.int64)
    bmeta[:, F.BM_ACC] = np.arange(nb) % nacc
    regs = np.zeros(F.NREGS, np.int64)
    regs[F.R_BN], regs[F.R_BDT] = nb, {"fp16": J.FP16, "bf16": J.BF16}[dtype]
    wdec = w[None].copy()
    wmeta = np.zeros((1, F.WM_ROWS + rows), np.int64)  # dense rows: no step is left out
    wmeta[0, F.WM_ROWS:] = [F.row_class(r) for r in w]
    assert (wmeta[0, F.WM_ROWS:] == F.ROW_FINITE).all()
    kernel = lambda: _float_batch(x, yb, wdec, wmeta, bmeta, acc, regs, rows, cols)  # noqa: E731
    kernel()
    want = np.zeros((nb, cols), np.float32)
    for k in range(rows):  # the definition, in numpy: the first 64 ACCs start from zero
        want = (want + x[:, k:k + 1] * w[k][None, :]).astype(np.float32)
    assert yb[:nacc].view(np.uint32).tolist() == want[:nacc].view(np.uint32).tolist()
    t_kernel, t_sgemm = best(kernel, 9), best(lambda: x @ w, 9)
    return {"kernel_s": t_kernel, "sgemm_s": t_sgemm, "kernel_vs_sgemm": t_kernel / t_sgemm}


@pytest.mark.parametrize("dtype", ("fp16", "bf16"))
def test_float_acc_batch_vs_sgemm(benchmark, dtype):
    """Float ACCs batched: the kernel alone on 128 ACCs (8 at a time on different accumulators;
    k ascending, fp32, one rounding per step) against numpy's sgemm of the same shapes,
    [128, 320] x [320, 320]; and the whole emulation of mxm_heavy (1,000 ACCs, 2 cycles apart:
    the plane pair) against sgemm [1000, 320] x [320, 320]. Target (issue 10): the kernel within
    2x of sgemm. Quick mode leaves the kernel alone out: it is its own numba compile, ~10 s in
    a fresh cache (CI's)."""
    n = 1000
    go = _runner(mxm_heavy(n, dtype))
    raw, stopped, _ = go()
    assert raw == [] and stopped == -1
    w = np.random.default_rng(0).standard_normal((320, 320)).astype(np.float32)
    xs = np.random.default_rng(1).standard_normal((n, 320)).astype(np.float32)
    before = blas_threads(1)
    try:
        figures = {} if QUICK else _float_kernel_vs_sgemm(dtype)
        t_run = timed(benchmark, go, pick(5, 3))
        t_sgemm_n = best(lambda: xs @ w, 5)
    finally:
        blas_threads(before)
    _report(f"float_acc_batch_{dtype}", benchmark, blas_threads=1 if before else "default",
            **figures, emulated_1000_s=t_run, sgemm_1000_s=t_sgemm_n,
            emulated_vs_sgemm=t_run / t_sgemm_n, us_per_acc=t_run / n * 1e6)
    if figures:  # ~4x the median 0.96 (fp16 0.965, bf16 0.957; 3.4-3.5 before simd.py's tiles)
        assert figures["kernel_vs_sgemm"] < 4
    assert t_run / t_sgemm_n < 16  # ~4.5x the median 3.5 (fp16 3.6, bf16 3.5; 8.4 before)


@pytest.mark.parametrize("workload", ("vxm", "mxm"))
def test_traced_run_costs_at_most_3x(benchmark, workload):
    """The event log (every issue, stream take and placement, SRAM access, MXM step) must not
    cost more than 3x an untraced run."""
    program = vxm_heavy(2000) if workload == "vxm" else mxm_heavy(1000, "fp16")
    plain, traced = _runner(program), _runner(program, trace=True)
    t_plain, t_traced = best(plain), best(traced)
    benchmark.pedantic(traced, rounds=3, iterations=1)
    log = traced()[2]
    _report(f"trace_{workload}", benchmark, untraced_s=t_plain, traced_s=t_traced,
            ratio=t_traced / t_plain, events=len(log), value_rows=len(log.values))
    assert t_traced / t_plain <= 3  # issue 10's bound (median: vxm 1.5, mxm 1.0-1.1)


def _wall(code: str, env: dict | None = None, runs: int = 5) -> tuple[float, str]:
    """Median wall time of `python -c code` over `runs` runs, and the last run's stderr."""
    times, err = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        # -P: lpu_emu as installed, not from the source tree in cwd (under .ci/run the installed
        # package's numba cache is the warm one)
        proc = subprocess.run([sys.executable, "-P", "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        err = proc.stderr
    return statistics.median(times), err


SMALL_RUN = ("from lpu_emu.asm.assembler import assemble_file; from lpu_emu.core.run import run; "
             "r = run(assemble_file('programs/vecadd.lpu')); assert not r.violations")
# the same on the numba core (engine auto runs a program this small on the reference)
SMALL_RUN_FAST = SMALL_RUN.replace("'))", "'), engine='fast')")
# `lpu trace programs/vecadd.lpu --text`: engine auto traces it on the reference (the same log)
SMALL_TRACE = ("import sys; from lpu_emu.cli import main; "
               "sys.argv = ['lpu', 'trace', 'programs/vecadd.lpu', '--text']; main()")
# `lpu run programs/vecadd.lpu` and `lpu demo vecadd` as the command line runs them
SMALL_CLI_RUN = SMALL_TRACE.replace("'trace', 'programs/vecadd.lpu', '--text'",
                                    "'run', 'programs/vecadd.lpu'")
SMALL_DEMO = SMALL_TRACE.replace("'trace', 'programs/vecadd.lpu', '--text'", "'demo', 'vecadd'")


def test_warm_process_start_vs_import_numba(benchmark):
    """A whole process that imports lpu-emu and runs (or traces) a small program from the warm
    on-disk cache, against a process that only imports numba and numpy (the floor)."""
    _wall(SMALL_RUN_FAST, runs=1)  # make sure the cache is warm
    runs = pick(5, 3)
    t_run, err = _wall(SMALL_RUN, runs=runs)  # engine auto: the reference, no numba start-up
    t_fast, _ = _wall(SMALL_RUN_FAST, runs=runs)
    t_trace, _ = _wall(SMALL_TRACE, runs=runs)
    t_cli, _ = _wall(SMALL_CLI_RUN, runs=runs)
    t_demo, _ = _wall(SMALL_DEMO, runs=runs)
    t_numba, _ = _wall("import numba, numpy", runs=runs)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    _report("warm_start", benchmark, run_small_program_s=t_run, fast_engine_s=t_fast,
            trace_small_program_s=t_trace, cli_run_s=t_cli, demo_one_s=t_demo,
            import_numba_s=t_numba, ratio=t_run / t_numba, fast_ratio=t_fast / t_numba,
            trace_ratio=t_trace / t_numba, cli_run_ratio=t_cli / t_numba,
            demo_ratio=t_demo / t_numba)
    assert "compiling" not in err
    assert t_run / t_numba < 1.5  # issue 10: at most 1.5x the bare import (median 0.73-0.77)
    assert t_trace / t_numba < 1.5  # the same bound for `lpu trace --text` (median 0.9-1.2)
    assert t_cli / t_numba < 1.5  # the same for `lpu run programs/vecadd.lpu` (1.08-1.16)
    assert t_demo / t_numba < 1.5  # and `lpu demo vecadd` (1.00-1.27)
    assert t_fast / t_numba < 10  # 3.7x the median 2.7 (quick 2.5)


@pytest.mark.skipif(QUICK, reason="~30 s; under .ci/run the test suite's first run is the cold "
                    "compile")
def test_cold_compile(benchmark):
    """A process with an empty numba cache: it compiles the core, and says so on stderr."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        t_cold, err = _wall(SMALL_RUN_FAST, env=env, runs=1)
        t_warm, _ = _wall(SMALL_RUN_FAST, env=env, runs=3)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    _report("cold_compile", benchmark, cold_s=t_cold, warm_s=t_warm, cold_vs_warm=t_cold / t_warm)
    assert "compiling the lpu-emu core" in err
    assert t_cold / t_warm < 120  # 3.5x the median 34 (29-44 s against ~1 s)
