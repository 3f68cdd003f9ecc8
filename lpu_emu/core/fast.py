"""The fast core: run a Plan with the numba-jitted loop of lpu_emu/core/fast_loop.py.

`run_plan(plan, machine, lenient, trace=False)` keeps the contract of lpu_emu/core/reference.py
(its module docstring) and must give identical results. This module does the Python half: it
sizes every bounded structure from the Plan (so memory follows the live values, never the
program's length), builds the arrays, calls the loop (once, unless a growable buffer fills or a
batch of int8 ACCs asks for a BLAS matmul: ST_FLUSH) and turns the raw records into the
contract's tuples and, when tracing, an EventLog.

Compiled code is cached on disk (numba cache=True). A cold cache costs a compile of ~30 s, so the
first call in a process says so on stderr if it takes more than a second.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from lpu_emu.core import events as E
from lpu_emu.core import fast_loop as F
from lpu_emu.core import jit_ops as J
from lpu_emu.core import plan as PL
from lpu_emu.core import simd
from lpu_emu.core.events import EventLog, run_meta
from lpu_emu.core.plan import Plan
from lpu_emu.core.state import Machine
from lpu_emu.errors import LoadError
from lpu_emu.spec import Isa, default_isa
from lpu_emu.spec.isa import SG16

RawViolation = tuple[int, int, int, int, int, int]
NCODES = 128 + 16  # stream codes 0..127, plus a group of 16 starting at the last one
COMPILE_SECONDS = 30  # what the cold-cache message announces (measured: bench/README.md)
# Consecutive int8 ACCs on the MXM planes are computed as one matmul a plane (fast_loop:
# batch_conflict says when a batch must be flushed). BATCH is the batch's capacity (0: no
# batching); a flush of at least BATCH_BLAS ACCs returns to Python for BLAS (a resume costs ~10-20
# us), smaller ones are computed in the loop. int8 x int8 sums over K <= 1023 rows are exact in
# fp32. Float ACCs (fp16, bf16, fp8e4m3) batch the same way, up to BATCH, always computed in the
# loop by fast_loop.batch_compute_float (k ascending, fp32, one rounding per step: bit for bit).
BATCH = 128
BATCH_BLAS = 32
# counters of the last run_plan call (tests read them): flushes, BLAS flushes, batched ACCs
batch_stats = {"flushes": 0, "blas_flushes": 0, "batched_accs": 0}


# mnemonic -> (kind, sub) of the loop's dispatch (fast_loop: K_*, and the sub codes)
_OPS = {
    "nop": (F.K_ICU, 0), "repeat": (F.K_ICU, 0), "sync": (F.K_ICU, 0), "notify": (F.K_ICU, 0),
    "ifetch": (F.K_ICU, 0), "config": (F.K_ICU, 0),
    "read": (F.K_MEM, F.M_READ), "write": (F.K_MEM, F.M_WRITE),
    "gather": (F.K_MEM, F.M_GATHER), "scatter": (F.K_MEM, F.M_SCATTER),
    "add": (F.K_VXM, J.V_ADD), "sub": (F.K_VXM, J.V_SUB), "mul": (F.K_VXM, J.V_MUL),
    "max": (F.K_VXM, J.V_MAX), "min": (F.K_VXM, J.V_MIN), "mov": (F.K_VXM, J.V_MOV),
    "neg": (F.K_VXM, J.V_NEG), "abs": (F.K_VXM, J.V_ABS), "relu": (F.K_VXM, J.V_RELU),
    "exp": (F.K_VXM, J.V_EXP), "rsqrt": (F.K_VXM, J.V_RSQRT), "tanh": (F.K_VXM, J.V_TANH),
    "erf": (F.K_VXM, J.V_ERF), "addi": (F.K_VXM, F.X_ADDI), "muli": (F.K_VXM, F.X_MULI),
    "maxi": (F.K_VXM, F.X_MAXI), "mini": (F.K_VXM, F.X_MINI), "cvt": (F.K_VXM, F.X_CVT),
    "lw": (F.K_MXM, F.X_LW), "iw": (F.K_MXM, F.X_IW), "iwt": (F.K_MXM, F.X_IWT),
    "abc": (F.K_MXM, F.X_ABC),
    "acc": (F.K_MXM, F.X_ACC),
    "shiftup": (F.K_SXM, F.S_SHIFTUP), "shiftdown": (F.K_SXM, F.S_SHIFTDOWN),
    "rotate": (F.K_SXM, F.S_ROTATE), "permute": (F.K_SXM, F.S_PERMUTE),
    "distribute": (F.K_SXM, F.S_DISTRIBUTE), "transpose": (F.K_SXM, F.S_TRANSPOSE),
    "deskew": (F.K_C2C, F.C_DESKEW), "send": (F.K_C2C, F.C_SEND),
    "receive": (F.K_C2C, F.C_RECEIVE),
}


class CoreError(RuntimeError):
    """The fast core hit a bound it computed itself: a bug in lpu-emu, never in the program."""


# ---------------------------------------------------------------------------------------------
# consistency of the frozen constants (numba compiles module globals in as constants)
# ---------------------------------------------------------------------------------------------
def helpers_hash() -> str:
    """Hash of the modules compiled into the cached loop besides fast_loop.py itself."""
    h = hashlib.sha256()
    for mod in (J, E, simd):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def invalidate_stale_cache() -> bool:
    """Drop the cached loop if a helper module changed since it was compiled (numba's cache only
    checks the file that defines the function); returns True if it did. A marker file next to
    the cache index remembers the helpers' hash."""
    cache = getattr(F.run_issues, "_cache", None)
    path = getattr(cache, "cache_path", None)
    if not path:
        return False
    marker = Path(path) / "lpu_emu_fast_loop.helpers"
    digest = helpers_hash()
    try:
        if marker.read_text() == digest:
            return False
    except OSError:
        pass
    try:  # an unwritable cache is numba's business (it compiles without caching)
        cache.flush()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest)
    except OSError:
        pass
    return True


