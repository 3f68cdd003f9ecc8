"""The jitted run loop of the fast core (the Python side is lpu_emu/core/fast.py).

One call runs many issues: `run_issues` loops over the Plan until it ends, a strict run stops, or
a buffer the Python side sized is full (then it returns a status and the issue to resume at; all
state lives in the arrays it was given, so the next call continues exactly there).

Streams are a lookup, not a simulation (ARCHITECTURE 2.3): every stream placement is a *slot*
(one row of the value heap `vheap` plus its position, tag, producer and expiry) linked into the
chain of its (stream code, diagonal) bucket. A reader at (q, u) hashes its own diagonal and walks
that chain for the nearest placement upstream. A placement leaves the chip when its diagonal does,
so its slot is recycled after that cycle: slots are handed out by a ring whose size fast.py
computes from the Plan (the most placements any window of max latency + chip width cycles makes),
so memory is bounded by the live values, never by the program's length. Every reuse checks that
the slot is dead; if a bound were ever too small the loop returns an error status, never a wrong
value.

The semantics mirror lpu_emu/core/reference.py (the definition) step for step; the comments name
the reference's functions. Tracing is a flag tested where an event would be recorded: the untraced
path pays one predictable branch per event site.
"""

from __future__ import annotations

import numpy as np

from lpu_emu.core.jit_ops import (
    BF16,
    FP8,
    FP16,
    FP32,
    INT8,
    INT32,
    V_ABS,
    V_ADD,
    V_ERF,
    V_EXP,
    V_MAX,
    V_MIN,
    V_MOV,
    V_MUL,
    V_NEG,
    V_RELU,
    V_RSQRT,
    V_SUB,
    V_TANH,
    WIDTH,
    convert,
    entry,
    decode_f32_bits,
    decode_lanes,
    encode_f32_bits,
    encode_floats,
    encode_ints,
    float_op,
    int_op,
    is_nan_bits,
    nan_rule,
    njit,
    tiny,
)

# ---- Plan columns and violation kinds: frozen copies (numba compiles globals as constants);
# fast.py checks them against lpu_emu.core.plan at import ----
CYCLE, SRC, OP, DTYPE, DTYPE2, QUEUE, POS, UNIT = range(8)
SA, SB, SC, WA, WB, WC = range(8, 14)
BANK, ADDR, IMM, LAT, OCC = range(14, 19)
VIOL, VIOL_A, VIOL_B = range(19, 22)
NO_VALUE, TWO_PRODUCERS, BANK_CONFLICT, WRONG_DTYPE, NO_WEIGHTS, ADDRESS, QUEUE_BUSY, SYNC = range(1, 9)
LINK = 128  # coordinate offset marking a C2C link (reference.LINK)

# ---- internal op codes: kind * 32 + sub (fast.py maps ISA opcodes to these by mnemonic) ----
K_ICU, K_MEM, K_VXM, K_MXM, K_SXM, K_C2C = range(6)
M_READ, M_WRITE, M_GATHER, M_SCATTER = range(4)
# VXM subs: 0..12 are the jit_ops V_* ALU ops; then the immediate forms and Cvt
X_ADDI, X_MULI, X_MAXI, X_MINI, X_CVT = 13, 14, 15, 16, 17
X_LW, X_IW, X_ABC, X_ACC = range(4)
S_SHIFTUP, S_SHIFTDOWN, S_ROTATE, S_PERMUTE, S_DISTRIBUTE, S_TRANSPOSE = range(6)
C_DESKEW, C_SEND, C_RECEIVE = range(3)

# ---- params (int64 array, read only) ----
P_LANES, P_POSITIONS, P_RD, P_NV, P_RW, P_RL, P_NL, P_MEMSIZE = range(8)
P_ROWS, P_COLS, P_NACC, P_BLOCK, P_LENIENT, P_TRACE, P_NANMODE, P_BANKS = range(8, 16)
NPARAMS = 16
# ---- regs (int64 array, the loop's scalar state; survives between calls) ----
R_K, R_VPTR, R_LPTR, R_PWN, R_PWSCAT, R_NVIOL, R_NEV, R_NEVH, R_VERCTR, R_ERR = range(10)
NREGS = 10
# ---- status codes ----
ST_DONE, ST_STOPPED, ST_GROW_VIOL, ST_GROW_TRACE = 0, 1, 2, 3
ST_FULL_STREAMS, ST_FULL_DIAG, ST_FULL_WRITES, ST_FULL_LINKS, ST_BAD_OP = 10, 11, 12, 13, 14

