"""The fast core's batched int8 ACCs (fast_loop: batch_conflict / batch_apply): consecutive int8
ACCs on one MXM plane are computed as one matmul, flushed before anything could observe or change
their results. The outputs must stay bit-identical to the reference interpreter.

Layout on tsp-v1 as tests/core/test_mxm.py: MXM_W0 at position 1, weights in MEM_W43 flowing west
on S0W, input vector j in MEM_W41 at address j reaching the MXM on S2W when ACC j issues, the
accumulator placed at position 1 on S4E..S7E after the ACC latency.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from core_helpers import I, Tensor, latency, make_program, run_ref
from diff_programs import random_program
from test_differential import assert_cores_agree

from lpu_emu.core import events as E
from lpu_emu.core import fast
from lpu_emu.core.run import run
from lpu_emu.spec import get_chip

N = 64
MID = 48  # ABC of accumulator 1 just before ACC MID
EARLY = 12  # ACC whose result a Write takes as early as possible (while later ACCs are pending)


def acc_of(j: int) -> int:
    return j % 3


def batch_program(xs: np.ndarray, w: np.ndarray):
    lat = latency("ACC")
    wt = Tensor("w", "int8", (320, 320), ("MEM_W43",), 0, 0)
    xt = Tensor("x", "int8", (N, 320), ("MEM_W41",), 0, 0)
    zt = Tensor("z", "int32", (2, 320), tuple(f"MEM_W{39 - q}" for q in range(4)), 0, 0)
    prog = [I("MEM_W43", 10 - 3, "Read", "int8", src=(0, 0), dst="S0W"),
            I("MEM_W43", 11 - 3, "Repeat", n=319, d=1, step=1),
            I("MXM_W0", 10, "LW", "int8", src="S0W", rows=1),
            I("MXM_W0", 11, "Repeat", n=319, d=1, step=0),
            I("MXM_W0", 330, "IW")]
    issue, cycles = 350, []
    for j in range(N):
        if j == MID:
            prog.append(I("MXM_W0", issue, "ABC", acc=1))
            issue += 1
        prog.append(I("MEM_W41", issue - 5, "Read", "int8", src=(0, j), dst="S2W"))
        prog.append(I("MXM_W0", issue, "ACC", "int8", x="S2W", z="S4E", acc=acc_of(j)))
        cycles.append(issue)
        issue += 1
    # plane q of an accumulator placed at (1, c + lat) passes MEM_W{39-q} (7 + q) at c+lat+6+q
    for row, j in ((0, EARLY), (1, N - 1)):
        for q in range(4):
            prog.append(I(f"MEM_W{39 - q}", cycles[j] + lat + 6 + q, "Write", "int32",
                          src=f"S{4 + q}E", dst=(0, row)))
    prog.sort(key=lambda i: i.cycle)
    return make_program(prog, tensors=[wt, xt, zt], data={"w": w, "x": xs})


def expected(xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Every ACC's accumulator after it (int32 wrap-around), in numpy's integer arithmetic."""
    accs = np.zeros((3, 320), np.int64)
    out = np.zeros((N, 320), np.int64)
    for j in range(N):
        if j == MID:
            accs[1] = 0
        a = acc_of(j)
        accs[a] = accs[a] + xs[j].astype(np.int64) @ w.astype(np.int64)
        accs[a] = (accs[a] + 2**31) % 2**32 - 2**31
        out[j] = accs[a]
    return out


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, size=(320, 320))
    xs = rng.integers(-128, 128, size=(N, 320))
    xs[::5] = np.where(rng.random((len(xs[::5]), 320)) < 0.5, 0, xs[::5])  # zeros skip exactly
    w[:, 0], xs[1, :] = -128, -128  # the largest sums
    program = batch_program(xs, w)
    return program, expected(xs, w), run_ref(program)


