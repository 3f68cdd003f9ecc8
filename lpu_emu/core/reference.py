"""The reference interpreter: plain Python and numpy, slow and obviously right.

It is the living definition of what a Plan computes (docs/design.md section 10); the numba core
(`lpu_emu.core.fast`) must give identical results, and the differential tests hold it to that.

THE run_plan CONTRACT (shared by both cores; keep it stable)
=============================================================
    run_plan(plan, machine, lenient, trace=False) -> (violations_raw, stopped_at, events)

`plan` is a `lpu_emu.core.plan.Plan`; `machine` a `lpu_emu.core.state.Machine` (built by
`state.new_machine`, SRAM already loaded and inputs written). The core mutates `machine` in place
(SRAM, MXM buffers/weights/accumulators); the caller reads the results from it afterwards.

- `violations_raw`: list of tuples `(kind, issue, cycle, a, b, c)` of Python ints, in the order
  they were detected. `kind` is a plan.py constant (NO_VALUE .. MXM_PAIR), `issue` the row of
  `plan.issues` the violation is reported on, `cycle` that row's issue cycle (CYCLE column).
- `stopped_at`: the issue index where a strict run stopped (its first violation), else -1.
  Lenient runs never stop (-1).
- `events`: the run's EventLog (lpu_emu/core/events.py) when `trace` is true, else None. Both
  cores record the same log, record for record and value row for value row, in the order
  events.py describes; here each record is one `record` call where the thing happens.

Coordinates a, b, c by kind (unused coordinates are 0):

| kind          | a                             | b                       | c                   |
|---------------|-------------------------------|-------------------------|---------------------|
| NO_VALUE      | stream code, or 128 + link    | position of the reader  | 0                   |
| TWO_PRODUCERS | stream code, or 128 + link    | position of placement   | issue of 1st placer |
| BANK_CONFLICT | MEM ordinal (UNIT)            | bank                    | cycle of accesses   |
| WRONG_DTYPE   | stream code                   | dtype code it carries   | reader position     |
| NO_WEIGHTS    | MXM plane (UNIT)              | accumulator (IMM)       | 0                   |
| ADDRESS       | the address (before modulo)   | bank                    | lane, or -1         |
| QUEUE_BUSY    | cycle the unit is free        | 1 parked at Sync, else 0| 0                   |
| SYNC          | 0                             | 0                       | 0                   |
| MXM_PAIR      | -1 off the even plane; else   | -1, or the queue of the | 0                   |
|               | the cycle the pair is free    | other issue             |                     |

Static violations (QUEUE_BUSY, SYNC, MXM_PAIR, ADDRESS of the instruction's own address) come
from the VIOL/VIOL_A/VIOL_B columns of the plan (c = -1 for ADDRESS, 0 otherwise).

Order of processing, per issue k at cycle c, in Plan order:
 1. static violation on k (strict: stop *before* executing k);
 2. apply every pending SRAM write whose commit cycle is < c, in (commit cycle, issue) order;
 3. read the input stream groups at (POS, c): operand a's streams in index order, then b's;
 4. record at most one violation of each kind for k, in this order: no-value (first missing
    stream), wrong-dtype (first present stream whose tag differs from the instruction's dtype;
    Cvt: its first dtype; every input stream is checked, Gather/Scatter's index too), address
    (Gather/Scatter: first lane whose base + index is outside the bank; not reported when the
    plan already flagged the issue's own address), bank-conflict, no-weights, two-producers
    (first output stream that collides). Lenient: all of them are recorded, in that order.
    Strict: only the first is recorded and the run stops there: the effects of k (outputs, SRAM
    writes, MXM state) are not applied, and writes still pending are dropped.
 5. execute k and place its outputs at (POS, c + LAT), tagged with the output dtype.
At the end of a run that did not stop, every pending write is applied.

Rules where docs/design.md leaves a choice (both cores follow them):
- Streams: a placement on (code, direction) at (p, t) lies on diagonal p - t (east) or p + t
  (west); a reader at (q, u) sees the placement with its diagonal nearest upstream (largest
  p <= q east, smallest p >= q west). Placements live forever on their diagonal.
- Lenient values: no-value reads zeros (and is not dtype-checked); two-producers: the later in Plan
  order replaces the earlier; wrong-dtype: the bytes as they are; no-weights: an all-zero weight
  matrix, computed as usual (inf * 0 is NaN); address: Python floor modulo
  `addr % mem_addresses_per_bank` (also for negative addresses); bank-conflict: both proceed (a
  Read sees the data before the write that lands in its cycle); queue-busy: issues anyway.
- Bank conflicts: SRAM accesses are a Read/Gather at its issue cycle and a Write/Scatter at its
  commit cycle (issue + LAT). Conflicts are reported on the later issue in Plan order: a read
  meeting a pending write landing in the same cycle and bank, a read meeting another read of the
  same bank in that cycle, or a write landing with another pending write in the same cycle and
  bank.
- MXM: LW appends `rows` rows to the plane's buffer, row r from the width(dtype) streams
  src + r*width(dtype) .. (it reads exactly those WA = rows * width streams); rows past mxm_rows
  are dropped. IW at c takes the buffer (which empties at once) and installs it at
  c + LAT into one pending slot per plane (an IW or ACC at c first promotes a pending install that
  has landed, <= c; a second IW before the first lands replaces the pending one). Weights are
  kept as raw bytes: ACC.d decodes them as d (what silicon would do if LW and ACC disagreed).
  ABC a and ACC's accumulator index wrap modulo mxm_accumulators. Accumulators are 32-bit cells
  viewed as int32 (ACC.int8) or fp32 (float ACC). ACC computes at its issue cycle, k ascending
  over the mxm_rows inputs (lane k of x times row k of W, columns < mxm_cols) and places the
  accumulator value as it is right after its own update.
- SXM: lane maps: a -1 entry, an entry outside 0..lanes-1, or a lane past the map's end gives
  zero, for Permute and Distribute. Shift amounts >= lanes give all zeros.
- C2C: a link is addressed (edge, link); Send's vector arrives at (edge, link) at c + LAT carrying
  its bytes; a Receive at c takes the vector arriving exactly at c and places width(dtype) planes
  of it (planes the Send did not carry are zero) tagged with the Receive's dtype (a link carries
  bytes, so no dtype check). Two vectors arriving at one (edge, link, cycle) are two-producers.
- Max/Min follow IEEE 754-2019 maximum/minimum: a NaN input gives that NaN (x's if both are),
  and -0 < +0 (Max(-0, +0) = +0, Min(+0, -0) = -0).
- Immediates (AddI/MulI/MaxI/MinI): the 32-bit IMM is int32 for integer dtypes (int8 keeps its low
  byte, two's complement) and fp32 bits for floats, rounded to the dtype before the operation.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lpu_emu.core import events as ev
from lpu_emu.core.events import EventLog, Recorder, run_meta
from lpu_emu.core.ops import c2c, mem, mxm, sxm, vxm
from lpu_emu.core.ops.lanes import decode, encode, width
from lpu_emu.core.plan import (
    ADDR,
    ADDRESS,
    BANK,
    BANK_CONFLICT,
    CYCLE,
    DTYPE,
    DTYPE2,
    IMM,
    LAT,
    NO_VALUE,
    NO_WEIGHTS,
    OP,
    POS,
    QUEUE,
    SA,
    SB,
    SC,
    TWO_PRODUCERS,
    UNIT,
    VIOL,
    VIOL_A,
    VIOL_B,
    WA,
    WB,
    WC,
    WRONG_DTYPE,
    Plan,
    accumulator_dtype,
)
from lpu_emu.core.state import Machine
from lpu_emu.spec import Isa, default_isa
from lpu_emu.spec.encoding import STREAM_WEST

RawViolation = tuple[int, int, int, int, int, int]
LINK = 128  # a/b coordinate offset that marks a C2C link rather than a stream
# the order in which the violations of one issue are recorded (contract, step 4)
DYNAMIC_ORDER = (NO_VALUE, WRONG_DTYPE, ADDRESS, BANK_CONFLICT, NO_WEIGHTS, TWO_PRODUCERS)


@dataclass
class Placement:
    """One stream's value placed at (pos, cycle) by issue `issue`, with its dtype tag."""

    pos: int
    cycle: int
    issue: int
    tag: int
    data: np.ndarray  # uint8[lanes]
    ref: int = -1  # its row in the event log's value heap (-1: untraced)


