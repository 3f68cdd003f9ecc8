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

import numba
import numpy as np
import pytest
from core_helpers import I, Tensor, latency, make_program, run_ref
from diff_programs import random_program
from test_differential import assert_cores_agree

from lpu_emu.core import events as E
from lpu_emu.core import fast
from lpu_emu.core import fast_loop as F
from lpu_emu.core import jit_ops as J
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


# ---- float ACCs (fp16, bf16, fp8e4m3): batched too, computed by fast_loop.batch_compute_float
# (k ascending, fp32, one rounding per step); the reference interpreter computes them one at a
# time, so equal SRAM bits mean the batch kept the definition (NaN payloads included) ----
FLOAT_BITS = {"fp16": 16, "bf16": 16, "fp8e4m3": 8}


def float_values(dtype: str, bits: np.ndarray) -> np.ndarray:
    """Values whose tensor encoding is exactly `bits` (NaNs with payloads, infinities,
    subnormals), as the tensor layout takes them."""
    from lpu_emu import numerics as N

    if dtype == "fp16":
        return bits.astype("<u2").view(np.float16)
    if dtype == "bf16":
        return N.bf16_bits_to_f32(bits.astype("<u2"))
    return N.fp8_bits_to_f32(bits.astype(np.uint8))


def float_batch_program(dtype: str, xs: np.ndarray, w: np.ndarray, accs: list[int]):
    """As batch_program, in a float dtype: planes p of W from MEM_W(43-p) on S(p)W, one row a
    cycle; x_j's planes from MEM_W(41-p) on S(2+p)W; fp16/bf16 ACCs 2 cycles apart (the plane
    pair's occupancy). The fp32 accumulator after ACCs EARLY and N-1 is written."""
    lat, width = latency("ACC"), (2 if dtype in ("fp16", "bf16") else 1)
    step = get_chip("tsp-v1").mxm_float_occupancy if width == 2 else 1
    wt = Tensor("w", dtype, (320, 320), tuple(f"MEM_W{43 - p}" for p in range(width)), 0, 0)
    xt = Tensor("x", dtype, (N, 320), tuple(f"MEM_W{41 - p}" for p in range(width)), 0, 0)
    zt = Tensor("z", "fp32", (2, 320), tuple(f"MEM_W{39 - q}" for q in range(4)), 0, 0)
    prog = []
    for p in range(width):
        prog += [I(f"MEM_W{43 - p}", 10 - 3 - p, "Read", dtype, src=(0, 0), dst=f"S{p}W"),
                 I(f"MEM_W{43 - p}", 11 - 3 - p, "Repeat", n=319, d=1, step=1)]
    prog += [I("MXM_W0", 10, "LW", dtype, src="S0W", rows=1),
             I("MXM_W0", 11, "Repeat", n=319, d=1, step=0),
             I("MXM_W0", 330, "IW")]
    issue, cycles = 350, []
    for j in range(N):
        if j == MID:
            prog.append(I("MXM_W0", issue, "ABC", acc=1))
            issue += step
        for p in range(width):
            prog.append(I(f"MEM_W{41 - p}", issue - 5 - p, "Read", dtype, src=(0, j),
                          dst=f"S{2 + p}W"))
        prog.append(I("MXM_W0", issue, "ACC", dtype, x="S2W", z="S4E", acc=accs[j]))
        cycles.append(issue)
        issue += step
    for row, j in ((0, EARLY), (1, N - 1)):
        for q in range(4):
            prog.append(I(f"MEM_W{39 - q}", cycles[j] + lat + 6 + q, "Write", "fp32",
                          src=f"S{4 + q}E", dst=(0, row)))
    prog.sort(key=lambda i: i.cycle)
    return make_program(prog, tensors=[wt, xt, zt], data={"w": w, "x": xs})


@pytest.fixture(scope="module", params=sorted(FLOAT_BITS))
def float_case(request):
    """Random bits (every NaN payload, infinities, subnormals) in a few lanes, small exact
    values elsewhere; accumulators j % 5 (groups of 4 distinct ones: the 4-wide kernel) and
    runs of one accumulator (the 1-wide kernel, each ACC starting from the last one's result)."""
    dtype = request.param
    rng = np.random.default_rng(11)
    w = rng.integers(-8, 8, size=(320, 320)).astype(np.float32) / 4
    xs = rng.integers(-8, 8, size=(N, 320)).astype(np.float32) / 8
    wild_w = float_values(dtype, rng.integers(0, 1 << FLOAT_BITS[dtype], (320, 16)))
    wild_x = float_values(dtype, rng.integers(0, 1 << FLOAT_BITS[dtype], (N, 4)))
    w = w.astype(wild_w.dtype)
    xs = xs.astype(wild_x.dtype)
    w[:, 300:316], xs[:, 0:4] = wild_w, wild_x  # NaN lanes: the replay with numpy's rule
    accs = [j % 5 if j < 40 else 2 for j in range(N)]
    program = float_batch_program(dtype, xs, w, accs)
    return dtype, program, run_ref(program)