# ---- event kinds (frozen copies of lpu_emu.core.events; checked at import by fast.py) ----
EV_ISSUE, EV_TAKE, EV_PLACE, EV_SREAD, EV_SWRITE, EV_INIT = 1, 2, 3, 4, 5, 6
EV_LW, EV_IW, EV_ABC, EV_ACC, EV_SEND, EV_RECV, EV_VIOL = 7, 8, 9, 10, 11, 12, 13

_ORDER = (NO_VALUE, WRONG_DTYPE, ADDRESS, BANK_CONFLICT, NO_WEIGHTS, TWO_PRODUCERS)
_NEVER = -(1 << 62)
_FOREVER = 1 << 62
I64 = np.int64  # wraps constant arguments: numba compiles a callee once per literal value


# ---------------------------------------------------------------------------------------------
# copies as loops: a numba slice assignment between arrays compiles ~0.4 s of broadcast code
# ---------------------------------------------------------------------------------------------
@njit
def copy_row(dst, src):
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@njit
def copy_planes(dst, src):
    for r in range(dst.shape[0]):
        for p in range(dst.shape[1]):
            copy_row(dst[r, p], src[r, p])


# ---------------------------------------------------------------------------------------------
# trace records
# ---------------------------------------------------------------------------------------------
@njit
def ev_add(tr, regs, cycle, kind, issue, a, b, c, d, ref):
    ev = tr[0]
    i = regs[R_NEV]
    ev[i, 0], ev[i, 1], ev[i, 2], ev[i, 3] = cycle, kind, issue, a
    ev[i, 4], ev[i, 5], ev[i, 6], ev[i, 7] = b, c, d, ref
    regs[R_NEV] = i + 1


@njit
def heap_add(tr, regs, row):
    """Copy a 320-byte row into the trace's value heap; returns its index."""
    evh = tr[1]
    i = regs[R_NEVH]
    copy_row(evh[i], row)
    regs[R_NEVH] = i + 1
    return i


# ---------------------------------------------------------------------------------------------
# violations of the current issue (reference: Interpreter.flag / execute)
# ---------------------------------------------------------------------------------------------
@njit
def flag(found, kind, a, b, c):
    if found[kind, 0] == 0:
        found[kind, 0], found[kind, 1], found[kind, 2], found[kind, 3] = 1, a, b, c


@njit
def record(viol, regs, tr, trace, kind, k, cycle, a, b, c):
    i = regs[R_NVIOL]
    viol[i, 0], viol[i, 1], viol[i, 2], viol[i, 3], viol[i, 4], viol[i, 5] = kind, k, cycle, a, b, c
    regs[R_NVIOL] = i + 1
    if trace:
        ev_add(tr, regs, cycle, I64(EV_VIOL), k, kind, a, b, c, I64(-1))


# ---------------------------------------------------------------------------------------------
# streams (reference: Streams)
# ---------------------------------------------------------------------------------------------
@njit
def diagonal(code, pos, cycle):
    return pos + cycle if code & 64 else pos - cycle


@njit
def expiry(code, diag, positions):
    """The last cycle a diagonal is on the chip (west: reaches position 0; east: the last)."""
    return diag if code & 64 else positions - 1 - diag


@njit
def look(st, params, code, q, u):
    """The slot a reader at (q, u) sees on stream `code`: the nearest placement upstream on its
    diagonal (largest p <= q east, smallest p >= q west), or -1."""
    dkey, dhead, s_pos, s_next = st[0], st[1], st[3], st[6]
    rd = params[P_RD]
    d = diagonal(code, q, u)
    h = code * rd + (d & (rd - 1))
    if dkey[h] != d:
        return -1
    west = code & 64
    best, bp = -1, 0
    s = dhead[h]
    while s >= 0:
        p = s_pos[s]
        if west:
            if p >= q and (best < 0 or p < bp):
                best, bp = s, p
        elif p <= q and (best < 0 or p > bp):
            best, bp = s, p
        s = s_next[s]
    return best


@njit
def at(st, params, code, pos, t):
    """The slot placed exactly at (pos, t) on stream `code`, or -1."""
    dkey, dhead, s_pos, s_next = st[0], st[1], st[3], st[6]
    rd = params[P_RD]
    d = diagonal(code, pos, t)
    h = code * rd + (d & (rd - 1))
    if dkey[h] != d:
        return -1
    s = dhead[h]
    while s >= 0:
        if s_pos[s] == pos:
            return s
        s = s_next[s]
    return -1


