"""Benchmark workloads, written as assembly for lp30, and numpy baselines doing the same lane work.

vxm_heavy(n): for n cycles, 8 MEM slices stream two fp32 vectors (x on S0E..S3E, y on S4E..S7E)
past the VXM, where 8 ALUs each issue one op per cycle (Exp, Add, Mul, Max, Sub, Min, MulI, Relu)
onto their own west stream group: 16 issues per cycle, half of them VXM ALU ops.

mxm_heavy(n, dtype): 320 weight rows stream from MEM_W2 into MXM_W0 (LW), are installed (IW),
then an activation vector streams past every cycle for n cycles (ACC onto S4E.., accumulator
0): one MEM Read and one 320x320 ACC per cycle, on dense values (no zero weight or input).

mem_heavy(n): 32 MEM slices (MEM_W32..MEM_W63) each read one int8 row per cycle, address
advancing, onto their own east stream; 32 hops on, 32 more (MEM_W0..MEM_W31) write each row to
their own tensor: 64 SRAM accesses per cycle, a copy of 32 tensors of n rows.

sxm_heavy(n): the four SXM units each issue one fp32 lane movement per cycle (Rotate and Permute
on the west side, Distribute and ShiftUp on the east), fed by 8 MEM slices streaming two fp32
vectors (x west from MEM_W3..MEM_W0, y east from MEM_E0..MEM_E3): 12 issues per cycle.

big_source(n): the text of an n-instruction program in the style a person writes (tensors,
.equ constants, labels, relative timing, indexed tensor operands, comments, Repeats), for the
assembler's throughput.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lpu_emu.asm.assembler import assemble_text
from lpu_emu.core.tensors import encode_tensor
from lpu_emu.program import Program, Segment
from lpu_emu.spec import get_chip

QUICK = os.environ.get("LPU_BENCH_QUICK", "") not in ("", "0")  # CI: smaller sizes, fewer rounds


def pick(full, quick):
    """`quick` under LPU_BENCH_QUICK=1 (the CI run), else `full`."""
    return quick if QUICK else full


def best(fn, rounds: int = 5) -> float:
    """The fastest of `rounds` calls, in seconds (a 2-core VM is noisy: the minimum is stable)."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def blas_threads(n: int | None) -> int | None:
    """Set numpy's OpenBLAS thread count (None: leave it); the previous count, or None where the
    library's setter is not found. The emulator runs on one thread, so its BLAS baseline does too
    (a multi-threaded sgemm on a shared 2-core VM also swings by 10-100x between calls)."""
    libs = glob.glob(str(Path(np.__file__).parent.parent / "numpy.libs" / "*openblas*"))
    if not libs:
        return None
    lib = ctypes.CDLL(libs[0])
    get = getattr(lib, "scipy_openblas_get_num_threads64_", None)
    put = getattr(lib, "scipy_openblas_set_num_threads64_", None)
    if get is None or put is None:
        return None
    before = int(get())
    if n is not None:
        put(ctypes.c_int(n))
    return before


@contextlib.contextmanager
def one_blas_thread():
    """numpy's BLAS on one thread inside the block, as the emulator (see blas_threads)."""
    before = blas_threads(1)
    try:
        yield
    finally:
        blas_threads(before)


def timed(benchmark, fn, rounds: int) -> float:
    """The fastest of `rounds` calls of `fn`, each also one of pytest-benchmark's timed rounds
    (so `--benchmark-enable` and `--benchmark-autosave` see the same calls without running them
    twice; under the default --benchmark-disable pedantic runs once and the rest run here)."""
    times: list[float] = []

    def go():
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    benchmark.pedantic(go, rounds=rounds, iterations=1)
    while len(times) < rounds:
        go()
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
    lines = [".chip lp30",
             f".tensor W, {dtype}, (320, 320), MEM_W{2 + w - 1}..MEM_W2, 0, 0" if w == 2 else
             f".tensor W, {dtype}, (320, 320), MEM_W2, 0, 0",
             f".tensor x, {dtype}, (320), MEM_W{4 + w - 1}..MEM_W4, 0, 0" if w == 2 else
             f".tensor x, {dtype}, (320), MEM_W4, 0, 0"]
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
    return _dense(assemble_text("\n".join(lines) + "\n", f"<mxm_heavy_{dtype}>"), ("W", "x"))