@pytest.mark.parametrize("batch, blas", [(64, 8), (64, 10_000), (5, 2), (0, 8)])
def test_batched_acc_outputs_equal_reference_and_numpy(case, monkeypatch, batch, blas):
    program, want, ref = case
    monkeypatch.setattr(fast, "BATCH", batch)
    monkeypatch.setattr(fast, "BATCH_BLAS", blas)
    r = run(program, engine="fast")
    st = dict(fast.batch_stats)
    assert ref.violations == [] and r.violations == []
    assert (r.sram == ref.sram).all()
    assert (r.tensor("z") == ref.tensor("z")).all()
    assert (r.tensor("z")[0] == want[EARLY]).all() and (r.tensor("z")[1] == want[N - 1]).all()
    if batch == 0:
        assert st["batched_accs"] == 0
        return
    assert st["batched_accs"] == N
    # the ABC, the early Write and the end flush at least; a full batch flushes too
    assert st["flushes"] >= (N // batch if batch < 32 else 3)
    if blas < 10:
        assert st["blas_flushes"] >= 1
    else:
        assert st["blas_flushes"] == 0


def test_traced_batched_run_records_every_acc_value(case, monkeypatch):
    program, want, ref = case
    monkeypatch.setattr(fast, "BATCH", 64)
    monkeypatch.setattr(fast, "BATCH_BLAS", 8)
    r = run(program, engine="fast", trace=True)
    assert fast.batch_stats["blas_flushes"] >= 1
    assert (r.sram == ref.sram).all()
    log = r.events
    place = log.select(kind=E.PLACE)
    rows = place[place[:, 5] == 2][:, 7]  # int32 placements: the ACCs', 4 planes each, in order
    assert len(rows) == 4 * N
    planes = log.values[rows].astype(np.uint32).reshape(N, 4, 320)
    got = planes[:, 0] | planes[:, 1] << 8 | planes[:, 2] << 16 | planes[:, 3] << 24
    assert (got.view(np.int32) == want).all()
    acc_ev = log.select(kind=E.ACC)
    assert len(acc_ev) == N and (acc_ev[:, 7] == rows[::4]).all()


def test_strict_stop_flushes_the_batch(monkeypatch):
    """A strict run stopping at a violation while ACCs are pending leaves the same SRAM and
    violation as the reference (the batch is flushed before the loop returns)."""
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(320, 320))
    xs = rng.integers(-128, 128, size=(N, 320))
    program = batch_program(xs, w)
    # drop the Read of x for ACC 40 (before the ABC): a no-value violation mid-batch
    mem = {s.name: s.index for s in get_chip("tsp-v1").slices}["MEM_W41"]
    keep = ~((program.cycle == 350 + 40 - 5) & (program.queue == mem))
    assert (~keep).sum() == 1
    cut = replace(program, cycle=program.cycle[keep], queue=program.queue[keep],
                  word=program.word[keep], src_file=program.src_file[keep],
                  src_line=program.src_line[keep], src_col=program.src_col[keep])
    monkeypatch.setattr(fast, "BATCH", 64)
    for lenient in (False, True):
        ref = run_ref(cut, lenient=lenient)
        r = run(cut, engine="fast", lenient=lenient)
        assert [v.kind for v in r.violations] == [v.kind for v in ref.violations]
        assert r.violations and r.cycles == ref.cycles
        assert (r.sram == ref.sram).all()
        if not lenient:  # stopped at ACC 40 with ACCs 0..39 pending: flushed in the loop
            assert fast.batch_stats == {"flushes": 1, "blas_flushes": 0, "batched_accs": 40}


@pytest.mark.parametrize("batch, blas", [(2, 1), (64, 1)])
def test_random_programs_agree_with_every_flush_through_blas(monkeypatch, batch, blas):
    """The differential check (test_differential.py) with tiny batches and every flush done by
    the caller's matmul, so both flush paths and the capacity flush meet random schedules."""
    monkeypatch.setattr(fast, "BATCH", batch)
    monkeypatch.setattr(fast, "BATCH_BLAS", blas)
    blas_flushes = 0
    for seed in range(150):
        chip = ("tiny", "tiny", "tsp-v1")[seed % 3]
        program = random_program(random.Random(seed), chip, 1 + seed % 24, (0.0, 0.05)[seed % 2])
        for lenient in (False, True):
            assert_cores_agree(program, lenient)
            blas_flushes += fast.batch_stats["blas_flushes"]
    assert blas_flushes > 20