@njit
def place(st, params, regs, tr, trace, code, pos, t, k, tag, row, c):
    """Place `row` on stream `code` at (pos, t) by issue k (the later producer replaces one at
    the same place and cycle). Returns 0, or an ST_FULL_* status if a bound was too small."""
    dkey, dhead, vheap, s_pos, s_tag, s_issue, s_next, s_expire, s_tref = st
    rd, nv = params[P_RD], params[P_NV]
    d = diagonal(code, pos, t)
    h = code * rd + (d & (rd - 1))
    tref = heap_add(tr, regs, row) if trace else -1
    if dkey[h] != d:
        if dhead[h] >= 0 and expiry(code, dkey[h], params[P_POSITIONS]) >= c:
            return ST_FULL_DIAG  # a live diagonal shares the bucket: never happens if rd is right
        dkey[h] = d
        dhead[h] = -1
    s = dhead[h]
    while s >= 0:
        if s_pos[s] == pos:
            copy_row(vheap[s], row)
            s_tag[s], s_issue[s], s_tref[s] = tag, k, tref
            if trace:
                ev_add(tr, regs, t, I64(EV_PLACE), k, code, pos, tag, I64(1), tref)
            return 0
        s = s_next[s]
    s = regs[R_VPTR]
    if s_expire[s] >= c:
        regs[R_ERR] = nv
        return ST_FULL_STREAMS
    regs[R_VPTR] = s + 1 if s + 1 < nv else 0
    copy_row(vheap[s], row)
    s_pos[s], s_tag[s], s_issue[s], s_tref[s] = pos, tag, k, tref
    s_expire[s] = expiry(code, d, params[P_POSITIONS])
    s_next[s] = dhead[h]
    dhead[h] = s
    if trace:
        ev_add(tr, regs, t, I64(EV_PLACE), k, code, pos, tag, I64(0), tref)
    return 0


@njit
def read_group(st, params, regs, tr, trace, found, k, code, w, pos, c, tag, sl):
    """Slots of an input stream group at (pos, c) into sl[0..w-1] (the zero row where nothing
    passes); flags no-value and wrong-dtype as reference.Interpreter.read_group does."""
    s_tag, s_pos, s_tref = st[4], st[3], st[8]
    zero = params[P_NV]
    for i in range(w):
        s = look(st, params, code + i, pos, c)
        if s < 0:
            flag(found, I64(NO_VALUE), code + i, pos, I64(0))
            sl[i] = zero
            if trace:
                ev_add(tr, regs, c, I64(EV_TAKE), k, code + i, pos, I64(-1), I64(0), I64(-1))
            continue
        if s_tag[s] != tag:
            flag(found, I64(WRONG_DTYPE), code + i, s_tag[s], pos)
        sl[i] = s
        if trace:
            ev_add(tr, regs, c, I64(EV_TAKE), k, code + i, pos, s_pos[s], s_tag[s], s_tref[s])


# ---------------------------------------------------------------------------------------------
# SRAM writes (reference: PendingWrite, apply_writes, check_*_bank)
# ---------------------------------------------------------------------------------------------
@njit
def push_write(wr, params, regs, commit, k, unit, bank, addr, scat, data, idx, dref, iref):
    (pw_commit, pw_issue, pw_unit, pw_bank, pw_addr, pw_scat, pw_data, pw_idx, pw_ref,
     pw_act, pw_free, wstamp, rstamp) = wr
    n = regs[R_PWN]
    if n >= pw_act.shape[0]:
        return ST_FULL_WRITES
    slot = pw_free[pw_free.shape[0] - 1 - n]  # the free stack shrinks from the top
    pw_commit[slot], pw_issue[slot], pw_unit[slot], pw_bank[slot] = commit, k, unit, bank
    pw_addr[slot], pw_scat[slot] = addr, scat
    copy_row(pw_data[slot], data)
    if scat:
        copy_row(pw_idx[slot], idx)
        regs[R_PWSCAT] += 1
    pw_ref[slot, 0], pw_ref[slot, 1] = dref, iref
    j = n
    while j > 0 and pw_commit[pw_act[j - 1]] > commit:
        pw_act[j] = pw_act[j - 1]
        j -= 1
    pw_act[j] = slot
    regs[R_PWN] = n + 1
    wstamp[unit, bank, commit & (wstamp.shape[2] - 1)] = commit
    return 0