def _dense(program: Program, names: tuple[str, ...]) -> Program:
    """The program with every value of the named tensors a small nonzero integer (as a
    segment each: `.values` of 102,400 numbers would take seconds to assemble). Dense data
    keeps the work whole: the fast core leaves out ACC steps whose products are all 0."""
    rng = np.random.default_rng(0)
    lanes = get_chip(program.chip).lanes
    segments = list(program.segments)
    for name in names:
        t = program.symbol(name)
        n = int(np.prod(t.shape))
        image = encode_tensor(t, rng.integers(1, 4, n) * rng.choice((-1, 1), n), lanes)
        segments += [Segment(s, t.bank, t.addr, image[:, p].tobytes())
                     for p, s in enumerate(t.slices)]
    return replace(program, segments=tuple(segments))


MEM_PAIRS = 32  # reader MEM_W(32 + i) -> stream S(i)E -> writer MEM_W(i): 32 hops for every i


def mem_heavy(n: int) -> Program:
    hops = MEM_PAIRS  # reader at position 80 - 32 - i, writer at 80 - i
    rng = np.random.default_rng(3)
    lines = [".chip lp30"]
    for i in range(MEM_PAIRS):
        lines += [f".tensor a{i}, int8, ({n}, 320), MEM_W{MEM_PAIRS + i}, 0, 0",
                  f".values a{i}, " + ", ".join(map(str, rng.integers(-128, 128, 48).tolist())),
                  f".tensor b{i}, int8, ({n}, 320), MEM_W{i}, 0, 0"]
    for i in range(MEM_PAIRS):  # a row read at c leaves at c + 1 and passes the writer at c + 33
        lines.append(f"MEM_W{MEM_PAIRS + i} @0 Read.int8 a{i}, S{i}E")
        lines.append(f"MEM_W{i} @{1 + hops} Write.int8 S{i}E, b{i}")
        if n > 1:
            lines.append(f"MEM_W{MEM_PAIRS + i} +1 Repeat {n - 1}, 1, 1")
            lines.append(f"MEM_W{i} +1 Repeat {n - 1}, 1, 1")
    return assemble_text("\n".join(lines) + "\n", "<mem_heavy>")


SXM_ROTATE, SXM_SHIFT = 16, 160