def _check_constants(isa: Isa) -> None:
    cols = ("CYCLE", "SRC", "OP", "DTYPE", "DTYPE2", "QUEUE", "POS", "UNIT", "SA", "SB", "SC",
            "WA", "WB", "WC", "BANK", "ADDR", "IMM", "LAT", "OCC", "VIOL", "VIOL_A", "VIOL_B",
            "NO_VALUE", "TWO_PRODUCERS", "BANK_CONFLICT", "WRONG_DTYPE", "NO_WEIGHTS", "ADDRESS",
            "QUEUE_BUSY", "SYNC", "MXM_PAIR")
    bad = [c for c in cols if getattr(F, c) != getattr(PL, c)]
    events = ("ISSUE", "TAKE", "PLACE", "SREAD", "SWRITE", "INIT", "LW", "IW", "ABC", "ACC", "SEND",
              "RECV", "VIOL")
    bad += [name for name in events if getattr(F, "EV_" + name) != getattr(E, name)]
    codes = {"int8": J.INT8, "int32": J.INT32, "fp16": J.FP16, "bf16": J.BF16,
             "fp8e4m3": J.FP8, "fp32": J.FP32}
    bad += [n for n, code in codes.items() if n not in isa.dtypes or isa.dtypes[n].code != code]
    bad += [n for n, code in codes.items()
            if n in isa.dtypes and isa.dtypes[n].width != J.WIDTH[code]]
    if bad:
        raise CoreError(f"lpu_emu/core/fast_loop.py or jit_ops.py is out of date with plan.py, "
                        f"events.py or the ISA: {', '.join(bad)} differ; update the constants")


def opmap(isa: Isa) -> np.ndarray:
    """ISA opcode -> the loop's op code (kind * 32 + sub), -1 for instructions it lacks."""
    table = np.full(256, -1, dtype=np.int64)
    for ins in isa.instructions:
        kind_sub = _OPS.get(ins.mnemonic.lower())
        if kind_sub is not None:
            table[ins.opcode] = kind_sub[0] * 32 + kind_sub[1]
    return table


