"""Plan: a Program decoded for a chip into one flat int64 table of issues, sorted by cycle.

Both cores (the numba one and the reference interpreter) run the same Plan, so everything that
is a pure function of the schedule is computed once, here: Repeat expansion, resolved latencies
and positions, and the static schedule checks (a queue issuing while busy or parked at Sync,
a Sync no Notify releases, an SRAM address outside the slice). The cores add the dynamic ones
(streams, banks, dtypes, weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpu_emu.core.decode import Fields, check_data, decode_program, slice_units
from lpu_emu.errors import LoadError, UsageError
from lpu_emu.program import Program
from lpu_emu.spec import Chip, Isa
from lpu_emu.spec.isa import ACC_DTYPE, PAIRED_WIDTH

# ---- columns of Plan.issues ----
CYCLE, SRC, OP, DTYPE, DTYPE2, QUEUE, POS, UNIT = range(8)
SA, SB, SC, WA, WB, WC = range(8, 14)  # stream codes (-1: unused) and group widths (0: unused)
BANK, ADDR, IMM, LAT, OCC = range(14, 19)
VIOL, VIOL_A, VIOL_B = range(19, 22)  # static violation on this issue (0: none) and its details
NCOL = 22

# ---- violation kinds (shared by plan, cores and messages) ----
(NO_VALUE, TWO_PRODUCERS, BANK_CONFLICT, WRONG_DTYPE, NO_WEIGHTS, ADDRESS, QUEUE_BUSY,
 SYNC, MXM_PAIR) = range(1, 10)
VIOLATION_NAMES = {
    NO_VALUE: "no-value", TWO_PRODUCERS: "two-producers", BANK_CONFLICT: "bank-conflict",
    WRONG_DTYPE: "wrong-dtype", NO_WEIGHTS: "no-weights", ADDRESS: "address",
    QUEUE_BUSY: "queue-busy", SYNC: "sync", MXM_PAIR: "mxm-pair",
}
# QUEUE_BUSY details: VIOL_A = the cycle the unit is free, VIOL_B = 0 busy / 1 parked at Sync
# ADDRESS details: VIOL_A = the address, VIOL_B = the bank
# SYNC details: none
# MXM_PAIR details: VIOL_A = -1: an fp16/bf16 ACC on a plane that is not the even plane of a pair;
#   else the cycle the pair is free and VIOL_B = the queue of the other issue holding it

# The most issues a Plan may hold unless the caller raises it (CLI: --max-issues): 20 million
# issues are 3.3 GiB of Plan, well above the 10^5..10^6 instructions (and about as many issues) a
# compiled model takes, and far below what a small file with large Repeats could ask for.
DEFAULT_MAX_ISSUES = 20_000_000


@dataclass(frozen=True, eq=False)
class Plan:
    issues: np.ndarray  # int64[n, NCOL], sorted by (cycle, program order, repetition)
    cycles: int  # the cycle the last effect lands (if nothing stops the run)
    program: Program
    chip: Chip

    def __len__(self) -> int:
        return len(self.issues)


def check_limits(cycles: int, issues: int, max_cycles: int | None, max_issues: int) -> None:
    """Refuse, before expanding anything, a schedule longer or a Plan larger than allowed."""
    if max_cycles is not None and cycles > max_cycles:
        raise UsageError(f"the program runs {cycles} cycles, more than max_cycles "
                         f"{max_cycles}", hint="raise --max-cycles if that is intended")
    if issues > max_issues:
        gib = issues * NCOL * 8 / 2**30
        raise UsageError(
            f"the program expands to {issues:,} issues (Repeats included, {gib:.1f} GiB of Plan), "
            f"more than max_issues {max_issues:,}",
            hint="raise --max-issues (library: max_issues=) if that is intended")


def _repeat_roots(f: Fields, queue: np.ndarray, program: Program) -> tuple[np.ndarray, np.ndarray]:
    """For each Repeat: the instruction it repeats (the last non-Repeat before it on its queue)
    and the address step already taken by the Repeats between that one and it (a Repeat of a
    Repeat continues from the last repetition)."""
    n = len(queue)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(queue, kind="stable")  # queue order: program order within a queue
    q, rep = queue[order], f.repeat[order]
    at = np.arange(n)
    first = np.maximum.accumulate(np.where(np.r_[True, q[1:] != q[:-1]], at, 0))
    root = np.maximum.accumulate(np.where(~rep, at, -1))
    orphan = rep & (root < first)
    if orphan.any():
        i = int(order[np.flatnonzero(orphan)[0]])
        raise LoadError(f"{program.where(i)}: instruction {i}: Repeat has no previous instruction "
                        "on its queue")
    taken = np.cumsum(np.where(rep, f.rep_n[order] * f.rep_step[order], 0))
    before = taken - np.where(rep, f.rep_n[order] * f.rep_step[order], 0) - taken[root]
    roots, offsets = np.empty(n, np.int64), np.empty(n, np.int64)
    roots[order], offsets[order] = order[root], before
    return roots, offsets


def _rows(columns: list[tuple[int, np.ndarray]], m: int, block: int = 8192) -> np.ndarray:
    """(m, NCOL) int64, C-contiguous, from one length-m array per column: transposed in blocks
    that fit the cache (writing columns of a row-major table, or numpy's one-shot transposing
    copy, is ~10x slower on a million rows)."""
    rows = np.empty((m, NCOL), dtype=np.int64)
    scratch = np.empty((NCOL, block), dtype=np.int64)
    for start in range(0, m, block):
        stop = min(start + block, m)
        for col, values in columns:
            scratch[col, :stop - start] = values[start:stop]
        rows[start:stop] = scratch[:, :stop - start].T
    return rows


def _issues(f: Fields, e: _Issues, order: np.ndarray, viol: np.ndarray, program: Program,
            chip: Chip) -> np.ndarray:
    """The Plan's table: one row per instruction (built sequentially), each issue a copy of its
    instruction's row (one row gather), then the cells that differ from it: a repetition's
    CYCLE, SRC and ADDR, and the static violations (both rare)."""
    queue = program.queue.astype(np.intp)
    zero = np.zeros(len(queue), np.int64)
    columns = [(CYCLE, program.cycle), (SRC, np.arange(len(queue))), (OP, f.op),
               (DTYPE, f.dtype), (DTYPE2, f.dtype2), (QUEUE, queue),
               (POS, np.array([s.position for s in chip.slices], np.int64)[queue]),
               (UNIT, slice_units(chip)[queue]), (BANK, f.bank), (ADDR, f.addr), (IMM, f.imm),
               (LAT, f.lat), (OCC, f.occ), (VIOL, zero), (VIOL_A, zero), (VIOL_B, zero)]
    columns += [(SA + k, f.streams[:, k]) for k in range(6)]
    issues = _rows(columns, len(queue))[e.base[order]]
    if f.repeat.any():
        at = np.flatnonzero(f.repeat[e.src[order]])  # the repetitions, in Plan order
        k = order[at]
        issues[at, CYCLE], issues[at, SRC], issues[at, ADDR] = e.cycle[k], e.src[k], e.addr[k]
    flagged = np.flatnonzero(viol[0][order])
    issues[flagged, VIOL:VIOL_B + 1] = viol[:, order[flagged]].T
    return issues


@dataclass(frozen=True)
class _Issues:
    """The issues in program order (each Repeat replaced by its repetitions), as the instruction
    whose row each copies (`base`) and the three columns a repetition changes."""

    base: np.ndarray
    src: np.ndarray
    cycle: np.ndarray
    addr: np.ndarray


def _expand(f: Fields, program: Program, roots: np.ndarray, offsets: np.ndarray,
            counts: np.ndarray) -> _Issues:
    """The k-th repetition (k = 1..n) of a Repeat is a copy of the repeated instruction at
    repeat.cycle + (k-1)*d, its address advanced by k*step, its SRC the Repeat (violations of a
    repetition point at the Repeat line)."""
    n = len(counts)
    if not f.repeat.any():
        at = np.arange(n)
        return _Issues(at, at, program.cycle.astype(np.int64), f.addr)
    src = np.repeat(np.arange(n), counts)
    rep = f.repeat[src]
    base = np.where(rep, roots[src], src)
    cycle, addr = program.cycle.astype(np.int64)[src], f.addr[base]
    r_src = src[rep]
    k = np.flatnonzero(rep) - (np.cumsum(counts) - counts)[r_src] + 1
    cycle[rep] += (k - 1) * f.rep_d[r_src]
    addr[rep] += offsets[r_src] + k * f.rep_step[r_src]
    return _Issues(base, src, cycle, addr)


def _check_queues(f: Fields, e: _Issues, queue: np.ndarray, isa: Isa) -> np.ndarray:
    """Queue busy (occupancy, Sync parking) and Syncs that no Notify releases, as the VIOL,
    VIOL_A, VIOL_B columns. A queue's unit is free at its previous issue's cycle + occupancy, or,
    after a Sync, no earlier than its release: the landing of the first Notify issued at or after
    the Sync's cycle."""
    m = len(e.base)
    viol = np.zeros((3, m), np.int64)
    if m == 0:
        return viol
    sync_op, notify_op = isa.lookup("Sync").opcode, isa.lookup("Notify").opcode
    op = f.op[e.base]
    order = np.argsort(queue[e.base], kind="stable")  # queue order (a radix sort on int16)
    q, c, occ = queue[e.base][order], e.cycle[order], f.occ[e.base][order]
    notify = op == notify_op
    notify_cycles = np.sort(e.cycle[notify])
    syncs = np.flatnonzero(op[order] == sync_op)
    k = np.searchsorted(notify_cycles, c[syncs], side="left")
    released = k < len(notify_cycles)
    release = np.full(m, -1, np.int64)  # per Sync (queue order): the cycle it is released
    if released.any():  # every Notify has the chip's one Notify latency
        release[syncs[released]] = notify_cycles[k[released]] + f.lat[e.base][notify].max()
    same = np.r_[False, q[1:] == q[:-1]]
    parked = same & np.r_[False, release[:-1] >= 0]
    free = np.r_[0, c[:-1] + occ[:-1]]
    free = np.where(parked, np.maximum(free, np.r_[0, release[:-1]]), free)
    busy = same & (c < free)
    unreleased = np.zeros(m, bool)
    unreleased[syncs[~released]] = True
    kind = np.where(busy, QUEUE_BUSY, np.where(unreleased, SYNC, 0))
    viol[0, order], viol[1, order], viol[2, order] = kind, np.where(busy, free, 0), busy & parked
    return viol