@njit
def apply_writes(wr, sram, params, regs, tr, trace, touched, before):
    """Commit pending writes landing before `before` (all if `everything`) in (commit, issue)
    order (before = _FOREVER: all of them)."""
    (pw_commit, pw_issue, pw_unit, pw_bank, pw_addr, pw_scat, pw_data, pw_idx, pw_ref,
     pw_act, pw_free, wstamp, rstamp) = wr
    n = regs[R_PWN]
    done = 0
    lanes, size = params[P_LANES], params[P_MEMSIZE]
    banks = sram.shape[1]
    while done < n:
        slot = pw_act[done]
        commit = pw_commit[slot]
        if commit >= before:
            break
        u, b, base = pw_unit[slot], pw_bank[slot], pw_addr[slot]
        if pw_scat[slot]:
            for lane in range(lanes):
                a = (base + np.int64(pw_idx[slot, lane])) % size
                if trace:
                    row = (u * banks + b) * size + a
                    if touched[row] == 0:
                        touched[row] = 1
                        ref = heap_add(tr, regs, sram[u, b, a])
                        ev_add(tr, regs, commit, I64(EV_INIT), pw_issue[slot], u, b, a, I64(0), ref)
                sram[u, b, a, lane] = pw_data[slot, lane]
            regs[R_PWSCAT] -= 1
        else:
            if trace:
                row = (u * banks + b) * size + base
                if touched[row] == 0:
                    touched[row] = 1
                    ref = heap_add(tr, regs, sram[u, b, base])
                    ev_add(tr, regs, commit, I64(EV_INIT), pw_issue[slot], u, b, base, I64(0), ref)
            copy_row(sram[u, b, base], pw_data[slot])
        if trace:
            ev_add(tr, regs, commit, I64(EV_SWRITE), pw_issue[slot], u, b, base, pw_ref[slot, 1],
                   pw_ref[slot, 0])
        done += 1
    if done:
        cap = pw_free.shape[0]  # free slots are pw_free[0 : cap - n]; push the applied ones
        for j in range(done):
            pw_free[cap - n + j] = pw_act[j]
        for j in range(n - done):
            pw_act[j] = pw_act[j + done]
        regs[R_PWN] = n - done


@njit
def pending_at(wr, unit, bank, commit):
    """True if a pending write lands on (unit, bank) at `commit`."""
    wstamp = wr[11]
    return wstamp[unit, bank, commit & (wstamp.shape[2] - 1)] == commit


# ---------------------------------------------------------------------------------------------
# MXM (reference: ops/mxm.py)
# ---------------------------------------------------------------------------------------------
@njit
def land(mach, mx, plane, cycle):
    """A pending install whose cycle has come becomes the installed weights."""
    weights, weights_at, pending, pending_at = mach[4], mach[5], mach[6], mach[7]
    wver = mx[0]
    if 0 <= pending_at[plane] <= cycle:
        copy_planes(weights[plane], pending[plane])
        weights_at[plane] = pending_at[plane]
        pending_at[plane] = -1
        wver[plane, 0] = wver[plane, 1]


@njit
def weights_for(mach, mx, params, plane, cycle, dtype):
    """The decoded [rows, lanes] fp32 weights an ACC at `cycle` uses (cached per install and
    dtype), and whether there are any (no: zeros, a no-weights violation)."""
    weights, weights_at, pending, pending_at = mach[4], mach[5], mach[6], mach[7]
    wver, wdec, wkey = mx
    if 0 <= pending_at[plane] <= cycle:
        raw, ver = pending, wver[plane, 1]
    elif weights_at[plane] >= 0:
        raw, ver = weights, wver[plane, 0]
    else:
        raw, ver = weights, 0
    dec = wdec[plane]
    if wkey[plane, 0] != ver or wkey[plane, 1] != dtype:
        rows, lanes = params[P_ROWS], params[P_LANES]
        if ver == 0:
            dec[:, :] = 0
        else:
            f = dec
            for r in range(rows):
                for lane in range(lanes):
                    b = np.int64(raw[plane, r, 0, lane])
                    if dtype == INT8:
                        f[r, lane] = np.float32(b - ((b & 0x80) << 1))
                    else:
                        if WIDTH[dtype] == 2:
                            b |= np.int64(raw[plane, r, 1, lane]) << 8
                        f[r, lane] = np.uint32(decode_f32_bits(b, dtype)).view(np.float32)
        wkey[plane, 0], wkey[plane, 1] = ver, dtype
    return dec, ver != 0


