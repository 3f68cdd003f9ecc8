"""MXM semantics through the pipeline: LW x 320 (Repeat), IW, ABC, ACC, on tsp-v1.

Positions: MXM_W0 at 1, MEM_W{43-k} at 3 + k. Weight plane p lives in MEM_W{43-p} (one row per
address) and flows west on S{p}W: row i read at 10 + i - pos reaches the MXM at 10 + i, where
LW takes it. IW at 330 lands at 350. Input vector j's plane p lives in MEM_W{41-p} at address j
and reaches the MXM on S{2+p}W at 350 + j, when ACC j issues. The accumulator of the last ACC
(placed at 1 at 374 + j on S4E..S7E) is written by MEM_W{39-q} (position 7 + q) at
374 + j + 6 + q. With abc_before_last, ABC issues at 350 + j and the last ACC one cycle later.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from core_helpers import I, Tensor, make_program, run_ref

from lpu_emu.core.ops import mxm as mxm_ops

TYPED = {"int8": np.int8, "fp16": np.float16, "bf16": ml_dtypes.bfloat16,
         "fp8e4m3": ml_dtypes.float8_e4m3fn}
WIDTH = {"int8": 1, "fp16": 2, "bf16": 2, "fp8e4m3": 1}


def matmul_program(dtype: str, xs: np.ndarray, w: np.ndarray, abc_before_last: bool = False):
    width, n = WIDTH[dtype], len(xs)
    out = "int32" if dtype == "int8" else "fp32"
    wt = Tensor("w", dtype, (320, 320), tuple(f"MEM_W{43 - p}" for p in range(width)), 0, 0)
    xt = Tensor("x", dtype, (n, 320), tuple(f"MEM_W{41 - p}" for p in range(width)), 0, 0)
    zt = Tensor("z", out, (320,), tuple(f"MEM_W{39 - q}" for q in range(4)), 0, 0)
    prog = []
    for p in range(width):
        pos = 3 + p
        prog += [I(f"MEM_W{43 - p}", 10 - pos, "Read", dtype, src=(0, 0), dst=f"S{p}W"),
                 I(f"MEM_W{43 - p}", 11 - pos, "Repeat", n=319, d=1, step=1)]
    prog += [I("MXM_W0", 10, "LW", dtype, src="S0W", rows=1),
             I("MXM_W0", 11, "Repeat", n=319, d=1, step=0),
             I("MXM_W0", 330, "IW")]
    occ = 2 if width == 2 else 1  # fp16/bf16 ACCs keep the plane pair busy for 2 cycles
    for j in range(n):
        issue = 350 + j * occ
        if abc_before_last and j == n - 1:  # ABC at 350 + j, the last ACC one cycle later
            prog.append(I("MXM_W0", issue, "ABC", acc=5))
            issue += 1
        for p in range(width):
            prog.append(I(f"MEM_W{41 - p}", issue - (5 + p), "Read", dtype, src=(0, j),
                          dst=f"S{2 + p}W"))
        prog.append(I("MXM_W0", issue, "ACC", dtype, x="S2W", z="S4E", acc=5))
    last = issue
    for q in range(4):
        prog.append(I(f"MEM_W{39 - q}", last + 24 + 6 + q, "Write", out, src=f"S{4 + q}E",
                      dst=(0, 0)))
    prog.sort(key=lambda i: i.cycle)
    return make_program(prog, tensors=[wt, xt, zt], data={"w": w, "x": xs})


def k_ascending(xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """acc_j = fp32(acc_j + x[k] * W[k, j]) for k = 0..319, over the input vectors in turn."""
    acc = np.zeros(320, np.float32)
    wf = w.astype(np.float32)
    for x in xs.astype(np.float32):
        for k in range(320):
            acc = (acc + x[k] * wf[k]).astype(np.float32)
    return acc


def test_int8_matmul_is_exact():
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(320, 320))
    xs = rng.integers(-128, 128, size=(2, 320))
    w[:, 0], xs[:, :] = -128, np.where(np.arange(320) % 2, -128, xs)  # large sums
    r = run_ref(matmul_program("int8", xs, w))
    assert r.violations == []
    want = xs.astype(np.int64).sum(0) @ w.astype(np.int64)  # two ACCs accumulate
    assert (r.tensor("z") == want).all()
    assert r.cycles == 350 + 1 + 24 + 6 + 3 + 1  # the last Write (MEM_W36) lands


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp8e4m3"])
def test_float_matmul_accumulates_k_ascending_in_fp32(dtype):
    rng = np.random.default_rng(1)
    t = TYPED[dtype]
    w = (rng.standard_normal((320, 320)) * 2).astype(np.float32).astype(t)
    xs = (rng.standard_normal((2, 320)) * 3).astype(np.float32).astype(t)
    r = run_ref(matmul_program(dtype, xs.astype(np.float32), w.astype(np.float32)))
    assert r.violations == []
    got, want = r.tensor("z"), k_ascending(xs, w)
    assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()
    # and the order matters: a float64 dot rounded once is not the same on every lane
    once = (xs.astype(np.float64).sum(0) @ w.astype(np.float64)).astype(np.float32)
    assert (got != once).any()


def test_abc_clears_the_accumulator():
    rng = np.random.default_rng(2)
    w = rng.integers(-5, 5, size=(320, 320))
    xs = rng.integers(-5, 5, size=(3, 320))
    r = run_ref(matmul_program("int8", xs, w, abc_before_last=True))
    assert r.violations == []
    assert (r.tensor("z") == xs[2].astype(np.int64) @ w).all()


def test_missing_rows_are_zero_weights():
    # 3 rows only: LW 3 times, IW, ACC: rows 3.. are zero
    rng = np.random.default_rng(3)
    w = rng.integers(-9, 9, size=(3, 320))
    x = rng.integers(-9, 9, size=320)
    wt = Tensor("w", "int8", (3, 320), ("MEM_W43",), 0, 0)
    xt = Tensor("x", "int8", (320,), ("MEM_W41",), 0, 0)
    zt = Tensor("z", "int32", (320,), tuple(f"MEM_W{39 - q}" for q in range(4)), 0, 0)
    prog = [I("MEM_W43", 7, "Read", "int8", src=(0, 0), dst="S0W"),
            I("MEM_W43", 8, "Repeat", n=2, d=1, step=1),
            I("MXM_W0", 10, "LW", "int8", src="S0W", rows=1),
            I("MXM_W0", 11, "Repeat", n=2, d=1),
            I("MXM_W0", 13, "IW"),
            I("MEM_W41", 33 - 5, "Read", "int8", src=(0, 0), dst="S2W"),
            I("MXM_W0", 33, "ACC", "int8", x="S2W", z="S4E", acc=0)]
    prog += [I(f"MEM_W{39 - q}", 33 + 24 + 6 + q, "Write", "int32", src=f"S{4 + q}E",
               dst=(0, 0)) for q in range(4)]
    prog.sort(key=lambda i: i.cycle)
    r = run_ref(make_program(prog, tensors=[wt, xt, zt], data={"w": w, "x": x}))
    assert r.violations == []
    assert (r.tensor("z") == x[:3].astype(np.int64) @ w).all()


def test_acc_int8_wraps_in_int32():
    """ops.mxm.acc on its own: an accumulator near 2**31 wraps like numpy int32 addition."""
    bits = np.full(320, 2**31 - 10, np.int64).astype(np.uint32)
    x = np.zeros(320, np.int8)
    x[0] = 100
    w = np.zeros((320, 320), np.int8)
    w[0] = 1  # acc_j += 100
    got = mxm_ops.acc(bits, x, w, "int8").view(np.int32)
    want = (np.full(320, 2**31 - 10, np.int64) + 100 + 2**31) % 2**32 - 2**31
    assert got.tolist() == want.tolist()
    assert got[0] == -(2**31) + 90  # 2**31 - 10 + 100 = 2**31 + 90