@functools.cache
def _nan_mode() -> int:
    """How the reference's transcendentals treat a NaN input (numpy's SIMD tanh returns the
    canonical NaN on some machines, libm keeps the payload): bit (op - V_EXP) set = canonical."""
    from lpu_emu.core.ops import vxm

    x = np.array([0xFFC12345], dtype=np.uint32).view(np.float32)
    mode = 0
    with np.errstate(all="ignore"):
        for bit, fn in enumerate((vxm.exp, vxm.rsqrt, vxm.tanh, vxm.erf)):
            r = int(np.asarray(fn(x), dtype=np.float32).view(np.uint32)[0])
            if r == 0x7FC00000:
                mode |= 1 << bit
            elif r != 0xFFC12345:
                raise CoreError(f"unexpected NaN from the reference's {fn.__name__}: {r:#x}")
    return mode


# ---------------------------------------------------------------------------------------------
# sizing: every bound comes from the Plan
# ---------------------------------------------------------------------------------------------
def _pow2(n: int) -> int:
    return 1 << max(1, int(n - 1).bit_length())


def _window_max(cycles: np.ndarray, weights: np.ndarray, span: int) -> int:
    """The largest sum of `weights` over issues whose cycles lie in any `span` consecutive
    cycles (cycles sorted ascending)."""
    if len(cycles) == 0:
        return 0
    cum = np.concatenate([[0], np.cumsum(weights, dtype=np.int64)])
    lo = np.searchsorted(cycles, cycles - span + 1, side="left")
    return int((cum[1:] - cum[lo]).max())


class Sizes:
    """The bounds of one run's structures (see fast_loop's docstring for what each holds)."""

    def __init__(self, plan: Plan, ops: np.ndarray) -> None:
        iss, chip = plan.issues, plan.chip
        cyc, lat, wc = iss[:, PL.CYCLE], iss[:, PL.LAT], iss[:, PL.WC]
        code = ops[iss[:, PL.OP] & 255] if len(iss) else np.zeros(0, np.int64)
        self.positions = chip.positions
        out = wc > 0
        self.maxlat = int(lat[out].max()) if out.any() else 1
        self.rd = _pow2(self.positions + self.maxlat + 2)
        # a slot made while processing cycle c0 lives until its diagonal leaves the chip, at
        # most c0 + maxlat + positions - 1: count the placements any such window makes
        self.nv = _window_max(cyc, wc, self.maxlat + self.positions + 1) + 1
        writes = (code == F.K_MEM * 32 + F.M_WRITE) | (code == F.K_MEM * 32 + F.M_SCATTER)
        wlat = int(lat[writes].max()) if writes.any() else 1
        self.rw = _pow2(wlat + 2)
        self.nw = _window_max(cyc[writes], np.ones(int(writes.sum()), np.int64), wlat + 1) + 1
        sends = code == F.K_C2C * 32 + F.C_SEND
        slat = int(lat[sends].max()) if sends.any() else 1
        self.rl = _pow2(slat + 2)
        self.nl = _window_max(cyc[sends], np.ones(int(sends.sum()), np.int64), slat + 1) + 1
        self.events = int(min(1 << 20, 64 + (iss[:, PL.WA] + iss[:, PL.WB] + 2 * wc + 4).sum()))
        self.rows = int(min(1 << 17, 64 + 2 * wc.sum()))

    def nbytes(self, lanes: int) -> int:
        """Memory of the per-run structures (the SRAM and MXM state are the Machine's)."""
        return (self.nv + 1) * (lanes + 56) + NCODES * self.rd * 16 + self.nw * (2 * lanes + 72) \
            + self.nl * (4 * lanes + 56) + max(1, BATCH) * (8 * lanes + 48)


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
def _validate(plan: Plan, machine: Machine, ops: np.ndarray) -> None:
    """Refuse a plan whose fields would index outside the machine's arrays (the loop does no
    bounds checks): a hand-made or foreign .lpx, never an assembled one."""
    lanes = machine.chip.lanes
    if not int(plan.chip.p("mxm_rows")) <= lanes or not int(plan.chip.p("mxm_cols")) <= lanes:
        raise LoadError(f"chip {plan.chip.name}: the fast core needs mxm_rows, mxm_cols <= lanes")
    iss = plan.issues
    if not len(iss):
        return
    code = ops[iss[:, PL.OP] & 255]
    unknown = np.flatnonzero(code < 0)
    if len(unknown):
        opcode = int(iss[unknown[0], PL.OP])
        raise CoreError(f"the fast core has no semantics for opcode {opcode:#x}")
    kind = code >> 5
    mem = kind == F.K_MEM
    banks = machine.sram.shape[1]
    if mem.any() and ((iss[mem, PL.BANK] < 0) | (iss[mem, PL.BANK] >= banks)).any():
        raise LoadError(f"an SRAM bank outside 0..{banks - 1} in the program")
    maps = (code == F.K_SXM * 32 + F.S_PERMUTE) | (code == F.K_SXM * 32 + F.S_DISTRIBUTE)
    if maps.any() and (iss[maps, PL.IMM] >= len(machine.lanemaps)).any():
        raise LoadError("a lane map index past the program's lane maps")
    streams = np.concatenate([iss[:, PL.SA], iss[:, PL.SB], iss[:, PL.SC]])
    if streams.max() > 127:
        raise LoadError("a stream code past 127 in the program")