@njit
def acc_compute(accbits, xf, w, rows, cols, is_int, out):
    """out = the accumulator after acc_j += sum_k x[k] * W[k, j] (reference mxm.acc): int8 in
    exact integers (the fp32 loop is exact: |sum| < 2^24), floats in fp32 k ascending, one
    rounding per step, NaNs as numpy makes them."""
    lanes = accbits.shape[0]
    for j in range(lanes):
        out[j] = accbits[j]
    if is_int:
        dot = np.zeros(cols, dtype=np.float32)
        for k in range(rows):
            xk = xf[k]
            if xk != 0:
                for j in range(cols):
                    dot[j] += xk * w[k, j]
        for j in range(cols):
            v = np.int64(np.int32(accbits[j])) + np.int64(dot[j])
            out[j] = np.uint32(v & 0xFFFFFFFF)
        return
    a = out.view(np.float32)
    for k in range(rows):
        xk = xf[k]
        for j in range(cols):
            a[j] = a[j] + xk * w[k, j]
    nans = 0
    for j in range(cols):
        nans += a[j] != a[j]
    if nans:  # replay NaN lanes with numpy's NaN rules (the fast loop may pick another payload)
        xb = xf.view(np.uint32)
        wb = w.view(np.uint32)
        for j in range(cols):
            if a[j] == a[j]:
                continue
            s = np.uint32(accbits[j]).view(np.float32)
            for k in range(rows):
                p = xf[k] * w[k, j]
                if p != p:
                    p = np.uint32(nan_rule(np.int64(xb[k]), np.int64(wb[k, j]),
                                           np.int64(np.float32(p).view(np.uint32)))).view(np.float32)
                r = s + p
                if r != r:
                    r = np.uint32(nan_rule(np.int64(np.float32(s).view(np.uint32)),
                                           np.int64(np.float32(p).view(np.uint32)),
                                           np.int64(np.float32(r).view(np.uint32)))).view(np.float32)
                s = r
            a[j] = s


# ---------------------------------------------------------------------------------------------
# C2C links (reference: op_send / op_receive; a link is a delay line keyed by arrival cycle)
# ---------------------------------------------------------------------------------------------
@njit
def link_find(ln, edge, link, t):
    lkey, lhead, l_edge, l_link, l_next = ln[0], ln[1], ln[3], ln[4], ln[7]
    rl = lkey.shape[0]
    h = t & (rl - 1)
    if lkey[h] != t:
        return -1
    s = lhead[h]
    while s >= 0:
        if l_edge[s] == edge and l_link[s] == link:
            return s
        s = l_next[s]
    return -1


@njit
def link_put(ln, params, regs, edge, link, t, k, w, vheap, sl, c):
    """A Send's vector arrives at (edge, link) at t; the later Send replaces an earlier one."""
    lkey, lhead, l_arr, l_edge, l_link, l_issue, l_w, l_next, l_data = ln
    rl, nl = lkey.shape[0], params[P_NL]
    h = t & (rl - 1)
    if lkey[h] != t:
        if lhead[h] >= 0 and lkey[h] >= c:
            return ST_FULL_LINKS
        lkey[h] = t
        lhead[h] = -1
    s = link_find(ln, edge, link, t)
    if s < 0:
        s = regs[R_LPTR]
        if l_arr[s] >= c:
            return ST_FULL_LINKS
        regs[R_LPTR] = s + 1 if s + 1 < nl else 0
        l_arr[s], l_edge[s], l_link[s] = t, edge, link
        l_next[s] = lhead[h]
        lhead[h] = s
    l_issue[s], l_w[s] = k, w
    for p in range(w):
        copy_row(l_data[s, p], vheap[sl[p]])
    return 0


# ---------------------------------------------------------------------------------------------
# one issue (reference: Interpreter.execute and the op_* handlers)
# ---------------------------------------------------------------------------------------------
@njit
def check_read_bank(wr, found, unit, bank, c):
    if pending_at(wr, unit, bank, c) or wr[12][unit, bank] == c:
        flag(found, I64(BANK_CONFLICT), unit, bank, c)


@njit
def lane_addresses(issues, k, params, found, index_row, addrs):
    """base + index per lane (index unsigned); an address violation on the first lane outside
    the bank unless the plan flagged the base itself; then the lenient modulo."""
    base, size = issues[k, ADDR], params[P_MEMSIZE]
    for lane in range(params[P_LANES]):
        a = base + np.int64(index_row[lane])
        if (a < 0 or a >= size) and issues[k, VIOL] != ADDRESS:
            flag(found, I64(ADDRESS), a, issues[k, BANK], lane)
        addrs[lane] = a % size


@njit
def imm_lanes(issues, k, dtype, lanes, iv, fb):
    """The IMM operand on every lane, rounded into the dtype (reference Interpreter.imm)."""
    bits = issues[k, IMM] & 0xFFFFFFFF
    if dtype == INT8 or dtype == INT32:
        v = bits - ((bits & 0x80000000) << 1)
        if dtype == INT8:
            v = (v & 0xFF) - ((v & 0x80) << 1)
        for lane in range(lanes):
            iv[lane] = v
    else:
        b = decode_f32_bits(encode_f32_bits(bits, dtype), dtype)
        for lane in range(lanes):
            fb[lane] = b