class Streams:
    """Every placement, indexed by (stream code, diagonal): a read is a lookup, not a simulation."""

    def __init__(self) -> None:
        self._by_diag: dict[tuple[int, int], dict[int, Placement]] = {}

    @staticmethod
    def diagonal(code: int, pos: int, cycle: int) -> int:
        return pos + cycle if code & STREAM_WEST else pos - cycle

    def at(self, code: int, pos: int, cycle: int) -> Placement | None:
        """The placement made exactly at (pos, cycle) on this stream, if any."""
        return self._by_diag.get((code, self.diagonal(code, pos, cycle)), {}).get(pos)

    def place(self, code: int, p: Placement) -> None:
        self._by_diag.setdefault((code, self.diagonal(code, p.pos, p.cycle)), {})[p.pos] = p

    def look(self, code: int, pos: int, cycle: int) -> Placement | None:
        """What passes `pos` at `cycle`: the nearest placement upstream on the same diagonal."""
        line = self._by_diag.get((code, self.diagonal(code, pos, cycle)))
        if not line:
            return None
        west = bool(code & STREAM_WEST)
        upstream = [p for p in line if (p >= pos if west else p <= pos)]
        if not upstream:
            return None
        return line[min(upstream) if west else max(upstream)]


@dataclass
class Step:
    """What one issue does, computed before any of it is applied (a strict stop applies none)."""

    outputs: list[tuple[int, np.ndarray, int]] = field(default_factory=list)  # (code, planes, tag)
    apply: Callable[[], None] | None = None


