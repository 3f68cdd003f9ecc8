"""Benchmark workloads, written as assembly for lp30, and numpy baselines doing the same lane work.

vxm_heavy(n): for n cycles, 8 MEM slices stream two fp32 vectors (x on S0E..S3E, y on S4E..S7E)
past the VXM, where 8 ALUs each issue one op per cycle (Exp, Add, Mul, Max, Sub, Min, MulI, Relu)
onto their own west stream group: 16 issues per cycle, half of them VXM ALU ops.

mxm_heavy(n, dtype): 320 weight rows stream from MEM_W2 into MXM_W0 (LW), are installed (IW),
then an activation vector streams past every cycle for n cycles (ACC onto S4E.., accumulator
0): one MEM Read and one 320x320 ACC per cycle.
"""

from __future__ import annotations

import time

import numpy as np

from lpu_emu.asm.assembler import assemble_text
from lpu_emu.program import Program
from lpu_emu.spec import get_chip


def best(fn, rounds: int = 5) -> float:
    """The fastest of `rounds` calls, in seconds (a 2-core VM is noisy: the minimum is stable)."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


VXM_OPS = ("Exp", "Add", "Mul", "Max", "Sub", "Min", "MulI", "Relu")


def vxm_heavy(n: int) -> Program:
    t = 12  # x and y reach the VXM (position 81) at cycle t, t + 1, ...
    lines = [".chip lp30",
             ".tensor x, fp32, (320), MEM_W3..MEM_W0, 0, 0",
             ".values x, " + ", ".join(f"{v:.3f}" for v in np.linspace(-3, 3, 64)),
             ".tensor y, fp32, (320), MEM_W7..MEM_W4, 0, 0",
             ".values y, " + ", ".join(f"{v:.3f}" for v in np.linspace(2, -2, 64))]
    for p in range(4):  # MEM_W(3-p) at position 77 + p holds plane p of x; MEM_W(7-p) of y
        lines.append(f"MEM_W{3 - p} @{t - 5 + p} Read.fp32 x, S{p}E")
        lines.append(f"MEM_W{7 - p} @{t - 9 + p} Read.fp32 y, S{4 + p}E")
        if n > 1:
            lines.append(f"MEM_W{3 - p} +1 Repeat {n - 1}, 1")
            lines.append(f"MEM_W{7 - p} +1 Repeat {n - 1}, 1")
    for i, op in enumerate(VXM_OPS):
        args = {"MulI": "S0E, 0.5", "Exp": "S0E", "Relu": "S4E"}.get(op, "S0E, S4E")
        lines.append(f"VXM{i} @{t} {op}.fp32 {args}, S{4 * i}W")
        if n > 1:
            lines.append(f"VXM{i} +1 Repeat {n - 1}, 1")
    return assemble_text("\n".join(lines) + "\n", "<vxm_heavy>")


def mxm_heavy(n: int, dtype: str = "int8") -> Program:
    w = 2 if dtype in ("fp16", "bf16") else 1
    occ = get_chip("lp30").mxm_float_occupancy if w == 2 else 1  # fp16/bf16 ACCs: 2 cycles each
    t_lw = 1 + 77  # row k leaves MEM_W2 (78) at k + 1 and reaches MXM_W0 (1) at k + 78
    t_iw = t_lw + 320
    t_acc = t_iw + 20 + 1
    rng = np.random.default_rng(0)
    vals = rng.integers(-3, 4, 64).tolist()
    lines = [".chip lp30",
             f".tensor W, {dtype}, (320, 320), MEM_W{2 + w - 1}..MEM_W2, 0, 0" if w == 2 else
             f".tensor W, {dtype}, (320, 320), MEM_W2, 0, 0",
             ".values W, " + ", ".join(map(str, vals)),
             f".tensor x, {dtype}, (320), MEM_W{4 + w - 1}..MEM_W4, 0, 0" if w == 2 else
             f".tensor x, {dtype}, (320), MEM_W4, 0, 0",
             ".values x, " + ", ".join(map(str, vals[::-1]))]
    for p in range(w):  # plane p of the rows from MEM_W(2+p) (position 78 - p): same arrival
        lines += [f"MEM_W{2 + p} @{p} Read.{dtype} W[0], S{p}W",
                  f"MEM_W{2 + p} +1 Repeat 319, 1, 1"]
        # x from MEM_W(4+p) (position 76 - p): leaves at c + 1, 75 - p hops to the plane
        lines += [f"MEM_W{4 + p} @{t_acc - 76 + p} Read.{dtype} x, S{2 + p}W"]
        if n > 1:
            lines.append(f"MEM_W{4 + p} +{occ} Repeat {n - 1}, {occ}")
    lines += [f"MXM_W0 @{t_lw} LW.{dtype} S0W, 1", "MXM_W0 +1 Repeat 319, 1",
              f"MXM_W0 @{t_iw} IW",
              f"MXM_W0 @{t_acc} ACC.{dtype} S2W, S4E, 0"]
    if n > 1:
        lines.append(f"MXM_W0 +{occ} Repeat {n - 1}, {occ}")
    return assemble_text("\n".join(lines) + "\n", f"<mxm_heavy_{dtype}>")


# ---- baselines: one numpy call per lane operation, the way Python code would do the same work ----
def numpy_vxm(n: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The lane work of vxm_heavy(n) in numpy: per cycle, assemble the two fp32 groups from their
    byte planes, run the 8 ops, split each result into byte planes."""
    xp = x.view(np.uint8).reshape(-1, 4).T.copy()
    yp = y.view(np.uint8).reshape(-1, 4).T.copy()
    out = np.empty((8, 4, xp.shape[1]), np.uint8)
    half = np.float32(0.5)
    with np.errstate(all="ignore"):
        for _ in range(n):
            xv = np.ascontiguousarray(xp.T).view(np.float32).ravel()
            yv = np.ascontiguousarray(yp.T).view(np.float32).ravel()
            results = (np.exp(xv.astype(np.float64)).astype(np.float32), xv + yv, xv * yv,
                       np.maximum(xv, yv), xv - yv, np.minimum(xv, yv), xv * half,
                       np.maximum(yv, np.float32(0)))
            for i, r in enumerate(results):
                out[i] = r.view(np.uint8).reshape(-1, 4).T
    return out


def numpy_mxm(n: int, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The MAC work of mxm_heavy(n): one fp32 matrix-vector product (BLAS) per ACC, added into an
    accumulator, split into byte planes."""
    acc = np.zeros(w.shape[1], np.float32)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    out = np.empty((4, w.shape[1]), np.uint8)
    for _ in range(n):
        acc += x32 @ w32
        out[:] = acc.view(np.uint8).reshape(-1, 4).T
    return out