@njit
def vxm(issues, k, sub, dtype, params, vheap, z):
    """A VXM ALU op on the slots already read into z; returns the output dtype (planes in z)."""
    sl_a, sl_b, iv_x, iv_y, iv_r, fb_x, fb_y, fb_r, outp = z[0], z[1], z[2], z[3], z[4], z[5], z[6], z[7], z[8]
    lanes = params[P_LANES]
    decode_lanes(vheap, sl_a, dtype, lanes, iv_x, fb_x)
    is_int = dtype == INT8 or dtype == INT32
    if sub == X_CVT:
        d2 = issues[k, DTYPE2]
        convert(dtype, d2, iv_x, fb_x, lanes)
        if d2 == INT8 or d2 == INT32:
            encode_ints(iv_x, d2, lanes, outp)
        else:
            encode_floats(fb_x, d2, lanes, outp)
        return d2
    if sub <= V_MIN:
        decode_lanes(vheap, sl_b, dtype, lanes, iv_y, fb_y)
        vop = sub
    elif sub >= X_ADDI:
        imm_lanes(issues, k, dtype, lanes, iv_y, fb_y)
        vop = V_ADD if sub == X_ADDI else (V_MUL if sub == X_MULI else (V_MAX if sub == X_MAXI else V_MIN))
    else:
        vop = sub
    if is_int:
        int_op(vop, iv_x, iv_y, iv_r, lanes)
        encode_ints(iv_r, dtype, lanes, outp)
    else:
        float_op(vop, fb_x, fb_y, fb_r, lanes, params[P_NANMODE])
        encode_floats(fb_r, dtype, lanes, outp)
    return dtype