def _check_addresses(f: Fields, e: _Issues, viol: np.ndarray, chip: Chip, isa: Isa) -> None:
    """An SRAM address outside the bank (after Repeat steps), unless the issue is flagged."""
    mem = np.zeros(isa.fields["opcode"].mask + 1, bool)
    mem[[ins.opcode for ins in isa.instructions if any(op.kind == "mem" for op in ins.operands)]] \
        = True
    size = int(chip.p("mem_addresses_per_bank"))
    bad = mem[f.op[e.base]] & ((e.addr < 0) | (e.addr >= size)) & (viol[0] == 0)
    viol[0, bad], viol[1, bad], viol[2, bad] = ADDRESS, e.addr[bad], f.bank[e.base][bad]


def pair_partners(chip: Chip) -> dict[int, int]:
    """Even MXM plane queue -> the next plane's queue in its hemisphere (a float pair)."""
    planes = {(s.hemisphere, s.unit): s.index for s in chip.slices if s.kind == "MXM"}
    return {q: planes[(h, u + 1)] for (h, u), q in planes.items()
            if u % PAIRED_WIDTH == 0 and (h, u + 1) in planes}


def _check_mxm_pairs(f: Fields, e: _Issues, viol: np.ndarray, queue: np.ndarray, chip: Chip,
                     isa: Isa) -> None:
    """fp16/bf16 ACCs take a plane pair (ISCA 2020; design.md section 14): issued on the pair's
    even plane, they keep the odd plane's queue busy too. Flags a float ACC elsewhere, and the
    later (in Plan order) of a float ACC and an issue of the odd plane whose busy intervals
    overlap (unless that issue is flagged already)."""
    if int(chip.p("mxm_fp16_planes")) != PAIRED_WIDTH or len(e.base) == 0:
        return
    paired = np.array([d.code for d in isa.dtypes.values() if d.width == PAIRED_WIDTH])
    q = queue[e.base].astype(np.int64)
    floats = (f.op[e.base] == isa.lookup("ACC").opcode) & np.isin(f.dtype[e.base], paired)
    if not floats.any():
        return
    occ = f.occ[e.base]
    partners = pair_partners(chip)

    def flag(j: int, a: int, b: int) -> None:
        if viol[0, j] == 0:
            viol[0, j], viol[1, j], viol[2, j] = MXM_PAIR, a, b

    for j in np.flatnonzero(floats & ~np.isin(q, list(partners))):
        flag(int(j), -1, -1)
    for even, odd in partners.items():
        fl = np.flatnonzero(floats & (q == even))
        if not len(fl):
            continue
        fl = fl[np.argsort(e.cycle[fl], kind="stable")]
        starts, ends = e.cycle[fl], e.cycle[fl] + occ[fl]
        for j2 in np.flatnonzero(q == odd):
            c2, end2 = int(e.cycle[j2]), int(e.cycle[j2] + occ[j2])
            i = int(np.searchsorted(starts, end2, side="left")) - 1
            if i < 0 or ends[i] <= c2:
                continue
            j = int(fl[i])
            if (int(e.cycle[j]), j) < (c2, int(j2)):
                flag(int(j2), int(ends[i]), even)
            else:
                flag(j, end2, odd)


