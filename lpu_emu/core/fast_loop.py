"""The jitted run loop of the fast core (the Python side, which sizes and allocates every array
named here, is lpu_emu/core/fast.py).

One call runs many issues: `run_issues` loops over the Plan until it ends, a strict run stops, or
a growable buffer (violations, trace) is full; then it returns a status and the issue to resume
at. All state lives in the arrays it was given, so the next call continues exactly there.

Streams are a lookup, not a simulation (ARCHITECTURE 2.3). Every stream placement is a *slot*:
a row of the value heap `vheap` plus a row of `slots` (position, tag, producer, next slot in its
chain, expiry, trace ref). `dtab` hashes (stream code, diagonal) to the chain of placements on
that diagonal; a reader at (q, u) walks its own diagonal's chain for the nearest placement
upstream. A placement leaves the chip when its diagonal does, and its slot is recycled after
that cycle: slots are handed out by a ring whose size fast.py computes from the Plan (the most
placements any window of max latency + chip width cycles makes), so memory follows the live
values, never the program's length. Every reuse checks that the slot is dead and every bucket
that its old diagonal has left the chip; a bound that was too small returns an error status,
never a wrong value.

Performance notes (measured, see bench/README.md): numba increfs and decrefs every array that
crosses a call which LLVM does not inline, an atomic instruction each; with tuples of arrays
that was 75% of the run time. So `run_issues` borrows its arrays (`borrow`: a NULL meminfo, the
Python caller owns them for the call), keeps the per-issue plumbing (reading stream groups,
checks, placing outputs) inline, and calls out only for the compute kernels.

Consecutive ACCs on the MXM planes are batched (see "batched ACCs" below): each is checked,
placed and traced when it issues, but its value is computed with the others, a plane at a time,
before any issue that could observe or change it; a big int8 batch returns ST_FLUSH and the
caller does the matmul with BLAS (exact: int8 sums over at most 1023 rows stay below 2^24).

The semantics mirror lpu_emu/core/reference.py (the definition) step for step. Tracing is a
flag tested where an event is recorded: the untraced path pays one predictable branch there.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lpu_emu.core.jit_ops import (
    BF16,
    FP16,
    FP32,
    INT8,
    INT32,
    V_ADD,
    V_MAX,
    V_MIN,
    V_MUL,
    WIDTH,
    convert,
    decode_f32_bits,
    decode_lanes,
    encode_f32_bits,
    encode_lanes,
    entry,
    f16_to_f32_bits,
    float_op,
    int_op,
    nan_rule,
    njit,
)
from lpu_emu.core.simd import (
    COLUMNS1,
    COLUMNS4,
    COLUMNS8,
    tile1,
    tile1_fma,
    tile4,
    tile4_fma,
    tile8,
    tile8_fma,
)

# ---- Plan columns and violation kinds: frozen copies (numba compiles globals in as constants);
# fast.py checks them against lpu_emu.core.plan at import ----
CYCLE, SRC, OP, DTYPE, DTYPE2, QUEUE, POS, UNIT = range(8)
SA, SB, SC, WA, WB, WC = range(8, 14)
BANK, ADDR, IMM, LAT, OCC = range(14, 19)
VIOL, VIOL_A, VIOL_B = range(19, 22)
NO_VALUE, TWO_PRODUCERS, BANK_CONFLICT, WRONG_DTYPE, NO_WEIGHTS, ADDRESS, QUEUE_BUSY, SYNC = (
    range(1, 9))
MXM_PAIR = 9  # static only (the Plan flags it)
LINK = 128  # coordinate offset marking a C2C link (reference.LINK)

# ---- internal op codes: kind * 32 + sub (fast.py maps ISA opcodes to these by mnemonic) ----
K_ICU, K_MEM, K_VXM, K_MXM, K_SXM, K_C2C = range(6)
M_READ, M_WRITE, M_GATHER, M_SCATTER = range(4)
# VXM subs: 0..12 are the jit_ops V_* ALU ops; then the immediate forms and Cvt
X_ADDI, X_MULI, X_MAXI, X_MINI, X_CVT = 13, 14, 15, 16, 17
X_LW, X_IW, X_ABC, X_ACC, X_IWT = range(5)
S_SHIFTUP, S_SHIFTDOWN, S_ROTATE, S_PERMUTE, S_DISTRIBUTE, S_TRANSPOSE = range(6)
C_DESKEW, C_SEND, C_RECEIVE = range(3)

# ---- params (int64, read only) and regs (int64, the loop's scalars; survive between calls) ----
P_LANES, P_POSITIONS, P_RD, P_NV, P_RW, P_RL, P_NL, P_MEMSIZE = range(8)
P_ROWS, P_COLS, P_NACC, P_BLOCK, P_LENIENT, P_TRACE, P_NANMODE, P_BANKS = range(8, 16)
P_BCAP, P_BMIN = 16, 17  # int8 ACC batch: capacity (0: no batching), least size worth BLAS
P_FCAP = 18  # float ACC batch capacity (0: no batching); float batches never go to BLAS
NPARAMS = 19
R_K, R_VPTR, R_LPTR, R_PWN, R_PWSCAT, R_NVIOL, R_NEV, R_NEVH, R_VERCTR, R_ERR = range(10)
# the pending ACC batch: size; Y computed by the caller (ST_FLUSH); counters: flushes, flushes
# by the caller's matmul, ACCs that went through the batch; the batch's dtype (int8, or a float
# dtype). Its planes and their weights versions: bmeta[:, BM_PLANE] and wmeta[:, WM_BVER]
R_BN, R_YREADY, R_NFLUSH, R_NBLAS, R_NBACC, R_BDT = range(10, 16)
NREGS = 16
# ---- columns of the packed tables ----
SL_POS, SL_TAG, SL_ISSUE, SL_NEXT, SL_EXPIRE, SL_TREF, SL_PEND = range(7)  # slots
# bmeta: accumulator, the 4 output slots, first trace row, plane
BM_ACC, BM_SLOT, BM_TREF, BM_PLANE = 0, 1, 5, 6
BM_COLS = 7
PW_COMMIT, PW_ISSUE, PW_UNIT, PW_BANK, PW_ADDR, PW_SCAT, PW_DREF, PW_IREF = range(8)  # pw
LN_ARR, LN_EDGE, LN_LINK, LN_ISSUE, LN_W, LN_NEXT = range(6)  # ln
# wmeta: versions of the weights, the pending install, the cache (wdec) and its dtype; 1 + the
# version the pending batch's ACCs on the plane use (0: none of them is on the plane)
WM_WVER, WM_PVER, WM_CVER, WM_CDT, WM_BVER = range(5)
WM_ROWS = 5  # wmeta[plane, WM_ROWS + k]: the cached weights' row k, a ROW_* class (floats)
ROW_ZERO, ROW_FINITE, ROW_OTHER = 0, 1, 2  # all +-0; finite; holds an inf or a NaN
# ---- status codes ----
ST_DONE, ST_STOPPED, ST_GROW_VIOL, ST_GROW_TRACE, ST_FLUSH = 0, 1, 2, 3, 4
ST_FULL_STREAMS, ST_FULL_DIAG, ST_FULL_WRITES, ST_FULL_LINKS, ST_BAD_OP = 10, 11, 12, 13, 14
# ---- event kinds (frozen copies of lpu_emu.core.events; checked at import by fast.py) ----
EV_ISSUE, EV_TAKE, EV_PLACE, EV_SREAD, EV_SWRITE, EV_INIT = 1, 2, 3, 4, 5, 6
EV_LW, EV_IW, EV_ABC, EV_ACC, EV_SEND, EV_RECV, EV_VIOL = 7, 8, 9, 10, 11, 12, 13

_ORDER = (NO_VALUE, WRONG_DTYPE, ADDRESS, BANK_CONFLICT, NO_WEIGHTS, TWO_PRODUCERS)
NEVER = -(1 << 62)
FOREVER = 1 << 62
# the side of the squares an IWT transposes the weight buffer in (32 x 32 bytes a plane: both
# sides' rows stay in L1)
TRANSPOSE_BLOCK = 32
I64 = np.int64  # wraps constant arguments: numba compiles a callee once per literal value


@intrinsic
def borrow(typingctx, arr):
    """The same array without its reference count (a NULL meminfo, which NRT skips)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = context.make_array(arr)(context, builder, value=args[0])
        dst = context.make_array(arr)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(dst, name, getattr(src, name))
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        dst.parent = cgutils.get_null_value(dst.parent.type)
        return dst._getvalue()
    return arr(arr), codegen