@njit
def sxm(sub, w, n, lanemap, block, lanes, vheap, sl, outp):
    """Lane movement on w byte planes (an element's planes move together)."""
    if sub == S_TRANSPOSE:  # reference sxm.transpose: [j, k, i] -> [i, k, j], flattened
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
def execute(k, c, issues, opmap, params, regs, found, mach, st, wr, ln, mx, tr, touched, viol, z):
    """Check and run issue k at cycle c; 0, ST_STOPPED (strict, nothing of k applied) or an
    error status."""
    sram, lanemaps, wbuf, wbuf_rows, acc = mach[0], mach[1], mach[2], mach[3], mach[8]
    sl_a, sl_b, outp, accbits, xf, addrs = z[0], z[1], z[8], z[9], z[10], z[11]
    iv_x, fb_x = z[2], z[5]
    vheap, s_issue, s_tref = st[2], st[5], st[8]
    trace = params[P_TRACE] != 0
    lanes, size = params[P_LANES], params[P_MEMSIZE]
    for kind in range(1, 9):
        found[kind, 0] = 0
    opc = issues[k, OP]
    op = opmap[opc & 255]
    if op < 0:
        regs[R_ERR] = opc
        return ST_BAD_OP
    kind, sub = op >> 5, op & 31
    pos, lat, dtype = issues[k, POS], issues[k, LAT], issues[k, DTYPE]
    unit, bank, imm = issues[k, UNIT], issues[k, BANK], issues[k, IMM]
    sa, sb, wa, wb = issues[k, SA], issues[k, SB], issues[k, WA], issues[k, WB]
    outw, tag = 0, dtype
    have_w = True
    # ---- compute (nothing of the machine changes yet) ----
    if kind == K_MEM:
        if sub == M_READ:
            check_read_bank(wr, found, unit, bank, c)
            copy_row(outp[0], sram[unit, bank, issues[k, ADDR] % size])
            outw = 1
        elif sub == M_GATHER:
            read_group(st, params, regs, tr, trace, found, k, sa, wa, pos, c, dtype, sl_a)
            lane_addresses(issues, k, params, found, vheap[sl_a[0]], addrs)
            check_read_bank(wr, found, unit, bank, c)
            for lane in range(lanes):
                outp[0, lane] = sram[unit, bank, addrs[lane], lane]
            outw = 1
        else:
            read_group(st, params, regs, tr, trace, found, k, sa, wa, pos, c, dtype, sl_a)
            if sub == M_SCATTER:
                read_group(st, params, regs, tr, trace, found, k, sb, wb, pos, c, dtype, sl_b)
                lane_addresses(issues, k, params, found, vheap[sl_a[0]], addrs)
            if pending_at(wr, unit, bank, c + lat):
                flag(found, I64(BANK_CONFLICT), unit, bank, c + lat)
    elif kind == K_VXM:
        read_group(st, params, regs, tr, trace, found, k, sa, wa, pos, c, dtype, sl_a)
        if sub <= V_MIN:
            read_group(st, params, regs, tr, trace, found, k, sb, wb, pos, c, dtype, sl_b)
        tag = vxm(issues, k, sub, dtype, params, vheap, z)
        outw = issues[k, WC]
    elif kind == K_MXM:
        if sub == X_LW or sub == X_ACC:
            read_group(st, params, regs, tr, trace, found, k, sa, wa, pos, c, dtype, sl_a)
        if sub == X_ACC:
            decode_lanes(vheap, sl_a, dtype, lanes, iv_x, fb_x)
            fx = fb_x.view(np.float32)
            for lane in range(lanes):
                xf[lane] = np.float32(iv_x[lane]) if dtype == INT8 else fx[lane]
            w, have_w = weights_for(mach, mx, params, unit, c, dtype)
            if not have_w:
                flag(found, I64(NO_WEIGHTS), unit, imm, I64(0))
            a = imm % params[P_NACC]
            acc_compute(acc[unit, a], xf, w, params[P_ROWS], params[P_COLS], dtype == INT8, accbits)
            for p in range(4):
                for lane in range(lanes):
                    outp[p, lane] = (accbits[lane] >> (8 * p)) & 0xFF
            outw = 4
            tag = INT32 if dtype == INT8 else FP32
    elif kind == K_SXM:
        read_group(st, params, regs, tr, trace, found, k, sa, wa, pos, c, dtype, sl_a)
        sxm(sub, wa, imm, lanemaps[imm if sub == S_PERMUTE or sub == S_DISTRIBUTE else 0],
            params[P_BLOCK], lanes, vheap, sl_a, outp)
        outw = issues[k, WC]
    elif kind == K_C2C:
        if sub == C_SEND:
            read_group(st, params, regs, tr, trace, found, k, sa, wa, pos, c, dtype, sl_a)
            s = link_find(ln, unit, imm, c + lat)
            if s >= 0:
                flag(found, I64(TWO_PRODUCERS), LINK + imm, pos, ln[5][s])
        elif sub == C_RECEIVE:
            s = link_find(ln, unit, imm, c)
            outw = issues[k, WC]
            if s < 0:
                flag(found, I64(NO_VALUE), LINK + imm, pos, I64(0))
            for p in range(outw):
                if s >= 0 and p < ln[6][s]:
                    copy_row(outp[p], ln[8][s, p])
                else:
                    outp[p, :] = 0
            if trace:
                ev_add(tr, regs, c, I64(EV_RECV), k, unit, imm, ln[5][s] if s >= 0 else I64(-1),
                       I64(0), I64(-1))
    # ---- two producers on the outputs, then the violations in the contract's order ----
    sc, t = issues[k, SC], c + lat
    for i in range(outw):
        s = at(st, params, sc + i, pos, t)
        if s >= 0:
            flag(found, I64(TWO_PRODUCERS), sc + i, pos, s_issue[s])
    for kd in _ORDER:
        if found[kd, 0]:
            record(viol, regs, tr, trace, kd, k, c, found[kd, 1], found[kd, 2], found[kd, 3])
            if params[P_LENIENT] == 0:
                return ST_STOPPED
    # ---- apply: outputs, then the op's effects ----
    for i in range(outw):
        status = place(st, params, regs, tr, trace, sc + i, pos, t, k, tag, outp[i], c)
        if status:
            return status
    if kind == K_MEM:
        if sub == M_READ or sub == M_GATHER:
            wr[12][unit, bank] = c
            if trace:
                iref = s_tref[sl_a[0]] if sub == M_GATHER else -1
                ev_add(tr, regs, c, I64(EV_SREAD), k, unit, bank, issues[k, ADDR] if sub == M_GATHER
                       else issues[k, ADDR] % size, iref, regs[R_NEVH] - 1)
        elif sub == M_WRITE:
            return push_write(wr, params, regs, t, k, unit, bank, issues[k, ADDR] % size, I64(0),
                              vheap[sl_a[0]], vheap[sl_a[0]], s_tref[sl_a[0]], I64(-1))
        else:
            return push_write(wr, params, regs, t, k, unit, bank, issues[k, ADDR], I64(1),
                              vheap[sl_b[0]], vheap[sl_a[0]], s_tref[sl_b[0]], s_tref[sl_a[0]])
    elif kind == K_MXM:
        return mxm_apply(k, c, sub, unit, imm, lat, wa, params, regs, mach, mx, tr, trace,
                         vheap, sl_a, accbits, have_w)
    elif kind == K_C2C and sub == C_SEND:
        if trace:
            ev_add(tr, regs, c, I64(EV_SEND), k, unit, imm, t, wa, I64(-1))
        return link_put(ln, params, regs, unit, imm, t, k, wa, vheap, sl_a, c)
    return 0