def make_plan(program: Program, chip: Chip, isa: Isa, *, max_cycles: int | None = None,
              max_issues: int = DEFAULT_MAX_ISSUES) -> Plan:
    """Decode and validate (decode.py), expand and check a program for a chip.

    LoadError for a program built for another chip or a word that does not fit the chip;
    UsageError, before anything is expanded, for a schedule longer than `max_cycles` or more
    than `max_issues` issues."""
    if program.chip != chip.name:
        raise LoadError(f"the program was assembled for chip {program.chip!r}, not {chip.name!r}",
                        hint=f"run it with --chip {program.chip}, or reassemble it for {chip.name}")
    f = decode_program(program, chip, isa)
    check_data(program, chip, isa)
    queue = program.queue.astype(np.int16)
    roots, offsets = _repeat_roots(f, queue, program)
    counts = np.where(f.repeat, f.rep_n, 1)
    span = np.maximum(f.lat, f.occ)
    last = program.cycle + np.where(f.repeat, (f.rep_n - 1) * f.rep_d, 0)
    ends = last + np.where(f.repeat, span[roots], span)
    cycles = int(ends.max()) if len(ends) else 0
    check_limits(cycles, int(counts.sum()), max_cycles, max_issues)
    e = _expand(f, program, roots, offsets, counts)
    viol = _check_queues(f, e, queue, isa)
    _check_addresses(f, e, viol, chip, isa)
    _check_mxm_pairs(f, e, viol, queue, chip, isa)
    order = np.argsort(e.cycle, kind="stable")  # (cycle, program order, repetition)
    return Plan(_issues(f, e, order, viol, program, chip), cycles, program, chip)


def accumulator_dtype(isa: Isa, code: int) -> str:
    """The dtype an MXM ACC of input dtype `code` accumulates and emits in."""
    name = isa.dtype_by_code()[code].name
    return ACC_DTYPE.get(name, "fp32")