@pytest.mark.parametrize("batch", [64, 5, 0])
def test_batched_float_accs_equal_reference_bit_for_bit(float_case, monkeypatch, batch):
    dtype, program, ref = float_case
    monkeypatch.setattr(fast, "BATCH", batch)
    r = run(program, engine="fast")
    st = dict(fast.batch_stats)
    assert ref.violations == [] and r.violations == []
    z, zr = r.tensor("z"), ref.tensor("z")
    assert z.view(np.uint32).tolist() == zr.view(np.uint32).tolist()
    assert (r.sram == ref.sram).all()
    assert np.isnan(z).any() and (~np.isnan(z)).any()  # NaN lanes (replayed) and others
    assert st["batched_accs"] == (0 if batch == 0 else N)
    assert st["blas_flushes"] == 0  # float batches never go to BLAS
    if batch:  # the early Write, the ABC, the end, and every full batch flush
        assert st["flushes"] >= max(3, N // batch)


def test_batched_float_acc_values_are_k_ascending_fp32():
    """Independently of both cores: the last ACC's accumulator (a run of ACCs on accumulator 2
    from ACC 40 on, after ABC-free accumulation) recomputed step by step in numpy float32."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((320, 320)) * 3).astype(np.float16)
    xs = (rng.standard_normal((N, 320)) * 3).astype(np.float16)
    accs = [j % 5 if j < 40 else 2 for j in range(N)]
    r = run(float_batch_program("fp16", xs, w, accs), engine="fast")
    assert r.violations == [] and fast.batch_stats["batched_accs"] == N
    acc = np.zeros(320, np.float32)
    wf = w.astype(np.float32)
    for j in range(N):
        if accs[j] != 2:
            continue
        for k in range(320):
            acc = (acc + np.float32(xs[j, k]) * wf[k]).astype(np.float32)
    assert r.tensor("z")[1].view(np.uint32).tolist() == acc.view(np.uint32).tolist()


@pytest.mark.parametrize("dtype", sorted(FLOAT_BITS))
def test_batched_float_accs_skip_only_steps_that_change_nothing(dtype, monkeypatch):
    """The float kernel leaves out step k where every product is +-0 (fast_loop.skip_row): W's
    row k all zero (+0 or -0) and x finite, or x zero and the row finite. Against the reference
    (every step), bit for bit: rows of +0 and of -0, x zero in 20 lanes, an infinity (NaN in
    fp8, which has none) in W's otherwise zero row 150 where every x is 0 (0 * inf: NaN in
    lane 7 of every ACC), and in x at a zero row of W for ACC 45 (NaN in every lane of the
    accumulator after it)."""
    monkeypatch.setattr(fast, "BATCH", 64)
    big = np.float32(np.nan if dtype == "fp8e4m3" else np.inf)
    rng = np.random.default_rng(21)
    w = rng.integers(-8, 8, size=(320, 320)).astype(np.float32) / 4
    xs = rng.integers(1, 8, size=(N, 320)).astype(np.float32) / 8
    w[:100], w[100:150], w[150] = 0.0, -0.0, 0.0
    w[150, 7] = big
    xs[:, 200:220], xs[:, 150] = 0.0, 0.0
    xs[45, 10] = big
    accs = [j % 5 if j < 40 else 2 for j in range(N)]
    program = float_batch_program(dtype, xs, w, accs)
    ref, r = run_ref(program), run(program, engine="fast")
    assert ref.violations == [] and r.violations == []
    assert (r.sram == ref.sram).all()
    z = r.tensor("z")  # accumulator 2 after ACC EARLY (12), and after N - 1 (from 40 on)
    assert np.isnan(z[0, 7]) and not np.isnan(np.delete(z[0], 7)).any()
    assert np.isnan(z[1]).all()


# ---- the float batch kernel alone (fast_loop.batch_compute_float over simd.py's tiles) against
# the definition in numpy: every tile width (8, 4 and 1 ACCs a group), a column count that leaves a
# tail the tiles do not cover, skipped steps, and bf16 products that overflow fp32 ----
@numba.njit
def _float_batch(xb, yb, wdec, wmeta, bmeta, acc, regs, rows, cols):
    F.batch_compute_float(xb, yb, wdec, wmeta, bmeta, acc, regs, rows, cols)


def definition(x: np.ndarray, w: np.ndarray, accs: list[int], cols: int) -> np.ndarray:
    """The accumulator after each ACC, one at a time: s = fp32(s + fp32(x_k * w_k)), k ascending,
    every accumulator starting at +0."""
    state = {a: np.zeros(cols, np.float32) for a in set(accs)}
    out = np.zeros((len(accs), cols), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for i, a in enumerate(accs):
            s = state[a]
            for k in range(w.shape[0]):
                s = (s + (x[i, k] * w[k, :cols]).astype(np.float32)).astype(np.float32)
            state[a] = out[i] = s
    return out


@pytest.mark.parametrize("cols", [24, 40, 320])
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_float_batch_kernel_keeps_the_definition_in_every_tile(dtype, cols):
    """44 ACCs: 16 on 16 different accumulators (two 8-ACC tiles), 4 more on different ones (a
    4-ACC tile), 4 runs on accumulator 0 (1-ACC tiles, each starting from the one before), 20 on
    5 accumulators (4-ACC groups). W's rows 0-39 are zero (left out). bf16: x and w up to 2^100,
    so some products overflow fp32 to inf (and inf - inf gives NaN) where an FMA would not:
    the bf16 tiles must round the product and the sum apart."""
    rows, nb = 320, 44
    accs = list(range(16)) + list(range(16, 20)) + [0] * 4 + [20 + j % 5 for j in range(20)]
    rng = np.random.default_rng(cols)
    x = rng.integers(-8, 8, (nb, rows)).astype(np.float32) / 8
    w = rng.integers(-8, 8, (rows, cols)).astype(np.float32) / 4
    w[:40] = 0
    if dtype == "bf16":
        x[::3, 49], x[::3, 50] = -1.5 * 2.0 ** 63, 1.5 * 2.0 ** 64
        w[49:51, ::4] = 2.0 ** 64
    regs = np.zeros(F.NREGS, np.int64)
    regs[F.R_BN], regs[F.R_BDT] = nb, {"fp16": J.FP16, "bf16": J.BF16}[dtype]
    wdec = np.zeros((1, rows, 320), np.float32)
    wdec[0, :, :cols] = w
    wmeta = np.zeros((1, F.WM_ROWS + rows), np.int64)
    wmeta[0, F.WM_ROWS:] = [F.row_class(r) for r in w]
    bmeta = np.zeros((nb, F.BM_COLS), np.int64)
    bmeta[:, F.BM_ACC] = accs
    xb, yb = np.zeros((nb, 320), np.float32), np.zeros((nb, cols), np.float32)
    xb[:, :rows] = x
    _float_batch(xb, yb, wdec, wmeta, bmeta, np.zeros((1, 32, 320), np.uint32), regs, rows, cols)
    want = definition(x, w, accs, cols)
    assert yb.view(np.uint32).tolist() == want.view(np.uint32).tolist()
    if dtype == "bf16":
        assert np.isinf(want[::3, ::4]).all() and np.isfinite(want[1:16:3]).all()


@pytest.mark.parametrize(("mode", "blas"), [("bf16", 32), ("int8", 32), ("int8", 10_000)])
def test_accs_alternating_between_planes_share_one_batch(mode, blas, monkeypatch):
    """A compiled matmul deals its ACCs to two plane pairs, one each in turn (MXM_W0, MXM_E0:
    the compiler's schedule). The batch holds both planes' ACCs; at a flush each plane's ACCs
    become one run of rows (fast_loop.batch_by_plane), computed with that plane's weights: in
    the loop, or one BLAS matmul a plane (int8, fast.py). Flushing whenever the plane changed
    made one flush per ACC. Both cores, bit for bit."""
    from lpu_emu.compiler.builder import GraphBuilder
    from lpu_emu.compiler.pipeline import compile_graph
    from lpu_emu.core import plan as PL
    from lpu_emu.spec import default_isa

    monkeypatch.setattr(fast, "BATCH_BLAS", blas)
    rng = np.random.default_rng(3)
    b = GraphBuilder("mm")
    w = b.constant("w", rng.standard_normal((384, 640)).astype(np.float32))
    b.output(b.op("MatMul", [b.input("x", (64, 384)), w]), "y")
    x = {"x": rng.standard_normal((64, 384)).astype(np.float32)}
    compiled = compile_graph(b.build(), "lp30", mode, calibration=x if mode == "int8" else None)
    plan = PL.make_plan(compiled.program, get_chip("lp30"), default_isa())
    accs = plan.issues[plan.issues[:, PL.OP] == default_isa().lookup("ACC").opcode]
    planes = accs[:, PL.UNIT]
    assert len(set(planes.tolist())) == 2 and (planes[1:] != planes[:-1]).mean() > 0.5
    got = compiled.run(x, engine="fast")
    stats = dict(fast.batch_stats)
    want = compiled.run(x, engine="reference")
    assert got["y"].view(np.uint32).tolist() == want["y"].view(np.uint32).tolist()
    assert stats["batched_accs"] == len(accs)
    assert stats["flushes"] <= len(accs) // 8
    assert (stats["blas_flushes"] > 0) == (mode == "int8" and blas == 32)