@njit
def mxm_apply(k, c, sub, plane, imm, lat, w, params, regs, mach, mx, tr, trace, vheap, sl,
              accbits, have_w):
    wbuf, wbuf_rows, pending, pending_at, acc = mach[2], mach[3], mach[6], mach[7], mach[8]
    if sub == X_LW:
        r = wbuf_rows[plane]
        if r < wbuf.shape[1]:
            wbuf[plane, r, :, :] = 0
            for p in range(w):
                copy_row(wbuf[plane, r, p], vheap[sl[p]])
            wbuf_rows[plane] = r + 1
        if trace:
            ev_add(tr, regs, c, I64(EV_LW), k, plane, r if r < wbuf.shape[1] else I64(-1), w, I64(0),
                   I64(-1))
    elif sub == X_IW:
        land(mach, mx, plane, c)
        if trace:
            ev_add(tr, regs, c, I64(EV_IW), k, plane, c + lat, wbuf_rows[plane], I64(0), I64(-1))
        copy_planes(pending[plane], wbuf[plane])
        pending_at[plane] = c + lat
        wbuf[plane, :, :, :] = 0
        wbuf_rows[plane] = 0
        regs[R_VERCTR] += 1
        mx[0][plane, 1] = regs[R_VERCTR]
    elif sub == X_ABC:
        acc[plane, imm % params[P_NACC], :] = 0
        if trace:
            ev_add(tr, regs, c, I64(EV_ABC), k, plane, imm % params[P_NACC], I64(0), I64(0),
                   I64(-1))
    elif sub == X_ACC:
        land(mach, mx, plane, c)
        a = imm % params[P_NACC]
        copy_row(acc[plane, a], accbits)
        if trace:
            ev_add(tr, regs, c, I64(EV_ACC), k, plane, a, I64(1) if have_w else I64(0), I64(0),
                   regs[R_NEVH] - 4)
    return 0


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
@entry
def run_issues(issues, opmap, params, regs, found, mach, st, wr, ln, mx, tr, touched, viol, z):
    """Run issues from regs[R_K] on; returns a status (regs[R_K]: where it stopped or resumes)."""
    n = issues.shape[0]
    trace = params[P_TRACE] != 0
    lanes = params[P_LANES]
    sram = mach[0]
    k = regs[R_K]
    while k < n:
        c = issues[k, CYCLE]
        if regs[R_NVIOL] + 8 > viol.shape[0]:
            regs[R_K] = k
            return ST_GROW_VIOL
        if trace:
            width = issues[k, WA] + issues[k, WB] + issues[k, WC]
            need_ev = 24 + width + 2 * regs[R_PWN] + lanes * regs[R_PWSCAT]
            need_rows = 8 + width + regs[R_PWN] + lanes * regs[R_PWSCAT]
            if regs[R_NEV] + need_ev > tr[0].shape[0] or regs[R_NEVH] + need_rows > tr[1].shape[0]:
                regs[R_K] = k
                return ST_GROW_TRACE
            ev_add(tr, regs, c, I64(EV_ISSUE), k, issues[k, QUEUE], issues[k, OP],
                   issues[k, DTYPE], I64(0), I64(-1))
        v = issues[k, VIOL]
        if v:
            record(viol, regs, tr, trace, v, k, c, issues[k, VIOL_A], issues[k, VIOL_B],
                   -1 if v == ADDRESS else 0)
            if params[P_LENIENT] == 0:
                regs[R_K] = k
                return ST_STOPPED
        apply_writes(wr, sram, params, regs, tr, trace, touched, c)
        status = execute(k, c, issues, opmap, params, regs, found, mach, st, wr, ln, mx, tr,
                         touched, viol, z)
        if status:
            regs[R_K] = k
            return status
        k += 1
    if trace:
        need = 8 + 2 * regs[R_PWN] + lanes * regs[R_PWSCAT]
        if regs[R_NEV] + need > tr[0].shape[0] or regs[R_NEVH] + need > tr[1].shape[0]:
            regs[R_K] = n
            return ST_GROW_TRACE
    forever = I64(_FOREVER)
    apply_writes(wr, sram, params, regs, tr, trace, touched, forever)
    regs[R_K] = n
    return ST_DONE