# ---------------------------------------------------------------------------------------------
# small helpers (LLVM inlines them)
# ---------------------------------------------------------------------------------------------
@njit
def ev_add(ev, regs, cycle, kind, issue, a, b, c, d, ref):
    i = regs[R_NEV]
    ev[i, 0], ev[i, 1], ev[i, 2], ev[i, 3] = cycle, kind, issue, a
    ev[i, 4], ev[i, 5], ev[i, 6], ev[i, 7] = b, c, d, ref
    regs[R_NEV] = i + 1


@njit
def heap_add(evh, regs, src, row):
    """Copy src[row] (a 320-byte row) into the trace's value heap; returns its index."""
    i = regs[R_NEVH]
    for lane in range(evh.shape[1]):
        evh[i, lane] = src[row, lane]
    regs[R_NEVH] = i + 1
    return i


@njit
def flag(found, kind, a, b, c):
    """Remember the first violation of a kind for this issue (reference Interpreter.flag)."""
    if found[kind, 0] == 0:
        found[kind, 0], found[kind, 1], found[kind, 2], found[kind, 3] = 1, a, b, c


@njit
def diagonal(code, pos, cycle):
    return pos + cycle if code & 64 else pos - cycle


@njit
def expiry(code, diag, positions):
    """The last cycle a diagonal is on the chip (west: at position 0; east: at the last)."""
    return diag if code & 64 else positions - 1 - diag


@njit
def look(dtab, slots, rd, code, q, u):
    """The slot a reader at (q, u) sees on stream `code`: the nearest placement upstream on its
    diagonal (largest p <= q east, smallest p >= q west), or -1 (reference Streams.look)."""
    d = diagonal(code, q, u)
    h = code * rd + (d & (rd - 1))
    if dtab[h, 0] != d:
        return -1
    west = code & 64
    best, bp = -1, 0
    s = dtab[h, 1]
    while s >= 0:
        p = slots[s, SL_POS]
        if west:
            if p >= q and (best < 0 or p < bp):
                best, bp = s, p
        elif p <= q and (best < 0 or p > bp):
            best, bp = s, p
        s = slots[s, SL_NEXT]
    return best


@njit
def at(dtab, slots, rd, code, pos, t):
    """The slot placed exactly at (pos, t) on stream `code`, or -1 (reference Streams.at)."""
    d = diagonal(code, pos, t)
    h = code * rd + (d & (rd - 1))
    if dtab[h, 0] != d:
        return -1
    s = dtab[h, 1]
    while s >= 0:
        if slots[s, SL_POS] == pos:
            return s
        s = slots[s, SL_NEXT]
    return -1


@njit
def pending_lands(banks, unit, bank, commit):
    """True if a pending write lands on (unit, bank) at `commit`."""
    rw = banks.shape[2] - 1
    return banks[unit, bank, commit & (rw - 1)] == commit


# ---------------------------------------------------------------------------------------------
# SRAM writes (reference: PendingWrite, apply_writes)
# ---------------------------------------------------------------------------------------------
@njit
def push_write(pw, pwq, pwd, banks, regs, commit, k, unit, bank, addr, scat, vheap, dslot, islot,
               dref, iref):
    """Queue a write of vheap[dslot] (Scatter: with lane indices vheap[islot]) landing at
    `commit`, kept in (commit, issue) order."""
    n = regs[R_PWN]
    cap = pwq.shape[1]
    if n >= cap:
        return ST_FULL_WRITES
    slot = pwq[1, cap - 1 - n]  # the free stack is pwq[1, 0 : cap - n]
    pw[slot, PW_COMMIT], pw[slot, PW_ISSUE], pw[slot, PW_UNIT] = commit, k, unit
    pw[slot, PW_BANK], pw[slot, PW_ADDR], pw[slot, PW_SCAT] = bank, addr, scat
    pw[slot, PW_DREF], pw[slot, PW_IREF] = dref, iref
    for lane in range(pwd.shape[2]):
        pwd[slot, 0, lane] = vheap[dslot, lane]
    if scat:
        for lane in range(pwd.shape[2]):
            pwd[slot, 1, lane] = vheap[islot, lane]
        regs[R_PWSCAT] += 1
    j = n
    while j > 0 and pw[pwq[0, j - 1], PW_COMMIT] > commit:
        pwq[0, j] = pwq[0, j - 1]
        j -= 1
    pwq[0, j] = slot
    regs[R_PWN] = n + 1
    rw = banks.shape[2] - 1
    banks[unit, bank, commit & (rw - 1)] = commit
    return 0


@njit
def apply_writes(pw, pwq, pwd, sram, regs, ev, evh, trace, touched, before):
    """Commit the pending writes landing before `before` (FOREVER: all) in (commit, issue)
    order; tracing records each row's contents before its first write (INIT)."""
    n = regs[R_PWN]
    done = 0
    banks, size, lanes = sram.shape[1], sram.shape[2], sram.shape[3]
    while done < n:
        slot = pwq[0, done]
        commit = pw[slot, PW_COMMIT]
        if commit >= before:
            break
        u, b, base = pw[slot, PW_UNIT], pw[slot, PW_BANK], pw[slot, PW_ADDR]
        issue = pw[slot, PW_ISSUE]
        if pw[slot, PW_SCAT]:
            for lane in range(lanes):
                a = (base + np.int64(pwd[slot, 1, lane])) % size
                if trace and touched[(u * banks + b) * size + a] == 0:
                    touched[(u * banks + b) * size + a] = 1
                    ref = heap_add(evh, regs, sram[u, b], a)
                    ev_add(ev, regs, commit, I64(EV_INIT), issue, u, b, a, I64(0), ref)
                sram[u, b, a, lane] = pwd[slot, 0, lane]
            regs[R_PWSCAT] -= 1
        else:
            if trace and touched[(u * banks + b) * size + base] == 0:
                touched[(u * banks + b) * size + base] = 1
                ref = heap_add(evh, regs, sram[u, b], base)
                ev_add(ev, regs, commit, I64(EV_INIT), issue, u, b, base, I64(0), ref)
            for lane in range(lanes):
                sram[u, b, base, lane] = pwd[slot, 0, lane]
        if trace:
            ev_add(ev, regs, commit, I64(EV_SWRITE), issue, u, b, base, pw[slot, PW_IREF],
                   pw[slot, PW_DREF])
        done += 1
    if done:
        cap = pwq.shape[1]  # the applied slots go back on the free stack
        for j in range(done):
            pwq[1, cap - n + j] = pwq[0, j]
        for j in range(n - done):
            pwq[0, j] = pwq[0, j + done]
        regs[R_PWN] = n - done


# ---------------------------------------------------------------------------------------------
# MXM (reference: ops/mxm.py)
# ---------------------------------------------------------------------------------------------
@njit
def land(weights, weights_at, pending, pending_at, wmeta, plane, cycle):
    """A pending install whose cycle has come becomes the installed weights."""
    if 0 <= pending_at[plane] <= cycle:
        for r in range(weights.shape[1]):
            for p in range(weights.shape[2]):
                for lane in range(weights.shape[3]):
                    weights[plane, r, p, lane] = pending[plane, r, p, lane]
        weights_at[plane] = pending_at[plane]
        pending_at[plane] = -1
        wmeta[plane, WM_WVER] = wmeta[plane, WM_PVER]