def sxm_lanemaps(lanes: int) -> dict[str, np.ndarray]:
    """reverse: a permutation; spread: lane l takes lane l // 2 (each source lane twice) in the
    first three quarters, -1 (zero) in the last quarter."""
    lane = np.arange(lanes)
    spread = np.where(lane < lanes - lanes // 4, lane // 2, -1)
    return {"reverse": lane[::-1].copy(), "spread": spread}


def sxm_heavy(n: int) -> Program:
    t = 90  # x reaches SXM_W0/W1 (position 2) and y SXM_E0/E1 (position 160) at t, t + 1, ...
    maps = sxm_lanemaps(get_chip("lp30").lanes)
    lines = [".chip lp30",
             ".tensor x, fp32, (320), MEM_W3..MEM_W0, 0, 0",
             ".values x, " + ", ".join(f"{v:.3f}" for v in np.linspace(-3, 3, 64)),
             ".tensor y, fp32, (320), MEM_E3..MEM_E0, 0, 0",
             ".values y, " + ", ".join(f"{v:.3f}" for v in np.linspace(2, -2, 64))]
    lines += [f".lanemap {name}, " + ", ".join(map(str, m.tolist())) for name, m in maps.items()]
    for p in range(4):  # plane p: MEM_W(3-p) at position 77 + p, MEM_E(3-p) at 85 - p
        lines.append(f"MEM_W{3 - p} @{t - 1 - (75 + p)} Read.fp32 x, S{p}W")
        lines.append(f"MEM_E{3 - p} @{t - 1 - (75 + p)} Read.fp32 y, S{p}E")
        if n > 1:
            lines.append(f"MEM_W{3 - p} +1 Repeat {n - 1}, 1")
            lines.append(f"MEM_E{3 - p} +1 Repeat {n - 1}, 1")
    ops = {"SXM_W0": f"Rotate.fp32 S0W, {SXM_ROTATE}, S4E",
           "SXM_W1": "Permute.fp32 S0W, reverse, S8E",
           "SXM_E0": "Distribute.fp32 S0E, spread, S4W",
           "SXM_E1": f"ShiftUp.fp32 S0E, {SXM_SHIFT}, S8W"}
    for queue, op in ops.items():
        lines.append(f"{queue} @{t} {op}")
        if n > 1:
            lines.append(f"{queue} +1 Repeat {n - 1}, 1")
    return assemble_text("\n".join(lines) + "\n", "<sxm_heavy>")


def big_source(n: int) -> str:
    """n instruction lines on lp30 (plus a header of tensors and constants): per block of 8, a
    MEM Read of an indexed tensor row, a VXM Add or Mul, a MEM Write at an expression address,
    a Repeat, NOPs; relative timing on every queue, a label and a comment every 16 lines."""
    lines = ["; big.lpu: generated for the assembler's throughput benchmark", ".chip lp30",
             ".equ ROWS, 256", ".equ BASE, 16"]
    for k in range(16):
        lines += [f".tensor a{k}, int8, (ROWS, 320), MEM_W{k}, 0, 0",
                  f".tensor b{k}, fp16, (ROWS, 320), MEM_E{2 * k + 1}..MEM_E{2 * k}, 1, BASE"]
    body = ("        MEM_W{k:<3} +2     Read.int8   a{k}[{r} % ROWS], S{s}E   ; row {r}",
            "        VXM{k:<6} +2     Add.int8    S{s}E, S{s1}E, S{s2}W",
            "        MEM_E{k2:<3} +2     Write.fp16  S{s}W, b{k}[({r} * 3 + 1) % ROWS]",
            "        MEM_W{k:<3} +1     Repeat      3, 2, 1",
            "        VXM{k:<6} +2     Mul.int8    S{s1}E, S{s2}E, S{s}W",
            "        VXM{k1:<6} +2     NOP         1",
            "        MEM_E{k2:<3} +7     Read.fp16   b{k}[{r} % ROWS], S{s}W",
            "        VXM{k1:<6} +2     MulI.fp32   S{s4}E, 0.5, S{s4}W")
    for i in range(n):
        k, r = (i // 8) % 16, i % 256
        if i % 16 == 0:
            lines.append(f"L{i}:  ; block {i // 16}")
        lines.append(body[i % 8].format(k=k, k1=(k + 1) % 16, k2=2 * k, r=r, s=2 * (i % 8),
                                        s1=2 * (i % 8) + 1, s2=(2 * i + 2) % 16,
                                        s4=4 * (i % 4)))
    return "\n".join(lines) + "\n"


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


def numpy_mem(n: int, a: np.ndarray) -> np.ndarray:
    """The SRAM work of mem_heavy(n): per cycle, 32 row Reads onto streams and 32 row Writes off
    them, one numpy row copy per access. a: [32, n, 320] int8; returns the written copy."""
    b = np.empty_like(a)
    streams = np.empty((a.shape[0], a.shape[2]), a.dtype)
    pairs = range(a.shape[0])
    for c in range(n):
        for i in pairs:
            streams[i] = a[i, c]
        for i in pairs:
            b[i, c] = streams[i]
    return b


def numpy_sxm(n: int, x: np.ndarray, y: np.ndarray, maps: dict[str, np.ndarray]) -> np.ndarray:
    """The lane work of sxm_heavy(n): per cycle, assemble x and y from their byte planes, run the
    four lane movements, split each result into byte planes."""
    xp = x.view(np.uint8).reshape(-1, 4).T.copy()
    yp = y.view(np.uint8).reshape(-1, 4).T.copy()
    out = np.empty((4, 4, xp.shape[1]), np.uint8)
    rev, spread = maps["reverse"], maps["spread"]
    zero = spread < 0
    idx = np.where(zero, 0, spread)
    tail = np.zeros(SXM_SHIFT, np.float32)
    for _ in range(n):
        xv = np.ascontiguousarray(xp.T).view(np.float32).ravel()
        yv = np.ascontiguousarray(yp.T).view(np.float32).ravel()
        results = (np.roll(xv, -SXM_ROTATE), xv[rev], np.where(zero, np.float32(0), yv[idx]),
                   np.concatenate((yv[SXM_SHIFT:], tail)))
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