def _state(plan: Plan, machine: Machine, lenient: bool, trace: bool, sz: Sizes,
           nan_mode: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """params, regs and every array of the loop (fast_loop.run_issues' arguments by name)."""
    chip, lanes = plan.chip, machine.chip.lanes
    units, banks, size = machine.sram.shape[:3]
    planes, rows = machine.acc.shape[0], int(chip.p("mxm_rows"))
    params = np.zeros(F.NPARAMS, np.int64)
    params[F.P_LANES], params[F.P_POSITIONS], params[F.P_RD] = lanes, sz.positions, sz.rd
    params[F.P_NV], params[F.P_RW], params[F.P_RL], params[F.P_NL] = sz.nv, sz.rw, sz.rl, sz.nl
    params[F.P_MEMSIZE], params[F.P_BANKS] = size, banks
    params[F.P_ROWS], params[F.P_COLS] = rows, int(chip.p("mxm_cols"))
    params[F.P_NACC], params[F.P_BLOCK] = machine.acc.shape[1], int(chip.p("superlane_lanes"))
    params[F.P_LENIENT], params[F.P_TRACE], params[F.P_NANMODE] = int(lenient), int(trace), nan_mode
    exact = rows * 128 * 128 < (1 << 24)  # |sum of int8 products| < 2^24: fp32 is exact
    params[F.P_BCAP] = BATCH if exact and BATCH > 0 else 0
    params[F.P_BMIN] = max(1, BATCH_BLAS)
    params[F.P_FCAP] = max(0, BATCH)
    regs = np.zeros(F.NREGS, np.int64)
    regs[F.R_VERCTR] = 2 * planes + 2
    a: dict[str, np.ndarray] = {}
    a["dtab"] = np.empty((NCODES * sz.rd, 2), np.int64)
    a["dtab"][:, 0], a["dtab"][:, 1] = F.NEVER, -1
    a["slots"] = np.zeros((sz.nv + 1, 7), np.int64)
    a["slots"][:, F.SL_NEXT], a["slots"][:, F.SL_EXPIRE], a["slots"][:, F.SL_TREF] = -1, F.NEVER, -1
    a["slots"][sz.nv, F.SL_EXPIRE] = F.FOREVER  # the zero row is never handed out
    a["vheap"] = np.zeros((sz.nv + 1, lanes), np.uint8)
    a["pw"] = np.zeros((sz.nw, 8), np.int64)
    a["pwq"] = np.zeros((2, sz.nw), np.int64)
    a["pwq"][1] = np.arange(sz.nw)
    a["pwd"] = np.zeros((sz.nw, 2, lanes), np.uint8)
    a["banks"] = np.full((units, banks, sz.rw + 1), F.NEVER, np.int64)
    a["banks"][:, :, sz.rw] = -1
    a["lk"] = np.empty((sz.rl, 2), np.int64)
    a["lk"][:, 0], a["lk"][:, 1] = F.NEVER, -1
    a["ln"] = np.zeros((sz.nl, 6), np.int64)
    a["ln"][:, F.LN_ARR], a["ln"][:, F.LN_NEXT] = F.NEVER, -1
    a["lnd"] = np.zeros((sz.nl, 4, lanes), np.uint8)
    a["wmeta"] = np.full((planes, F.WM_ROWS + rows), -1, np.int64)
    a["wmeta"][:, F.WM_WVER] = 2 * np.arange(planes) + 1
    a["wmeta"][:, F.WM_PVER] = 2 * np.arange(planes) + 2
    a["wmeta"][:, F.WM_BVER] = 0
    a["wdec"] = np.zeros((planes, rows, lanes), np.float32)
    if trace:
        a["ev"] = np.zeros((sz.events, 8), np.int64)
        a["evh"] = np.zeros((sz.rows, lanes), np.uint8)
        a["touched"] = np.zeros(units * banks * size, np.uint8)
    else:
        a["ev"], a["evh"] = np.zeros((1, 8), np.int64), np.zeros((1, lanes), np.uint8)
        a["touched"] = np.zeros(1, np.uint8)
    a["sl"] = np.zeros((2, max(SG16, chip.mxm_load_streams)), np.int64)  # widest input group
    a["lv"] = np.zeros((3, lanes), np.uint32)  # lane rows, and their int32 / float32 views
    a["li"], a["lf"] = a["lv"].view(np.int32), a["lv"].view(np.float32)
    a["addrs"] = np.zeros(lanes, np.int64)
    a["outp"] = np.zeros((16, lanes), np.uint8)
    a["accbits"] = np.zeros(lanes, np.uint32)
    a["accf"] = a["accbits"].view(np.float32)
    a["xf"] = np.zeros(lanes, np.float32)
    a["dot"] = np.zeros(lanes, np.float32)
    bcap = max(1, BATCH)
    a["xb"] = np.zeros((bcap, lanes), np.float32)
    a["yb"] = np.zeros((bcap, int(chip.p("mxm_cols"))), np.float32)
    a["bmeta"] = np.zeros((bcap, F.BM_COLS), np.int64)
    return params, regs, a


def _batch_matmul(a: dict, nb: int, rows: int, cols: int) -> None:
    """Y of the int8 batch's ACCs: one matmul per plane (the loop left each plane's ACCs one
    run of rows, fast_loop.batch_by_plane)."""
    planes = a["bmeta"][:nb, F.BM_PLANE]
    ends = np.flatnonzero(np.diff(planes)) + 1
    for lo, hi in zip(np.r_[0, ends], np.r_[ends, nb], strict=True):
        p = int(planes[lo])
        np.matmul(a["xb"][lo:hi, :rows], a["wdec"][p, :rows, :cols], out=a["yb"][lo:hi])


def _grow(a: np.ndarray) -> np.ndarray:
    out = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


_first_call = True


def _call(fn, *args):
    """Call the loop; on the first call of a process, say so if it is compiling: if the call
    still has no compiled signature after a second (loading from the cache takes ~30 ms, so a
    long first run with a warm cache stays quiet)."""
    global _first_call
    if not _first_call:
        return fn(*args)
    _first_call = False
    msg = f"compiling the lpu-emu core (first run, ~{COMPILE_SECONDS} s)..."

    def announce() -> None:
        if not getattr(fn, "signatures", None):
            print(msg, file=sys.stderr, flush=True)
    timer = threading.Timer(1.0, announce)
    timer.daemon = True
    timer.start()
    try:
        return fn(*args)
    finally:
        timer.cancel()


_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _prepare(plan: Plan, machine: Machine, isa: Isa) -> tuple[np.ndarray, Sizes]:
    """The opcode map and the bounds of a plan, validated; computed once per Plan (a few ms for
    a long one: it is all numpy over the issue table)."""
    key = (id(isa), machine.sram.shape, machine.lanemaps.shape, machine.acc.shape)
    hit = _prepared.get(plan)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    _check_constants(isa)
    ops = opmap(isa)
    _validate(plan, machine, ops)
    sz = Sizes(plan, ops)
    _prepared[plan] = (key, ops, sz)
    return ops, sz


def run_plan(plan: Plan, machine: Machine, lenient: bool, trace: bool = False,
             isa: Isa | None = None, trace_capacity: tuple[int, int] | None = None,
             ) -> tuple[list[RawViolation], int, EventLog | None]:
    """Run `plan` on `machine` (mutated in place): the contract of lpu_emu/core/reference.py.

    trace_capacity: (events, value rows) to start the trace buffers with instead of the
    estimate from the Plan (they double whenever they fill; tests use it to force that)."""
    ops, sz = _prepare(plan, machine, isa or default_isa())
    if trace_capacity is not None:
        sz = copy.copy(sz)
        sz.events, sz.rows = trace_capacity
    params, regs, a = _state(plan, machine, lenient, trace, sz, _nan_mode())
    found = np.zeros((9, 4), np.int64)
    viol = np.zeros((64, 6), np.int64)
    issues = np.ascontiguousarray(plan.issues, dtype=np.int64).reshape(-1, PL.NCOL)
    m = machine
    while True:
        status = _call(F.run_issues, issues, ops, params, regs, found, viol,
                       m.sram, m.lanemaps, m.wbuf, m.wbuf_rows, m.weights, m.weights_at,
                       m.pending, m.pending_at, m.acc, a["dtab"], a["slots"], a["vheap"], a["pw"],
                       a["pwq"], a["pwd"], a["banks"], a["lk"], a["ln"], a["lnd"], a["wmeta"],
                       a["wdec"], a["ev"], a["evh"], a["touched"], a["sl"], a["lv"], a["li"],
                       a["lf"], a["addrs"], a["outp"], a["accbits"], a["accf"], a["xf"], a["dot"],
                       a["xb"], a["yb"], a["bmeta"])
        if status == F.ST_FLUSH:  # Y of the pending int8 ACC batch, one sgemm a plane (exact)
            _batch_matmul(a, int(regs[F.R_BN]), params[F.P_ROWS], params[F.P_COLS])
            regs[F.R_YREADY] = 1
        elif status == F.ST_GROW_VIOL:
            viol = _grow(viol)
        elif status == F.ST_GROW_TRACE:
            a["ev"], a["evh"] = _grow(a["ev"]), _grow(a["evh"])
        else:
            break
    if status >= F.ST_FULL_STREAMS:
        what = {F.ST_FULL_STREAMS: "stream value slots", F.ST_FULL_DIAG: "diagonal buckets",
                F.ST_FULL_WRITES: "pending-write slots", F.ST_FULL_LINKS: "C2C link slots",
                }.get(status)
        why = f"too few {what}: a bound computed from the plan was too small" if what else \
            f"opcode {int(regs[F.R_ERR]):#x} has no semantics in the loop"
        raise CoreError(f"fast core stopped at issue {int(regs[F.R_K])}: {why}")
    batch_stats.update(flushes=int(regs[F.R_NFLUSH]), blas_flushes=int(regs[F.R_NBLAS]),
                       batched_accs=int(regs[F.R_NBACC]))
    stopped = int(regs[F.R_K]) if status == F.ST_STOPPED else -1
    violations = [tuple(r) for r in viol[: regs[F.R_NVIOL]].tolist()]
    log = None
    if trace:
        # views, not copies: the buffers' unused tails are pages never touched (calloc)
        log = EventLog(a["ev"][: regs[F.R_NEV]], a["evh"][: regs[F.R_NEVH]],
                       run_meta(plan, machine, stopped))
    return violations, stopped, log  # type: ignore[return-value]


invalidate_stale_cache()


def warm_up() -> float:
    """Compile (or load from the cache) the loop by running an empty plan; returns seconds."""
    t0 = time.perf_counter()
    from lpu_emu.core.state import new_machine
    from lpu_emu.program import Program
    from lpu_emu.spec import get_chip

    chip = get_chip("tsp-v1")
    empty = (np.zeros(0, dt) for dt in ("<i8", "<i2", "<u8", "<i2", "<i4", "<i2"))
    prog = Program(chip.name, *empty)
    plan = PL.make_plan(prog, chip, default_isa())
    run_plan(plan, new_machine(chip, prog), lenient=True)
    return time.perf_counter() - t0