@njit
def weights_for(weights, weights_at, pending, pending_at, wmeta, wdec, plane, cycle, dtype):
    """Decode (once per install and dtype) the weights an ACC at `cycle` uses into wdec[plane];
    False if there are none (then wdec[plane] is zero: the no-weights violation)."""
    if 0 <= pending_at[plane] <= cycle:
        ver, use_pending = wmeta[plane, WM_PVER], True
    elif weights_at[plane] >= 0:
        ver, use_pending = wmeta[plane, WM_WVER], False
    else:
        ver, use_pending = I64(0), False
    if wmeta[plane, WM_CVER] != ver or wmeta[plane, WM_CDT] != dtype:
        out = wdec[plane]
        if ver == 0:
            for r in range(out.shape[0]):
                for lane in range(out.shape[1]):
                    out[r, lane] = 0
        else:
            decode_weights(pending[plane] if use_pending else weights[plane], dtype, out)
        if dtype != INT8:
            for r in range(out.shape[0]):
                wmeta[plane, WM_ROWS + r] = row_class(out[r])
        wmeta[plane, WM_CVER], wmeta[plane, WM_CDT] = ver, dtype
    return ver != 0


@njit
def decode_weights(raw, dtype, out):
    """out[r, lane] = the fp32 value of weight (r, lane) from its byte planes raw[r, :, lane]
    (int8 as its integer). One loop per dtype, so that the common ones vectorise: bf16 is its
    two bytes shifted into an fp32's top half."""
    rows, lanes = out.shape
    if dtype == INT8:
        for r in range(rows):
            for lane in range(lanes):
                b = np.int64(raw[r, 0, lane])
                out[r, lane] = np.float32(b - ((b & 0x80) << 1))
    elif dtype == BF16:
        for r in range(rows):
            for lane in range(lanes):
                b = np.uint32(raw[r, 0, lane]) | (np.uint32(raw[r, 1, lane]) << np.uint32(8))
                out[r, lane] = np.uint32(b << np.uint32(16)).view(np.float32)
    elif dtype == FP16:
        for r in range(rows):
            for lane in range(lanes):
                b = np.int64(raw[r, 0, lane]) | (np.int64(raw[r, 1, lane]) << 8)
                out[r, lane] = np.uint32(f16_to_f32_bits(b)).view(np.float32)
    else:
        for r in range(rows):
            for lane in range(lanes):
                b = np.int64(raw[r, 0, lane])
                out[r, lane] = np.uint32(decode_f32_bits(b, dtype)).view(np.float32)


@njit
def install(wbuf, pending, transposed, lanes, loaded):
    """pending = the weight buffer's rows (IW), or their transpose (IWT: W[r][lane] = row
    lane's value r, zero outside both); the transpose in TRANSPOSE_BLOCK squares, so that
    both sides stay in cache. Only the first `loaded` rows of the buffer are read: the rows
    past them are zero (LW fills rows in order from wbuf_rows, an IW clears the rows it
    loaded), and a decode step's IWTs of a short key cache load 64 of 320."""
    rows, planes = wbuf.shape[0], wbuf.shape[1]
    if not transposed:
        for r in range(rows):
            for p in range(planes):
                for lane in range(lanes):
                    pending[r, p, lane] = wbuf[r, p, lane] if r < loaded else 0
        return
    for r in range(rows):
        for p in range(planes):
            for lane in range(lanes):
                pending[r, p, lane] = 0
    m = min(rows, lanes)
    n = min(m, loaded)  # the buffer's rows that can be nonzero: pending's columns
    for r0 in range(0, m, TRANSPOSE_BLOCK):
        r1 = min(m, r0 + TRANSPOSE_BLOCK)
        for l0 in range(0, n, TRANSPOSE_BLOCK):
            l1 = min(n, l0 + TRANSPOSE_BLOCK)
            for p in range(planes):
                for r in range(r0, r1):
                    for lane in range(l0, l1):
                        pending[r, p, lane] = wbuf[lane, p, r]


@njit
def row_class(row):
    """ROW_ZERO if every value is +-0, ROW_FINITE if every value is finite, else ROW_OTHER.
    (Byte flags or-ed without an early exit: the loop vectorises, 7x faster than the early
    exit's scalar loop, which was a quarter of a GPT decode step's run: it installs 80 weight
    tiles. Counting in int64 instead stays scalar.)"""
    other, nonzero = np.uint8(0), np.uint8(0)
    for i in range(row.shape[0]):
        v = row[i]
        other |= np.uint8(v - v != 0)  # inf or NaN
        nonzero |= np.uint8(v != 0)
    if other:
        return ROW_OTHER
    return ROW_FINITE if nonzero else ROW_ZERO


@njit
def skip_row(cls, u0, u1, u2, u3, u4, u5, u6, u7):
    """Whether step k of a float ACC group changes no accumulator, so that leaving it out is
    exact: every product x*w is +-0 (zero weights and finite x, or zero x and finite weights),
    and s + (+-0) == s for every s an accumulator can hold (it starts at +0 and a sum of fp32
    values rounded to nearest is -0 only if both are -0, so it is never -0; NaN and inf are
    kept)."""
    if cls == ROW_OTHER:
        return False
    if cls == ROW_ZERO:
        return (u0 - u0 == 0 and u1 - u1 == 0 and u2 - u2 == 0 and u3 - u3 == 0
                and u4 - u4 == 0 and u5 - u5 == 0 and u6 - u6 == 0 and u7 - u7 == 0)
    return (u0 == 0 and u1 == 0 and u2 == 0 and u3 == 0 and u4 == 0 and u5 == 0 and u6 == 0
            and u7 == 0)


@njit
def acc_compute(acc_in, xf, w, rows, cols, is_int, out, outf, dot):
    """out = the accumulator after acc_j += sum_k x[k] * W[k, j] (reference mxm.acc): int8 in
    exact integers (the fp32 loop is exact: |sum| < 2^24), floats in fp32 k ascending, one
    rounding per step, NaNs as numpy makes them. outf is the float32 view of out."""
    for j in range(out.shape[0]):
        out[j] = acc_in[j]
    if is_int:
        for j in range(cols):
            dot[j] = 0
        for k in range(rows):
            xk = xf[k]
            if xk != 0:
                for j in range(cols):
                    dot[j] += xk * w[k, j]
        for j in range(cols):
            v = np.int64(np.int32(acc_in[j])) + np.int64(dot[j])
            out[j] = np.uint32(v & 0xFFFFFFFF)
        return
    for k in range(rows):
        xk = xf[k]
        for j in range(cols):
            outf[j] = outf[j] + xk * w[k, j]
    nans = 0
    for j in range(cols):
        nans += outf[j] != outf[j]
    if nans:  # replay NaN lanes with numpy's NaN rules (the fast loop may pick another payload)
        for j in range(cols):
            if outf[j] == outf[j]:
                continue
            s = np.uint32(acc_in[j]).view(np.float32)
            for k in range(rows):
                p = xf[k] * w[k, j]
                if p != p:
                    p = _f32(nan_rule(_bits(xf[k]), _bits(w[k, j]), _bits(p)))
                r = s + p
                if r != r:
                    r = _f32(nan_rule(_bits(s), _bits(p), _bits(r)))
                s = r
            outf[j] = s


@njit
def _bits(x):
    return np.int64(np.float32(x).view(np.uint32))


@njit
def _f32(b):
    return np.uint32(b).view(np.float32)


# ---------------------------------------------------------------------------------------------
# C2C links (reference: op_send / op_receive; a link is a delay line keyed by arrival cycle)
# ---------------------------------------------------------------------------------------------
@njit
def link_find(lk, ln, edge, link, t):
    h = t & (lk.shape[0] - 1)
    if lk[h, 0] != t:
        return -1
    s = lk[h, 1]
    while s >= 0:
        if ln[s, LN_EDGE] == edge and ln[s, LN_LINK] == link:
            return s
        s = ln[s, LN_NEXT]
    return -1