@dataclass(order=True)
class PendingWrite:
    commit: int
    issue: int
    unit: int = field(compare=False)
    bank: int = field(compare=False)
    addrs: np.ndarray = field(compare=False)  # int64[lanes]
    data: np.ndarray = field(compare=False)  # uint8[lanes]
    base: int = field(compare=False)  # the address as the event log has it (Scatter: its base)
    iref: int = field(compare=False)  # value rows of the Scatter index (-1: none) and the data
    dref: int = field(compare=False)


class Interpreter:
    """One run of a Plan on a Machine (see the contract at the top of this module)."""

    def __init__(self, plan: Plan, machine: Machine, lenient: bool, isa: Isa,
                 trace: bool = False) -> None:
        self.plan, self.m, self.lenient = plan, machine, lenient
        self.ins_by_op = isa.by_opcode()
        self.dtypes = {d.code: d.name for d in isa.dtypes.values()}
        self.isa = isa
        self.lanes = machine.chip.lanes
        self.mem_size = int(machine.chip.p("mem_addresses_per_bank"))
        self.streams = Streams()
        self.writes: list[PendingWrite] = []
        self.reads: dict[tuple[int, int], int] = {}  # (unit, bank) -> cycle of the last read
        self.links: dict[tuple[int, int, int], tuple[int, np.ndarray]] = {}  # (edge, link, cycle)
        self.violations: list[RawViolation] = []
        self.found: dict[int, tuple[int, int, int]] = {}  # this issue's violations by kind
        self.k = 0  # the issue being executed, and its row
        self.row = np.zeros(plan.issues.shape[1], np.int64)
        self.rec = Recorder(on=trace)
        self.touched: set[tuple[int, int, int]] = set()  # SRAM rows written so far (INIT)

    # ---- the loop ----
    def run(self) -> int:
        """Process every issue; return the issue a strict run stopped at, or -1."""
        for k in range(len(self.plan.issues)):
            self.k, self.row = k, self.plan.issues[k]
            c = int(self.row[CYCLE])
            self.record(c, ev.ISSUE, self.row[QUEUE], self.row[OP], self.row[DTYPE])
            if self.row[VIOL]:
                kind = int(self.row[VIOL])
                c_coord = -1 if kind == ADDRESS else 0
                self.violation(kind, c, int(self.row[VIOL_A]), int(self.row[VIOL_B]), c_coord)
                if not self.lenient:
                    return k
            self.apply_writes(before=c)
            if not self.execute(c):
                return k
        self.apply_writes(before=None)
        return -1

    def execute(self, c: int) -> bool:
        """Check and run the current issue; False if a strict run stops here."""
        ins = self.ins_by_op[int(self.row[OP])]
        self.found = {}
        handler = getattr(self, f"op_{ins.mnemonic.lower()}", None)
        step = handler(c) if handler else Step()
        lat = int(self.row[LAT])
        for code, _, _ in step.outputs:
            prev = self.streams.at(code, int(self.row[POS]), c + lat)
            if prev is not None:
                self.flag(TWO_PRODUCERS, code, int(self.row[POS]), prev.issue)
        found = [(kind, *self.found[kind]) for kind in DYNAMIC_ORDER if kind in self.found]
        if not self.lenient:
            found = found[:1]  # strict: the first one stops the run here
        for kind, a, b, cc in found:
            self.violation(kind, c, a, b, cc)
        if found and not self.lenient:
            return False
        for code, data, tag in step.outputs:
            self.place(code, data, tag, c + lat)
        if step.apply:
            step.apply()
        return True

    def flag(self, kind: int, a: int = 0, b: int = 0, c: int = 0) -> None:
        self.found.setdefault(kind, (int(a), int(b), int(c)))

    def violation(self, kind: int, cycle: int, a: int, b: int, c: int) -> None:
        self.violations.append((kind, self.k, cycle, a, b, c))
        self.record(cycle, ev.VIOL, kind, a, b, c)

    def place(self, code: int, data: np.ndarray, tag: int, t: int) -> None:
        """Put the current issue's value on stream `code` at (POS, t)."""
        pos = int(self.row[POS])
        replaced = self.streams.at(code, pos, t) is not None
        ref = self.rec.row(data)
        self.record(t, ev.PLACE, code, pos, tag, int(replaced), ref)
        self.streams.place(code, Placement(pos, t, self.k, tag, data, ref))

    def record(self, cycle: int, kind: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0,
               ref: int = -1) -> None:
        """An event of the current issue (events.py gives a..d and ref by kind)."""
        self.rec.add(cycle, kind, self.k, a, b, c, d, ref)

    def log(self, stopped_at: int) -> EventLog | None:
        """The run's event log (None if untraced)."""
        if not self.rec.on:
            return None
        return self.rec.log(self.lanes, run_meta(self.plan, self.m, stopped_at))

    # ---- plumbing shared by the ops ----
    def dtype(self, col: int = DTYPE) -> str:
        return self.dtypes[int(self.row[col])]

    def read_group(self, code_col: int, width_col: int, c: int, tag: int) -> np.ndarray:
        """The [w, lanes] bytes of an input stream group at (POS, c); flags no-value (zeros) and
        wrong-dtype (the bytes as they are)."""
        code, w, pos = int(self.row[code_col]), int(self.row[width_col]), int(self.row[POS])
        planes = np.zeros((w, self.lanes), dtype=np.uint8)
        for i in range(w):
            p = self.streams.look(code + i, pos, c)
            if p is None:
                self.flag(NO_VALUE, code + i, pos)
                self.record(c, ev.TAKE, code + i, pos, -1)
                continue
            self.record(c, ev.TAKE, code + i, pos, p.pos, p.tag, p.ref)
            if p.tag != tag:
                self.flag(WRONG_DTYPE, code + i, p.tag, pos)
            planes[i] = p.data
        return planes

    def value_ref(self, code_col: int, c: int) -> int:
        """The value row of what the group's first stream carries at (POS, c) (-1: nothing)."""
        p = self.streams.look(int(self.row[code_col]), int(self.row[POS]), c)
        return -1 if p is None else p.ref

    def out_ref(self, c: int) -> int:
        """The value row of the current issue's first output, once placed."""
        return self.streams.at(int(self.row[SC]), int(self.row[POS]), c + int(self.row[LAT])).ref

    def out(self, planes: np.ndarray, tag: int) -> Step:
        """A step placing `planes` on the output group SC."""
        code = int(self.row[SC])
        return Step(outputs=[(code + i, planes[i].copy(), tag) for i in range(planes.shape[0])])

    def address(self, addr: int | np.ndarray) -> int | np.ndarray:
        return addr % self.mem_size

    def check_read_bank(self, unit: int, bank: int, c: int) -> None:
        lands = any(w.commit == c and w.unit == unit and w.bank == bank for w in self.writes)
        if lands or self.reads.get((unit, bank)) == c:
            self.flag(BANK_CONFLICT, unit, bank, c)

    def check_write_bank(self, unit: int, bank: int, commit: int) -> None:
        if any(w.commit == commit and w.unit == unit and w.bank == bank for w in self.writes):
            self.flag(BANK_CONFLICT, unit, bank, commit)

    def apply_writes(self, before: int | None) -> None:
        """Commit pending writes landing before cycle `before` (all of them if None)."""
        while self.writes and (before is None or self.writes[0].commit < before):
            w = heapq.heappop(self.writes)
            self.record_first_writes(w)
            mem.scatter(self.m.sram, w.unit, w.bank, w.addrs, w.data)
            self.rec.add(w.commit, ev.SWRITE, w.issue, w.unit, w.bank, w.base, w.iref, w.dref)

    def record_first_writes(self, w: PendingWrite) -> None:
        """INIT: each row the write is the run's first to touch, as it was before (lane order)."""
        if not self.rec.on:
            return
        for a in dict.fromkeys(w.addrs.tolist()):
            if (w.unit, w.bank, a) not in self.touched:
                self.touched.add((w.unit, w.bank, a))
                ref = self.rec.row(self.m.sram[w.unit, w.bank, a])
                self.rec.add(w.commit, ev.INIT, w.issue, w.unit, w.bank, a, 0, ref)

    def lane_addresses(self, base: int, index: np.ndarray) -> np.ndarray:
        """base + index per lane; an address violation (first lane outside) unless the plan
        already flagged the base itself."""
        addrs = base + index.astype(np.int64)
        bad = np.flatnonzero((addrs < 0) | (addrs >= self.mem_size))
        if len(bad) and self.row[VIOL] != ADDRESS:
            self.flag(ADDRESS, addrs[bad[0]], int(self.row[BANK]), bad[0])
        return self.address(addrs)

    def read_mark(self, unit: int, bank: int, c: int, addr: int,
                  index_ref: int = -1) -> Callable[[], None]:
        def apply() -> None:
            self.reads[(unit, bank)] = c
            self.record(c, ev.SREAD, unit, bank, addr, index_ref, self.out_ref(c))
        return apply

    def push_write(self, commit: int, unit: int, bank: int, addrs, data, base: int, dref: int,
                   iref: int = -1) -> Callable[[], None]:
        addrs = np.broadcast_to(np.asarray(addrs, dtype=np.int64), (self.lanes,)).copy()
        w = PendingWrite(commit, self.k, unit, bank, addrs, data, base, iref, dref)

        def apply() -> None:
            heapq.heappush(self.writes, w)
        return apply

    # ---- MEM ----
    def op_read(self, c: int) -> Step:
        unit, bank = int(self.row[UNIT]), int(self.row[BANK])
        addr = self.address(int(self.row[ADDR]))
        self.check_read_bank(unit, bank, c)
        step = self.out(mem.read(self.m.sram, unit, bank, addr)[None], int(self.row[DTYPE]))
        step.apply = self.read_mark(unit, bank, c, addr)
        return step

    def op_write(self, c: int) -> Step:
        unit, bank = int(self.row[UNIT]), int(self.row[BANK])
        addr = self.address(int(self.row[ADDR]))
        data = self.read_group(SA, WA, c, int(self.row[DTYPE]))[0]
        commit = c + int(self.row[LAT])
        self.check_write_bank(unit, bank, commit)
        return Step(apply=self.push_write(commit, unit, bank, addr, data, addr,
                                          self.value_ref(SA, c)))

    def op_gather(self, c: int) -> Step:
        unit, bank = int(self.row[UNIT]), int(self.row[BANK])
        index = self.read_group(SA, WA, c, int(self.row[DTYPE]))[0]
        addrs = self.lane_addresses(int(self.row[ADDR]), index)
        self.check_read_bank(unit, bank, c)
        step = self.out(mem.gather(self.m.sram, unit, bank, addrs)[None], int(self.row[DTYPE]))
        step.apply = self.read_mark(unit, bank, c, int(self.row[ADDR]), self.value_ref(SA, c))
        return step

    def op_scatter(self, c: int) -> Step:
        unit, bank = int(self.row[UNIT]), int(self.row[BANK])
        index = self.read_group(SA, WA, c, int(self.row[DTYPE]))[0]
        data = self.read_group(SB, WB, c, int(self.row[DTYPE]))[0]
        addrs = self.lane_addresses(int(self.row[ADDR]), index)
        commit = c + int(self.row[LAT])
        self.check_write_bank(unit, bank, commit)
        return Step(apply=self.push_write(commit, unit, bank, addrs, data, int(self.row[ADDR]),
                                          self.value_ref(SB, c), self.value_ref(SA, c)))

    # ---- VXM ----
    def vxm_values(self, c: int, *cols: tuple[int, int]) -> list[np.ndarray]:
        """Decoded input groups (operand a, then b) in the instruction's dtype."""
        d = self.dtype()
        groups = [self.read_group(code, w, c, int(self.row[DTYPE])) for code, w in cols]
        return [decode(g, d) for g in groups]

    def imm(self) -> np.ndarray:
        """The IMM operand as the dtype's values on every lane (rounded into the dtype)."""
        d, bits = self.dtype(), int(self.row[IMM]) & 0xFFFFFFFF
        if d in ("int8", "int32"):
            value = np.array([bits], np.uint32).view(np.int32)[0]
        else:
            value = np.array([bits], np.uint32).view(np.float32)[0]
        return decode(encode(np.full(self.lanes, value), d), d)

    def vxm_binary(self, c: int, fn) -> Step:
        x, y = self.vxm_values(c, (SA, WA), (SB, WB))
        return self.out(encode(fn(x, y), self.dtype()), int(self.row[DTYPE]))

    def vxm_immediate(self, c: int, fn) -> Step:
        (x,) = self.vxm_values(c, (SA, WA))
        return self.out(encode(fn(x, self.imm()), self.dtype()), int(self.row[DTYPE]))

    def vxm_unary(self, c: int, fn) -> Step:
        (x,) = self.vxm_values(c, (SA, WA))
        return self.out(encode(fn(x), self.dtype()), int(self.row[DTYPE]))

    def op_add(self, c: int) -> Step:
        return self.vxm_binary(c, vxm.add)

    def op_sub(self, c: int) -> Step:
        return self.vxm_binary(c, vxm.sub)

    def op_mul(self, c: int) -> Step:
        return self.vxm_binary(c, vxm.mul)

    def op_max(self, c: int) -> Step:
        return self.vxm_binary(c, vxm.max)

    def op_min(self, c: int) -> Step:
        return self.vxm_binary(c, vxm.min)

    def op_addi(self, c: int) -> Step:
        return self.vxm_immediate(c, vxm.addi)

    def op_muli(self, c: int) -> Step:
        return self.vxm_immediate(c, vxm.muli)

    def op_maxi(self, c: int) -> Step:
        return self.vxm_immediate(c, vxm.maxi)

    def op_mini(self, c: int) -> Step:
        return self.vxm_immediate(c, vxm.mini)

    def op_mov(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.mov)

    def op_neg(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.neg)

    def op_abs(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.abs)

    def op_relu(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.relu)

    def op_exp(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.exp)

    def op_rsqrt(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.rsqrt)

    def op_tanh(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.tanh)

    def op_erf(self, c: int) -> Step:
        return self.vxm_unary(c, vxm.erf)

    def op_cvt(self, c: int) -> Step:
        (x,) = self.vxm_values(c, (SA, WA))
        src, dst = self.dtype(), self.dtype(DTYPE2)
        return self.out(encode(vxm.cvt(x, src, dst), dst), int(self.row[DTYPE2]))

    # ---- MXM ----
    def op_lw(self, c: int) -> Step:
        group, plane = self.read_group(SA, WA, c, int(self.row[DTYPE])), int(self.row[UNIT])

        def apply() -> None:
            first = int(self.m.wbuf_rows[plane])
            mxm.lw(self.m, plane, group, width(self.dtype()))
            kept = first if first < self.m.wbuf.shape[1] else -1
            self.record(c, ev.LW, plane, kept, group.shape[0], self.m.wbuf_rows[plane] - first)
        return Step(apply=apply)

    def op_iw(self, c: int, install=mxm.iw) -> Step:
        plane, lands = int(self.row[UNIT]), c + int(self.row[LAT])

        def apply() -> None:
            self.record(c, ev.IW, plane, lands, self.m.wbuf_rows[plane])
            install(self.m, plane, c, lands)
        return Step(apply=apply)

    def op_iwt(self, c: int) -> Step:
        return self.op_iw(c, install=mxm.iwt)

    def op_abc(self, c: int) -> Step:
        plane, a = int(self.row[UNIT]), int(self.row[IMM])

        def apply() -> None:
            mxm.abc(self.m, plane, a)
            self.record(c, ev.ABC, plane, a % self.m.acc.shape[1])
        return Step(apply=apply)

    def op_acc(self, c: int) -> Step:
        d, plane = self.dtype(), int(self.row[UNIT])
        a = int(self.row[IMM]) % self.m.acc.shape[1]
        (x,) = self.vxm_values(c, (SA, WA))
        raw = mxm.weights_for(self.m, plane, c)
        have_weights = raw is not None
        if not have_weights:
            self.flag(NO_WEIGHTS, plane, int(self.row[IMM]))
            raw = np.zeros_like(self.m.weights[plane])
        cols = int(self.m.chip.p("mxm_cols"))
        bits = mxm.acc(self.m.acc[plane, a], x, mxm.weight_values(raw, d)[:, :cols], d)
        out_dtype = accumulator_dtype(self.isa, int(self.row[DTYPE]))
        tag = self.isa.dtypes[out_dtype].code
        step = self.out(bits.view(np.uint8).reshape(self.lanes, 4).T, tag)

        def apply() -> None:
            mxm.land(self.m, plane, c)
            self.m.acc[plane, a] = bits
            self.record(c, ev.ACC, plane, a, int(have_weights), 0, self.out_ref(c))
        step.apply = apply
        return step

    # ---- SXM ----
    def sxm_planes(self, c: int) -> np.ndarray:
        return self.read_group(SA, WA, c, int(self.row[DTYPE]))

    def op_shiftup(self, c: int) -> Step:
        return self.out(sxm.shiftup(self.sxm_planes(c), int(self.row[IMM])), int(self.row[DTYPE]))

    def op_shiftdown(self, c: int) -> Step:
        return self.out(sxm.shiftdown(self.sxm_planes(c), int(self.row[IMM])), int(self.row[DTYPE]))

    def op_rotate(self, c: int) -> Step:
        return self.out(sxm.rotate(self.sxm_planes(c), int(self.row[IMM])), int(self.row[DTYPE]))

    def op_permute(self, c: int) -> Step:
        lanemap = self.m.lanemaps[int(self.row[IMM])]
        return self.out(sxm.permute(self.sxm_planes(c), lanemap), int(self.row[DTYPE]))

    def op_distribute(self, c: int) -> Step:
        lanemap = self.m.lanemaps[int(self.row[IMM])]
        return self.out(sxm.distribute(self.sxm_planes(c), lanemap), int(self.row[DTYPE]))

    def op_transpose(self, c: int) -> Step:
        block = int(self.m.chip.p("superlane_lanes"))
        return self.out(sxm.transpose(self.sxm_planes(c), block), int(self.row[DTYPE]))

    # ---- C2C ----
    def op_deskew(self, c: int) -> Step:
        c2c.deskew()
        return Step()

    def op_send(self, c: int) -> Step:
        data = c2c.send(self.read_group(SA, WA, c, int(self.row[DTYPE])))
        key = (int(self.row[UNIT]), int(self.row[IMM]), c + int(self.row[LAT]))
        if key in self.links:
            self.flag(TWO_PRODUCERS, LINK + key[1], int(self.row[POS]), self.links[key][0])

        def apply() -> None:
            self.record(c, ev.SEND, key[0], key[1], key[2], self.row[WA])
            self.links[key] = (self.k, data)
        return Step(apply=apply)

    def op_receive(self, c: int) -> Step:
        edge, link = int(self.row[UNIT]), int(self.row[IMM])
        arrived = self.links.get((edge, link, c))
        if arrived is None:
            self.flag(NO_VALUE, LINK + link, int(self.row[POS]))
            sender, data = -1, np.zeros((1, self.lanes), np.uint8)
        else:
            sender, data = arrived
        step = self.out(c2c.receive(data, int(self.row[WC])), int(self.row[DTYPE]))
        step.apply = lambda: self.record(c, ev.RECV, edge, link, sender)
        return step


def run_plan(plan: Plan, machine: Machine, lenient: bool, trace: bool = False,
             isa: Isa | None = None) -> tuple[list[RawViolation], int, EventLog | None]:
    """Run `plan` on `machine` (mutated in place). See the contract at the top of this module."""
    interp = Interpreter(plan, machine, lenient, isa or default_isa(), trace)
    with np.errstate(all="ignore"):
        stopped = interp.run()
    return interp.violations, stopped, interp.log(stopped)