@njit
def link_put(lk, ln, lnd, regs, edge, link, t, k, w, vheap, sl, c):
    """A Send's vector arrives at (edge, link) at t; a later Send replaces an earlier one."""
    h = t & (lk.shape[0] - 1)
    if lk[h, 0] != t:
        if lk[h, 1] >= 0 and lk[h, 0] >= c:
            return ST_FULL_LINKS
        lk[h, 0], lk[h, 1] = t, -1
    s = link_find(lk, ln, edge, link, t)
    if s < 0:
        s = regs[R_LPTR]
        if ln[s, LN_ARR] >= c:
            return ST_FULL_LINKS
        regs[R_LPTR] = s + 1 if s + 1 < ln.shape[0] else 0
        ln[s, LN_ARR], ln[s, LN_EDGE], ln[s, LN_LINK] = t, edge, link
        ln[s, LN_NEXT] = lk[h, 1]
        lk[h, 1] = s
    ln[s, LN_ISSUE], ln[s, LN_W] = k, w
    for p in range(w):
        for lane in range(lnd.shape[2]):
            lnd[s, p, lane] = vheap[sl[0, p], lane]
    return 0


# ---------------------------------------------------------------------------------------------
# compute kernels, one per slice kind
# ---------------------------------------------------------------------------------------------
@njit
def imm_lanes(bits, dtype, lanes, row, ints):
    """The IMM operand on every lane of a lane row, rounded into the dtype (reference
    Interpreter.imm)."""
    bits = bits & 0xFFFFFFFF
    if dtype in (INT8, INT32):
        v = bits - ((bits & 0x80000000) << 1)
        if dtype == INT8:
            v = (v & 0xFF) - ((v & 0x80) << 1)
        for lane in range(lanes):
            ints[lane] = v
    else:
        b = decode_f32_bits(encode_f32_bits(bits, dtype), dtype)
        for lane in range(lanes):
            row[lane] = b


@njit
def vxm(sub, dtype, dtype2, imm, lanes, nan_mode, vheap, sl, lv, li, lf, outp):
    """A VXM ALU op on the groups whose slots are in sl[0] (x) and sl[1] (y), in the lane rows
    lv/li/lf (uint32 / int32 / float32 views of one array); the result's planes into outp.
    Returns the output dtype."""
    decode_lanes(vheap, sl[0], dtype, lanes, lv[0], li[0])
    if sub == X_CVT:
        convert(dtype, dtype2, li[0], lf[0], lanes)
        encode_lanes(lv[0], dtype2, lanes, outp)
        return dtype2
    if sub <= V_MIN:
        decode_lanes(vheap, sl[1], dtype, lanes, lv[1], li[1])
        vop = sub
    elif sub >= X_ADDI:
        imm_lanes(imm, dtype, lanes, lv[1], li[1])
        vop = (V_ADD, V_MUL, V_MAX, V_MIN)[sub - X_ADDI]
    else:
        vop = sub
    if dtype in (INT8, INT32):
        int_op(vop, li[0], li[1], li[2], lanes)
    else:
        float_op(vop, lv[0], lv[1], lv[2], lf[0], lf[1], lf[2], lanes, nan_mode)
    encode_lanes(lv[2], dtype, lanes, outp)
    return dtype


@njit
def sxm(sub, w, n, lanemap, block, lanes, vheap, sl, outp):
    """Lane movement on w byte planes (an element's planes move together; reference ops/sxm)."""
    if sub == S_TRANSPOSE:  # [j, k, i] -> [i, k, j], flattened, as reference sxm.transpose
        nk = lanes // block
        for i in range(block):
            for kk in range(nk):
                for j in range(w):
                    flat = (i * nk + kk) * w + j
                    outp[flat // lanes, flat % lanes] = vheap[sl[j], kk * block + i]
        return
    for p in range(w):
        s = sl[p]
        for lane in range(lanes):
            if sub == S_SHIFTUP:
                src = lane + n
                outp[p, lane] = vheap[s, src] if src < lanes else 0
            elif sub == S_SHIFTDOWN:
                src = lane - n
                outp[p, lane] = vheap[s, src] if src >= 0 else 0
            elif sub == S_ROTATE:
                outp[p, lane] = vheap[s, (lane + n) % lanes]
            else:
                m = lanemap[lane]
                outp[p, lane] = vheap[s, m] if m >= 0 else 0


@njit
def mxm_acc(dtype, plane, a, c, lanes, rows, cols, vheap, sl, lv, li, lf, xf, dot, weights,
            weights_at, pending, pending_at, wmeta, wdec, acc, accbits, accf, outp):
    """ACC's value: x decoded, the weights it sees, the new accumulator into accbits (accf: its
    float32 view) and its 4 byte planes into outp. Returns whether there were weights."""
    decode_lanes(vheap, sl[0], dtype, lanes, lv[0], li[0])
    for lane in range(lanes):
        xf[lane] = np.float32(li[0, lane]) if dtype == INT8 else lf[0, lane]
    have = weights_for(weights, weights_at, pending, pending_at, wmeta, wdec, plane, c, dtype)
    acc_compute(acc[plane, a], xf, wdec[plane], rows, cols, dtype == INT8, accbits, accf, dot)
    for p in range(4):
        for lane in range(lanes):
            outp[p, lane] = (accbits[lane] >> (8 * p)) & 0xFF
    return have


@njit
def mxm_acc_defer(dtype, plane, c, lanes, vheap, sl, lv, li, lf, xb, regs, weights, weights_at,
                  pending, pending_at, wmeta, wdec):
    """An ACC joining the batch: its x decoded into xb[R_BN] (as fp32) and the weights it sees
    decoded; the compute waits for the flush. Returns whether there were weights."""
    decode_lanes(vheap, sl[0], dtype, lanes, lv[0], li[0])
    b = regs[R_BN]
    for lane in range(lanes):
        xb[b, lane] = np.float32(li[0, lane]) if dtype == INT8 else lf[0, lane]
    have = weights_for(weights, weights_at, pending, pending_at, wmeta, wdec, plane, c, dtype)
    if b == 0:
        regs[R_BDT] = dtype
    return have


# ---------------------------------------------------------------------------------------------
# batched ACCs: consecutive ACCs of one dtype, each plane's with one weights version, are deferred
# (x kept in xb, the output slots and trace rows allocated and marked pending) and computed
# together a plane at a time, then applied in issue order within each plane (batch_by_plane).
# int8: Y = X @ W (exact in fp32: |sum| < 2^24), added
# into the accumulators; big batches return ST_FLUSH so the caller does the matmul with BLAS.
# Floats: batch_compute_float keeps the definition (k ascending, fp32, one rounding per step)
# and leaves in yb the accumulator after each ACC. The batch is flushed before anything could see
# or change what it computes (batch_conflict), and before the loop ends or stops.
# ---------------------------------------------------------------------------------------------
@njit
def weights_ver(weights_at, pending_at, wmeta, plane, cycle):
    """The weights version an ACC at `cycle` would use (weights_for's choice; 0: none)."""
    if 0 <= pending_at[plane] <= cycle:
        return wmeta[plane, WM_PVER]
    if weights_at[plane] >= 0:
        return wmeta[plane, WM_WVER]
    return I64(0)


@njit
def batch_conflict(issues, k, op, params, regs, dtab, slots, weights_at, pending_at, wmeta):
    """True if issue k could observe or change what the pending batch computes: it reads or
    replaces a pending placement, may recycle a pending slot, clears an accumulator of a plane
    with ACCs in the batch, or is an ACC that cannot join the batch (the batch is full, another
    dtype, other weights than the batch's ACCs on its plane use)."""
    if regs[R_BN] >= params[P_BCAP if regs[R_BDT] == INT8 else P_FCAP]:
        return True
    kind, sub = op >> 5, op & 31
    c, pos, dtype, unit = issues[k, CYCLE], issues[k, POS], issues[k, DTYPE], issues[k, UNIT]
    n_in, outw = 0, I64(0)
    if kind == K_MEM:
        n_in = 0 if sub == M_READ else (2 if sub == M_SCATTER else 1)
        outw = I64(1) if sub in (M_READ, M_GATHER) else I64(0)
    elif kind == K_VXM:
        n_in = 2 if sub <= V_MIN else 1
        outw = issues[k, WC]
    elif kind == K_MXM:
        n_in = 1 if sub in (X_LW, X_ACC) else 0
        if sub == X_ABC and wmeta[unit, WM_BVER] != 0:
            return True
        if sub == X_ACC:  # joins with the batch's dtype, and its plane's weights if it has ACCs
            outw = I64(4)
            if dtype != regs[R_BDT]:
                return True
            bver = wmeta[unit, WM_BVER]
            if bver != 0 and weights_ver(weights_at, pending_at, wmeta, unit, c) + 1 != bver:
                return True
    elif kind == K_SXM:
        n_in = 1
        outw = issues[k, WC]
    elif kind == K_C2C:
        n_in = 1 if sub == C_SEND else 0
        outw = issues[k, WC] if sub == C_RECEIVE else I64(0)
    rd, nv = params[P_RD], params[P_NV]
    for j in range(n_in):
        code, w = (issues[k, SA], issues[k, WA]) if j == 0 else (issues[k, SB], issues[k, WB])
        for i in range(w):
            s = look(dtab, slots, rd, code + i, pos, c)
            if s >= 0 and slots[s, SL_PEND]:
                return True
    t = c + issues[k, LAT]
    sc = issues[k, SC]
    for i in range(outw):
        s = at(dtab, slots, rd, sc + i, pos, t)
        if s >= 0 and slots[s, SL_PEND]:
            return True
        if slots[(regs[R_VPTR] + i) % nv, SL_PEND]:
            return True
    return False


@njit
def batch_by_plane(xb, bmeta, nb):
    """Order the batch's ACCs by plane, keeping issue order within each (a stable counting
    sort of the rows of xb and bmeta), so that each plane's ACCs are one run of rows: ACCs on
    different planes share no accumulator, weights or output slot, so the order between them
    is free. A compiled matmul alternates its ACCs between two plane pairs."""
    first, mixed, top = bmeta[0, BM_PLANE], False, I64(0)
    for i in range(nb):
        mixed |= bmeta[i, BM_PLANE] != first
        top = max(top, bmeta[i, BM_PLANE])
    if not mixed:
        return
    xs, ms = xb[:nb].copy(), bmeta[:nb].copy()
    n = 0
    for p in range(top + 1):
        for i in range(nb):
            if ms[i, BM_PLANE] == p:
                xb[n, :] = xs[i, :]
                bmeta[n, :] = ms[i, :]
                n += 1


@njit
def plane_run(bmeta, i, nb):
    """The end of the run of rows from i on that share row i's plane."""
    j = i + 1
    while j < nb and bmeta[j, BM_PLANE] == bmeta[i, BM_PLANE]:
        j += 1
    return j


@njit
def batch_compute(xb, yb, wdec, bmeta, regs, rows, cols):
    """Y of the pending batch in the loop (small batches): as acc_compute's int8 path (exact in
    any order), k outermost so each weight row is loaded once for a plane's run of ACCs."""
    nb = regs[R_BN]
    for i in range(nb):
        for j in range(cols):
            yb[i, j] = 0
    lo = 0
    while lo < nb:
        hi = plane_run(bmeta, lo, nb)
        w = wdec[bmeta[lo, BM_PLANE]]
        for kk in range(rows):
            for i in range(lo, hi):
                xk = xb[i, kk]
                if xk != 0:
                    for j in range(cols):
                        yb[i, j] += xk * w[kk, j]
        lo = hi


@njit
def float_start(yb, bmeta, acc, plane, i, lo, cols):
    """Where ACC i of a float batch starts: the accumulator after the last earlier ACC of its
    plane's run (rows lo..i-1) on the same accumulator (a row of yb), else the accumulator as
    it is (the plane's row), as a float32 row of `cols` values (a view)."""
    a = bmeta[i, BM_ACC]
    for q in range(i - 1, lo - 1, -1):
        if bmeta[q, BM_ACC] == a:
            return yb[q, :cols]
    return acc[plane, a, :cols].view(np.float32)


@njit
def group_skips(xb, rc, i, ng, rows, skip):
    """skip[k]: step k changes none of the ng ACCs from i on (skip_row, W's row classes rc)."""
    for k in range(rows):
        if ng == 8:
            skip[k] = skip_row(rc[k], xb[i, k], xb[i + 1, k], xb[i + 2, k], xb[i + 3, k],
                               xb[i + 4, k], xb[i + 5, k], xb[i + 6, k], xb[i + 7, k])
        elif ng == 4:
            skip[k] = skip_row(rc[k], xb[i, k], xb[i + 1, k], xb[i + 2, k], xb[i + 3, k],
                               xb[i, k], xb[i + 1, k], xb[i + 2, k], xb[i + 3, k])
        else:
            u = xb[i, k]
            skip[k] = skip_row(rc[k], u, u, u, u, u, u, u, u)


@njit
def float_group(xb, w, yb, i, ng, rows, cols, skip, contract):
    """yb[i..i+ng) (ng = 8, 4 or 1 ACCs, already holding their start values) += x . W, k
    ascending, s + x*w per step, leaving out the steps skip marks: register tiles (simd.py) over
    the columns they cover, the definition's loop over the rest. `contract`: the products are
    exact in fp32 (fp16, fp8e4m3 inputs), so the tiles may fuse each step into an FMA; not for
    bf16 (fp32's exponent range: a product can overflow or underflow)."""
    step = COLUMNS8 if ng == 8 else (COLUMNS4 if ng == 4 else COLUMNS1)
    full = cols - cols % step
    for j0 in range(0, full, step):
        if ng == 8:
            if contract:
                tile8_fma(xb, w, yb, i, j0, rows, skip)
            else:
                tile8(xb, w, yb, i, j0, rows, skip)
        elif ng == 4:
            if contract:
                tile4_fma(xb, w, yb, i, j0, rows, skip)
            else:
                tile4(xb, w, yb, i, j0, rows, skip)
        elif contract:
            tile1_fma(xb, w, yb, i, j0, rows, skip)
        else:
            tile1(xb, w, yb, i, j0, rows, skip)
    for g in range(i, i + ng):
        for k in range(rows):
            if skip[k]:
                continue
            u = xb[g, k]
            for j in range(full, cols):
                yb[g, j] = yb[g, j] + u * w[k, j]


@njit
def float_nans(xb, w, yb, start, i, rows, cols):
    """Replay ACC i's NaN lanes with numpy's NaN rules (acc_compute's rule: the vectorised loop
    may pick another NaN payload)."""
    for j in range(cols):
        if yb[i, j] == yb[i, j]:
            continue
        s = start[j]
        for k in range(rows):
            p = xb[i, k] * w[k, j]
            if p != p:
                p = _f32(nan_rule(_bits(xb[i, k]), _bits(w[k, j]), _bits(p)))
            r = s + p
            if r != r:
                r = _f32(nan_rule(_bits(s), _bits(p), _bits(r)))
            s = r
        yb[i, j] = s


@njit
def distinct_accs(bmeta, i, n, nb):
    """ACCs i..i+n-1 exist and use n different accumulators."""
    if i + n > nb:
        return False
    for p in range(i, i + n):
        for q in range(p + 1, i + n):
            if bmeta[p, BM_ACC] == bmeta[q, BM_ACC]:
                return False
    return True


@njit
def batch_compute_float(xb, yb, wdec, wmeta, bmeta, acc, regs, rows, cols):
    """yb[i] = the accumulator after float ACC i of the batch (acc_compute's float path, ACC by
    ACC in issue order on each plane; batch_by_plane made each plane's ACCs a run of rows):
    8 or 4 consecutive ACCs of a run on as many different accumulators run together (none
    starts from another's result)."""
    nb = regs[R_BN]
    skip = np.empty(rows, np.bool_)
    lo = 0
    while lo < nb:
        hi = plane_run(bmeta, lo, nb)
        plane = bmeta[lo, BM_PLANE]
        w = wdec[plane]
        rc = wmeta[plane, WM_ROWS:WM_ROWS + rows]
        i = lo
        while i < hi:
            ng = 8 if distinct_accs(bmeta, i, 8, hi) else (4 if distinct_accs(bmeta, i, 4, hi)
                                                           else 1)
            for g in range(ng):
                start = float_start(yb, bmeta, acc, plane, i + g, lo, cols)
                for j in range(cols):
                    yb[i + g, j] = start[j]
            group_skips(xb, rc, i, ng, rows, skip)
            float_group(xb, w, yb, i, ng, rows, cols, skip, regs[R_BDT] != BF16)
            for g in range(ng):
                nans = 0
                for j in range(cols):
                    nans += yb[i + g, j] != yb[i + g, j]
                if nans:
                    float_nans(xb, w, yb, float_start(yb, bmeta, acc, plane, i + g, lo, cols),
                               i + g, rows, cols)
            i += ng
        lo = hi


@njit
def batch_apply(yb, bmeta, wmeta, regs, acc, slots, vheap, evh, trace, cols, lanes):
    """Apply the batch's Y in issue order on each plane: int8 acc = wrap32(acc + y), floats
    acc = y (the accumulator after the ACC), its 4 byte planes into the output slots (and trace
    rows) allocated when the ACCs issued. Empties the batch."""
    is_int = regs[R_BDT] == INT8
    for i in range(regs[R_BN]):
        a, plane = bmeta[i, BM_ACC], bmeta[i, BM_PLANE]
        for j in range(cols):
            if is_int:
                v = np.int64(np.int32(acc[plane, a, j])) + np.int64(yb[i, j])
                acc[plane, a, j] = np.uint32(v & 0xFFFFFFFF)
            else:
                acc[plane, a, j] = np.float32(yb[i, j]).view(np.uint32)
        for p in range(4):
            s = bmeta[i, BM_SLOT + p]
            slots[s, SL_PEND] = 0
            for lane in range(lanes):
                vheap[s, lane] = (acc[plane, a, lane] >> (8 * p)) & 0xFF
            if trace:
                r = bmeta[i, BM_TREF] + p
                for lane in range(lanes):
                    evh[r, lane] = vheap[s, lane]
    for plane in range(wmeta.shape[0]):
        wmeta[plane, WM_BVER] = 0
    regs[R_NFLUSH] += 1
    regs[R_BN] = 0
    regs[R_YREADY] = 0


@njit
def batch_finish(xb, yb, wdec, wmeta, bmeta, regs, acc, slots, vheap, evh, trace, rows, cols,
                 lanes):
    """Compute and apply the pending batch in the loop."""
    batch_by_plane(xb, bmeta, regs[R_BN])
    if regs[R_BDT] == INT8:
        batch_compute(xb, yb, wdec, bmeta, regs, rows, cols)
    else:
        batch_compute_float(xb, yb, wdec, wmeta, bmeta, acc, regs, rows, cols)
    batch_apply(yb, bmeta, wmeta, regs, acc, slots, vheap, evh, trace, cols, lanes)


@njit
def batch_flush(xb, yb, wdec, wmeta, bmeta, regs, acc, slots, vheap, evh, trace, rows, cols,
                lanes, bmin):
    """Empty the pending batch: in the loop when it is small or float, else True: the caller
    returns ST_FLUSH so that fast.py computes Y with BLAS (one matmul per plane's run of rows)
    and resumes the loop."""
    if regs[R_BN] >= bmin and regs[R_BDT] == INT8:
        batch_by_plane(xb, bmeta, regs[R_BN])
        regs[R_NBLAS] += 1
        return True
    batch_finish(xb, yb, wdec, wmeta, bmeta, regs, acc, slots, vheap, evh, trace, rows, cols,
                 lanes)
    return False


# ---------------------------------------------------------------------------------------------
# the loop (reference: Interpreter.run and execute)
# ---------------------------------------------------------------------------------------------
@entry
def run_issues(issues, opmap, params, regs, found, viol,
               sram, lanemaps, wbuf, wbuf_rows, weights, weights_at, pending, pending_at, acc,
               dtab, slots, vheap, pw, pwq, pwd, banks, lk, ln, lnd, wmeta, wdec,
               ev, evh, touched, sl, lv, li, lf, addrs, outp, accbits, accf, xf, dot,
               xb, yb, bmeta):
    """Run issues from regs[R_K] on; returns a status (regs[R_K]: where it stopped or resumes)."""
    issues, opmap, params, regs, found, viol = (borrow(issues), borrow(opmap), borrow(params),
                                                borrow(regs), borrow(found), borrow(viol))
    sram, lanemaps, wbuf = borrow(sram), borrow(lanemaps), borrow(wbuf)
    wbuf_rows = borrow(wbuf_rows)
    weights, weights_at, pending = borrow(weights), borrow(weights_at), borrow(pending)
    pending_at, acc = borrow(pending_at), borrow(acc)
    dtab, slots, vheap = borrow(dtab), borrow(slots), borrow(vheap)
    pw, pwq = borrow(pw), borrow(pwq)
    pwd, banks, lk, ln, lnd = borrow(pwd), borrow(banks), borrow(lk), borrow(ln), borrow(lnd)
    wmeta, wdec = borrow(wmeta), borrow(wdec)
    ev, evh, touched = borrow(ev), borrow(evh), borrow(touched)
    sl, lv, li, lf, addrs = borrow(sl), borrow(lv), borrow(li), borrow(lf), borrow(addrs)
    outp, accbits, accf = borrow(outp), borrow(accbits), borrow(accf)
    xf, dot = borrow(xf), borrow(dot)
    xb, yb, bmeta = borrow(xb), borrow(yb), borrow(bmeta)

    n = issues.shape[0]
    trace, lenient = params[P_TRACE] != 0, params[P_LENIENT] != 0
    lanes, size, rd, nv = params[P_LANES], params[P_MEMSIZE], params[P_RD], params[P_NV]
    positions, nacc = params[P_POSITIONS], params[P_NACC]
    zero = nv  # vheap[nv] is all zeros: what a reader gets where nothing passes
    rows, cols, bmin = params[P_ROWS], params[P_COLS], params[P_BMIN]
    if regs[R_YREADY]:  # resumed after ST_FLUSH: the caller computed the batch's Y
        batch_apply(yb, bmeta, wmeta, regs, acc, slots, vheap, evh, trace, cols, lanes)
    k = regs[R_K]
    while k < n:
        c = issues[k, CYCLE]
        # ---- 0. flush the pending ACC batch if this issue could observe or change it ----
        if regs[R_BN] > 0:
            op = opmap[issues[k, OP] & 255]
            conflict = op < 0 or batch_conflict(issues, k, op, params, regs, dtab, slots,
                                                weights_at, pending_at, wmeta)
            if conflict and batch_flush(xb, yb, wdec, wmeta, bmeta, regs, acc, slots, vheap, evh,
                                        trace, rows, cols, lanes, bmin):
                regs[R_K] = k
                return ST_FLUSH
        # ---- room for this issue's records (the buffers grow between calls) ----
        if regs[R_NVIOL] + 8 > viol.shape[0]:
            regs[R_K] = k
            return ST_GROW_VIOL
        if trace:
            # at most: ISSUE, 7 violations, a take per input stream, a placement per output
            # (a value row each), the op's record; and for each write landing first, its
            # SWRITE plus an INIT (a row) per row it touches first (Scatter: up to lanes)
            width = issues[k, WA] + issues[k, WB] + issues[k, WC]
            pwn, scat = regs[R_PWN], regs[R_PWSCAT]
            room_ev = 10 + width + 2 * pwn + (lanes + 1) * scat
            room_rows = issues[k, WC] + pwn + lanes * scat
            if regs[R_NEV] + room_ev > ev.shape[0] or regs[R_NEVH] + room_rows > evh.shape[0]:
                regs[R_K] = k
                return ST_GROW_TRACE
            ev_add(ev, regs, c, I64(EV_ISSUE), k, issues[k, QUEUE], issues[k, OP],
                   issues[k, DTYPE], I64(0), I64(-1))
        # ---- 1. a static violation from the Plan (strict: stop before executing) ----
        v = issues[k, VIOL]
        if v:
            i = regs[R_NVIOL]
            viol[i, 0], viol[i, 1], viol[i, 2] = v, k, c
            viol[i, 3], viol[i, 4] = issues[k, VIOL_A], issues[k, VIOL_B]
            viol[i, 5] = -1 if v == ADDRESS else 0
            regs[R_NVIOL] = i + 1
            if trace:
                ev_add(ev, regs, c, I64(EV_VIOL), k, v, viol[i, 3], viol[i, 4], viol[i, 5], I64(-1))
            if not lenient:
                if regs[R_BN] > 0:
                    batch_finish(xb, yb, wdec, wmeta, bmeta, regs, acc, slots, vheap, evh, trace,
                                 rows, cols, lanes)
                regs[R_K] = k
                return ST_STOPPED
        # ---- 2. writes landing before c ----
        if regs[R_PWN] > 0 and pw[pwq[0, 0], PW_COMMIT] < c:
            apply_writes(pw, pwq, pwd, sram, regs, ev, evh, trace, touched, c)
        # ---- 3. decode, read the input groups (operand a, then b) ----
        for kind in range(1, 9):
            found[kind, 0] = 0
        op = opmap[issues[k, OP] & 255]
        if op < 0:
            regs[R_ERR], regs[R_K] = issues[k, OP], k
            return ST_BAD_OP
        kind, sub = op >> 5, op & 31
        pos, lat, dtype = issues[k, POS], issues[k, LAT], issues[k, DTYPE]
        unit, bank, imm = issues[k, UNIT], issues[k, BANK], issues[k, IMM]
        t = c + lat
        n_in = 0  # input operands this op reads
        if kind == K_MEM:
            n_in = 0 if sub == M_READ else (2 if sub == M_SCATTER else 1)
        elif kind == K_VXM:
            n_in = 2 if sub <= V_MIN else 1
        elif kind == K_MXM:
            n_in = 1 if sub in (X_LW, X_ACC) else 0
        elif kind == K_SXM:
            n_in = 1
        elif kind == K_C2C:
            n_in = 1 if sub == C_SEND else 0
        for j in range(n_in):
            code, w = (issues[k, SA], issues[k, WA]) if j == 0 else (issues[k, SB], issues[k, WB])
            for i in range(w):
                s = look(dtab, slots, rd, code + i, pos, c)
                if s < 0:
                    flag(found, I64(NO_VALUE), code + i, pos, I64(0))
                    sl[j, i] = zero
                    if trace:
                        ev_add(ev, regs, c, I64(EV_TAKE), k, code + i, pos, I64(-1), I64(0),
                               I64(-1))
                    continue
                if slots[s, SL_TAG] != dtype:
                    flag(found, I64(WRONG_DTYPE), code + i, slots[s, SL_TAG], pos)
                sl[j, i] = s
                if trace:
                    ev_add(ev, regs, c, I64(EV_TAKE), k, code + i, pos, slots[s, SL_POS],
                           slots[s, SL_TAG], slots[s, SL_TREF])
        # ---- 4. compute into outp (nothing of the machine changes yet) ----
        outw, tag, have_w, lsend = I64(0), dtype, True, I64(-1)
        batched = (kind == K_MXM and sub == X_ACC
                   and params[P_BCAP if dtype == INT8 else P_FCAP] > 0)
        if kind == K_MEM:
            if sub in (M_READ, M_GATHER):
                last_read = banks[unit, bank, banks.shape[2] - 1]
                if pending_lands(banks, unit, bank, c) or last_read == c:
                    flag(found, I64(BANK_CONFLICT), unit, bank, c)
                outw = 1
            if sub == M_READ:
                a = issues[k, ADDR] % size
                for lane in range(lanes):
                    outp[0, lane] = sram[unit, bank, a, lane]
            else:
                if sub != M_WRITE:  # Gather/Scatter lane addresses: base + index (unsigned)
                    base = issues[k, ADDR]
                    for lane in range(lanes):
                        a = base + np.int64(vheap[sl[0, 0], lane])
                        if (a < 0 or a >= size) and issues[k, VIOL] != ADDRESS:
                            flag(found, I64(ADDRESS), a, bank, I64(lane))
                        addrs[lane] = a % size
                if sub == M_GATHER:
                    for lane in range(lanes):
                        outp[0, lane] = sram[unit, bank, addrs[lane], lane]
                elif pending_lands(banks, unit, bank, t):
                    flag(found, I64(BANK_CONFLICT), unit, bank, t)
        elif kind == K_VXM:
            tag = vxm(sub, dtype, issues[k, DTYPE2], imm, lanes, params[P_NANMODE], vheap, sl, lv,
                      li, lf, outp)
            outw = issues[k, WC]
        elif batched:
            have_w = mxm_acc_defer(dtype, unit, c, lanes, vheap, sl, lv, li, lf, xb, regs,
                                   weights, weights_at, pending, pending_at, wmeta, wdec)
            if not have_w:
                flag(found, I64(NO_WEIGHTS), unit, imm, I64(0))
            outw, tag = I64(4), (INT32 if dtype == INT8 else FP32)
        elif kind == K_MXM and sub == X_ACC:
            have_w = mxm_acc(dtype, unit, imm % nacc, c, lanes, params[P_ROWS], params[P_COLS],
                             vheap, sl, lv, li, lf, xf, dot, weights, weights_at, pending,
                             pending_at, wmeta, wdec, acc, accbits, accf, outp)
            if not have_w:
                flag(found, I64(NO_WEIGHTS), unit, imm, I64(0))
            outw, tag = I64(4), (INT32 if dtype == INT8 else FP32)
        elif kind == K_SXM:
            m = imm if sub in (S_PERMUTE, S_DISTRIBUTE) else 0
            sxm(sub, issues[k, WA], imm, lanemaps[m], params[P_BLOCK], lanes, vheap, sl[0], outp)
            outw = issues[k, WC]
        elif kind == K_C2C:
            if sub == C_SEND:
                s = link_find(lk, ln, unit, imm, t)
                if s >= 0:
                    flag(found, I64(TWO_PRODUCERS), LINK + imm, pos, ln[s, LN_ISSUE])
            elif sub == C_RECEIVE:
                lsend = link_find(lk, ln, unit, imm, c)
                outw = issues[k, WC]
                if lsend < 0:
                    flag(found, I64(NO_VALUE), LINK + imm, pos, I64(0))
                for p in range(outw):
                    have = lsend >= 0 and p < ln[lsend, LN_W]
                    for lane in range(lanes):
                        outp[p, lane] = lnd[lsend, p, lane] if have else 0
        # ---- 5. two producers on the outputs; the violations in the contract's order ----
        sc = issues[k, SC]
        for i in range(outw):
            s = at(dtab, slots, rd, sc + i, pos, t)
            if s >= 0:
                flag(found, I64(TWO_PRODUCERS), sc + i, pos, slots[s, SL_ISSUE])
        for kd in _ORDER:
            if found[kd, 0]:
                i = regs[R_NVIOL]
                viol[i, 0], viol[i, 1], viol[i, 2] = kd, k, c
                viol[i, 3], viol[i, 4], viol[i, 5] = found[kd, 1], found[kd, 2], found[kd, 3]
                regs[R_NVIOL] = i + 1
                if trace:
                    ev_add(ev, regs, c, I64(EV_VIOL), k, kd, found[kd, 1], found[kd, 2],
                           found[kd, 3], I64(-1))
                if not lenient:
                    if regs[R_BN] > 0:
                        batch_finish(xb, yb, wdec, wmeta, bmeta, regs, acc, slots, vheap, evh,
                                     trace, rows, cols, lanes)
                    regs[R_K] = k
                    return ST_STOPPED
        # ---- 6. apply: place the outputs (reference Streams.place), then the op's effects ----
        for i in range(outw):
            code = sc + i
            d = diagonal(code, pos, t)
            h = code * rd + (d & (rd - 1))
            tref = heap_add(evh, regs, outp, i) if trace else I64(-1)
            if dtab[h, 0] != d:
                if dtab[h, 1] >= 0 and expiry(code, dtab[h, 0], positions) >= c:
                    regs[R_K] = k  # a live diagonal shares the bucket: rd was too small
                    return ST_FULL_DIAG
                dtab[h, 0], dtab[h, 1] = d, -1
            s = dtab[h, 1]
            while s >= 0 and slots[s, SL_POS] != pos:
                s = slots[s, SL_NEXT]
            replaced = s >= 0
            if not replaced:  # a new slot from the ring: its last occupant must have left
                s = regs[R_VPTR]
                if slots[s, SL_EXPIRE] >= c:
                    regs[R_K], regs[R_ERR] = k, nv
                    return ST_FULL_STREAMS
                regs[R_VPTR] = s + 1 if s + 1 < nv else 0
                slots[s, SL_POS], slots[s, SL_EXPIRE] = pos, expiry(code, d, positions)
                slots[s, SL_NEXT] = dtab[h, 1]
                dtab[h, 1] = s
            slots[s, SL_TAG], slots[s, SL_ISSUE], slots[s, SL_TREF] = tag, k, tref
            if batched:  # the value comes at the flush
                slots[s, SL_PEND] = 1
                bmeta[regs[R_BN], BM_SLOT + i] = s
                if i == 0:
                    bmeta[regs[R_BN], BM_TREF] = tref
            for lane in range(lanes):
                vheap[s, lane] = outp[i, lane]
            if trace:
                ev_add(ev, regs, t, I64(EV_PLACE), k, code, pos, tag,
                       I64(1) if replaced else I64(0), tref)
        status = I64(0)
        if kind == K_MEM:
            if sub in (M_READ, M_GATHER):
                banks[unit, bank, banks.shape[2] - 1] = c
                if trace:
                    ref = slots[sl[0, 0], SL_TREF] if sub == M_GATHER else I64(-1)
                    a = issues[k, ADDR] if sub == M_GATHER else issues[k, ADDR] % size
                    ev_add(ev, regs, c, I64(EV_SREAD), k, unit, bank, a, ref, regs[R_NEVH] - 1)
            elif sub == M_WRITE:
                status = push_write(pw, pwq, pwd, banks, regs, t, k, unit, bank,
                                    issues[k, ADDR] % size, I64(0), vheap, sl[0, 0], sl[0, 0],
                                    slots[sl[0, 0], SL_TREF], I64(-1))
            else:
                status = push_write(pw, pwq, pwd, banks, regs, t, k, unit, bank, issues[k, ADDR],
                                    I64(1), vheap, sl[1, 0], sl[0, 0], slots[sl[1, 0], SL_TREF],
                                    slots[sl[0, 0], SL_TREF])
        elif kind == K_MXM:
            if sub == X_LW:  # the load group's rows, row j from streams j*w .. j*w + w - 1
                r0, w = wbuf_rows[unit], WIDTH[dtype]
                for j in range(issues[k, WA] // w):
                    r = wbuf_rows[unit]
                    if r >= wbuf.shape[1]:
                        break
                    for p in range(wbuf.shape[2]):
                        row = wbuf[unit, r, p]
                        if p < w:  # the source row fetched once: the copy vectorises
                            src = vheap[sl[0, j * w + p]]
                            for lane in range(lanes):
                                row[lane] = src[lane]
                        else:
                            for lane in range(lanes):
                                row[lane] = 0
                    wbuf_rows[unit] = r + 1
                if trace:
                    ev_add(ev, regs, c, I64(EV_LW), k, unit,
                           r0 if r0 < wbuf.shape[1] else I64(-1), issues[k, WA],
                           wbuf_rows[unit] - r0, I64(-1))
            elif sub == X_IW or sub == X_IWT:  # noqa: SIM109 (numba: plain compares)
                land(weights, weights_at, pending, pending_at, wmeta, unit, c)
                if trace:
                    ev_add(ev, regs, c, I64(EV_IW), k, unit, t, wbuf_rows[unit], I64(0), I64(-1))
                install(wbuf[unit], pending[unit], sub == X_IWT, lanes, wbuf_rows[unit])
                for r in range(wbuf_rows[unit]):  # the rows past them are zero (install)
                    for p in range(wbuf.shape[2]):
                        for lane in range(lanes):
                            wbuf[unit, r, p, lane] = 0
                pending_at[unit] = t
                wbuf_rows[unit] = 0
                regs[R_VERCTR] += 1
                wmeta[unit, WM_PVER] = regs[R_VERCTR]
            elif sub == X_ABC:
                for lane in range(lanes):
                    acc[unit, imm % nacc, lane] = 0
                if trace:
                    ev_add(ev, regs, c, I64(EV_ABC), k, unit, imm % nacc, I64(0), I64(0), I64(-1))
            elif sub == X_ACC:
                land(weights, weights_at, pending, pending_at, wmeta, unit, c)
                if batched:
                    bmeta[regs[R_BN], BM_ACC], bmeta[regs[R_BN], BM_PLANE] = imm % nacc, unit
                    if wmeta[unit, WM_BVER] == 0:
                        wmeta[unit, WM_BVER] = wmeta[unit, WM_CVER] + 1
                    regs[R_BN] += 1
                    regs[R_NBACC] += 1
                else:
                    for lane in range(lanes):
                        acc[unit, imm % nacc, lane] = accbits[lane]
                if trace:
                    ev_add(ev, regs, c, I64(EV_ACC), k, unit, imm % nacc,
                           I64(1) if have_w else I64(0), I64(0), regs[R_NEVH] - 4)
        elif kind == K_C2C:
            if sub == C_SEND:
                if trace:
                    ev_add(ev, regs, c, I64(EV_SEND), k, unit, imm, t, issues[k, WA], I64(-1))
                status = link_put(lk, ln, lnd, regs, unit, imm, t, k, issues[k, WA], vheap, sl, c)
            elif sub == C_RECEIVE and trace:
                sender = ln[lsend, LN_ISSUE] if lsend >= 0 else I64(-1)
                ev_add(ev, regs, c, I64(EV_RECV), k, unit, imm, sender, I64(0), I64(-1))
        if status:
            regs[R_K] = k
            return status
        k += 1
    if regs[R_BN] > 0 and batch_flush(xb, yb, wdec, wmeta, bmeta, regs, acc, slots, vheap, evh,
                                      trace, rows, cols, lanes, bmin):
        regs[R_K] = n
        return ST_FLUSH
    if trace:
        pwn, scat = regs[R_PWN], regs[R_PWSCAT]
        if (regs[R_NEV] + 2 * pwn + (lanes + 1) * scat > ev.shape[0]
                or regs[R_NEVH] + pwn + lanes * scat > evh.shape[0]):
            regs[R_K] = n
            return ST_GROW_TRACE
    apply_writes(pw, pwq, pwd, sram, regs, ev, evh, trace, touched, I64(FOREVER))
    regs[R_K] = n
    return ST_DONE
