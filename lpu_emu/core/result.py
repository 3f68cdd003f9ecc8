"""What a run returns: RunResult (SRAM, violations, statistics) and the pieces it is built from.

Both cores return raw violation tuples (see the contract in lpu_emu/core/reference.py);
`make_violation` turns one into a located, readable `Violation`, and `plan_stats` derives the
statistics from the Plan and how far the run got, so the two cores share all of it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from lpu_emu.core import plan as P
from lpu_emu.core.plan import Plan
from lpu_emu.core.tensors import decode_tensor, read_image, symbol
from lpu_emu.program import Program
from lpu_emu.spec import Chip, Isa, default_isa
from lpu_emu.spec.encoding import STREAM_INDEX_MASK, STREAM_WEST, stream_parts, stream_text

LINK = 128  # coordinate offset marking a C2C link (see the run_plan contract)


@dataclass(frozen=True)
class Violation:
    """One schedule violation, located in time, space and source."""

    kind: str  # "no-value", "two-producers", ...
    cycle: int  # issue cycle of the instruction it is reported on
    queue: str  # slice (queue) name
    source: str  # "file:line"
    message: str  # the whole sentence, as printed
    issue: int  # row of Plan.issues
    stream: str | None = None  # "S4E", or "link 3"
    position: int | None = None
    address: int | None = None
    bank: int | None = None
    coords: tuple[int, int, int] = (0, 0, 0)  # the raw a, b, c

    def __str__(self) -> str:
        return self.message


def _where_queue(plan: Plan, issue: int) -> tuple[str, str]:
    row = plan.issues[issue]
    return plan.chip.slices[int(row[P.QUEUE])].name, plan.program.where(int(row[P.SRC]))


def _channel(a: int) -> str:
    return f"link {a - LINK}" if a >= LINK else f"stream {stream_text(a)}"


def _mnemonic(plan: Plan, isa: Isa, row: np.ndarray) -> str:
    ins = isa.by_opcode()[int(row[P.OP])]
    names = {d.code: d.name for d in isa.dtypes.values()}
    parts = [ins.mnemonic] + [names[int(row[c])] for c in (P.DTYPE, P.DTYPE2) if row[c]]
    return ".".join(parts)


def _other_write(plan: Plan, isa: Isa, issue: int, unit: int, bank: int, cycle: int) -> int | None:
    """The earlier Write/Scatter issue landing in (unit, bank) at `cycle`, if any."""
    writes = {isa.lookup(m).opcode for m in ("Write", "Scatter")}
    rows = plan.issues[:issue]
    hit = np.flatnonzero(np.isin(rows[:, P.OP], list(writes)) & (rows[:, P.UNIT] == unit)
                         & (rows[:, P.BANK] == bank) & (rows[:, P.CYCLE] + rows[:, P.LAT] == cycle))
    return int(hit[-1]) if len(hit) else None


def _bank_text(plan: Plan, isa: Isa, issue: int, a: int, b: int, c: int) -> str:
    other = _other_write(plan, isa, issue, a, b, c)
    by = f" (the other from {_where_queue(plan, other)[1]})" if other is not None else ""
    mnemonic = isa.by_opcode()[int(plan.issues[issue][P.OP])].mnemonic
    if mnemonic in ("Write", "Scatter"):
        return f"two writes land in bank {b} at cycle {c}{by}"
    if other is not None:
        return f"bank {b} is read at cycle {c}, when a write lands in it{by}"
    return f"bank {b} is read twice at cycle {c}"


def _cycles(n: int) -> str:
    return f"{n} cycle" if n == 1 else f"{n} cycles"


def _awaited(plan: Plan, code: int, q: int, t: int) -> str:
    """Where the value a no-value reader at (position q, cycle t) awaited does pass q: the
    placement on that stream and direction, upstream of q, whose pass at q is nearest to t
    (so the fix, moving the reader or the producer, is obvious)."""
    index, west = stream_parts(code)
    iss = plan.issues
    out = iss[:, P.SC]
    first = out & STREAM_INDEX_MASK
    covers = ((out >= 0) & ((out & STREAM_WEST) == (STREAM_WEST if west else 0))
              & (first <= index) & (index < first + iss[:, P.WC]))
    pos, placed = iss[:, P.POS], iss[:, P.CYCLE] + iss[:, P.LAT]
    upstream = (pos >= q) if west else (pos <= q)
    rows = np.flatnonzero(covers & upstream)
    text = stream_text(code)
    if not len(rows):
        return f"; nothing is ever placed on {text} upstream of position {q}"
    passes = placed[rows] + np.abs(q - pos[rows])
    k = int(np.lexsort((passes, np.abs(passes - t)))[0])
    at, row = int(passes[k]), int(rows[k])
    queue, where = _where_queue(plan, row)
    when = f"{_cycles(at - t)} later" if at > t else f"{_cycles(t - at)} earlier"
    return f"; {text} from {queue} ({where}) passes it at cycle {at}: {when}"


def _text(plan: Plan, isa: Isa, kind: int, issue: int, a: int, b: int, c: int) -> str:
    """The sentence between 'cycle N: QUEUE: kind:' and the source location."""
    row = plan.issues[issue]
    size = int(plan.chip.p("mem_addresses_per_bank"))
    if kind == P.NO_VALUE:
        if a >= LINK:
            return f"nothing arrives on link {a - LINK} at this cycle"
        return (f"nothing passes on stream {stream_text(a)} at position {b}"
                + _awaited(plan, a, b, int(row[P.CYCLE])))
    if kind == P.TWO_PRODUCERS:
        q1, w1 = _where_queue(plan, c)
        at = int(row[P.CYCLE] + row[P.LAT])
        what = "vector arriving" if a >= LINK else f"value at position {b}"
        return f"{_channel(a)} gets a second {what} at cycle {at} (the first from {q1}, {w1})"
    if kind == P.BANK_CONFLICT:
        return _bank_text(plan, isa, issue, a, b, c)
    if kind == P.WRONG_DTYPE:
        names = {d.code: d.name for d in isa.dtypes.values()}
        wants = names[int(row[P.DTYPE])]
        return (f"stream {stream_text(a)} at position {c} carries {names.get(b, '?')}, "
                f"but {_mnemonic(plan, isa, row)} reads {wants}")
    if kind == P.NO_WEIGHTS:
        return f"ACC on accumulator {b} before any IW has installed weights on this plane"
    if kind == P.ADDRESS:
        lane = f" (lane {c})" if c >= 0 else ""
        return f"address {a}{lane} is outside bank {b} (addresses 0..{size - 1})"
    if kind == P.QUEUE_BUSY:
        why = "parked at Sync" if b else "its unit is busy"
        return f"issues while {why} until cycle {a}"
    if kind == P.MXM_PAIR:
        return _pair_text(plan, isa, row, a, b)
    return f"no Notify issued at or after cycle {int(row[P.CYCLE])} releases this Sync"


def _pair_text(plan: Plan, isa: Isa, row: np.ndarray, a: int, b: int) -> str:
    """An fp16/bf16 ACC off the even plane of a pair, or an overlap within a pair."""
    if a < 0:
        return (f"{_mnemonic(plan, isa, row)} takes a plane pair and must issue on its even "
                "plane (unit 0, 2, .. of a hemisphere)")
    return f"its plane pair is busy with {plan.chip.slices[b].name} until cycle {a}"


def make_violation(plan: Plan, raw: tuple[int, ...], isa: Isa | None = None) -> Violation:
    """A located Violation from a core's raw tuple (kind, issue, cycle, a, b, c)."""
    isa = isa or default_isa()
    kind, issue, cycle, a, b, c = (int(v) for v in raw)
    queue, where = _where_queue(plan, issue)
    name = P.VIOLATION_NAMES[kind]
    text = _text(plan, isa, kind, issue, a, b, c)
    stream = _channel(a).removeprefix("stream ") if kind in (
        P.NO_VALUE, P.TWO_PRODUCERS, P.WRONG_DTYPE) else None
    position = {P.NO_VALUE: b, P.TWO_PRODUCERS: b, P.WRONG_DTYPE: c}.get(kind)
    return Violation(
        kind=name, cycle=cycle, queue=queue, source=where, issue=issue,
        message=f"cycle {cycle}: {queue}: {name}: {text} ({where})",
        stream=stream, position=position,
        address=a if kind == P.ADDRESS else None,
        bank=b if kind in (P.ADDRESS, P.BANK_CONFLICT) else None,
        coords=(a, b, c),
    )


@dataclass(frozen=True)
class Stats:
    """What the run did against what the chip could do (docs/design.md section 10, last part)."""

    cycles: int
    seconds: float
    busy: dict[str, int]  # busy cycles (sum of occupancies) per queue, every queue of the chip
    utilization: dict[str, float]  # busy / cycles per queue
    kind_utilization: dict[str, float]  # per slice kind: busy / (cycles * queues of that kind)
    sram_bytes_read: int
    sram_bytes_written: int
    sram_bytes_per_s: float  # achieved (read + written) / seconds
    sram_peak_bytes_per_s: float
    mxm_int8_ops: int  # int8 and fp8 ACCs (2 * rows * cols each)
    mxm_fp16_ops: int  # fp16 and bf16 ACCs
    mxm_int8_ops_per_s: float
    mxm_fp16_ops_per_s: float
    mxm_int8_peak_ops_per_s: float
    mxm_fp16_peak_ops_per_s: float

    @property
    def mxm_ops(self) -> int:
        return self.mxm_int8_ops + self.mxm_fp16_ops

    @property
    def mxm_ops_per_s(self) -> float:
        return self.mxm_int8_ops_per_s + self.mxm_fp16_ops_per_s

    @property
    def sram_fraction(self) -> float:
        """Achieved SRAM bandwidth as a fraction of the peak."""
        return self.sram_bytes_per_s / self.sram_peak_bytes_per_s

    @property
    def mxm_fraction(self) -> float:
        """MXM use as a fraction of peak: each kind of op against its own peak, summed."""
        return (self.mxm_int8_ops_per_s / self.mxm_int8_peak_ops_per_s
                + self.mxm_fp16_ops_per_s / self.mxm_fp16_peak_ops_per_s)


def _opcodes(isa: Isa, *mnemonics: str) -> list[int]:
    return [isa.lookup(m).opcode for m in mnemonics]


_stats: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plan_stats(plan: Plan, executed: int, cycles: int, isa: Isa | None = None) -> Stats:
    """Statistics of the first `executed` issues of `plan` over a run of `cycles` cycles (all
    issues for a run that did not stop; the issues before the stop for one that did). Kept per
    plan: a program run many times (decode steps) pays for them once."""
    isa = isa or default_isa()
    key = (executed, cycles, id(isa))
    hit = _stats.get(plan)
    if hit is not None and hit[0] == key:
        return hit[1]
    stats = _plan_stats(plan, executed, cycles, isa)
    _stats[plan] = (key, stats)
    return stats


def _plan_stats(plan: Plan, executed: int, cycles: int, isa: Isa) -> Stats:
    chip = plan.chip
    rows = plan.issues[:executed]
    seconds = cycles / chip.clock_hz
    busy_by_q = np.bincount(rows[:, P.QUEUE], weights=rows[:, P.OCC], minlength=len(chip.slices))
    busy = {s.name: int(busy_by_q[s.index]) for s in chip.slices}
    utilization = {n: (v / cycles if cycles else 0.0) for n, v in busy.items()}
    kind_utilization = {}
    for kind in dict.fromkeys(s.kind for s in chip.slices):
        queues = [s.name for s in chip.slices if s.kind == kind]
        total = sum(busy[n] for n in queues)
        kind_utilization[kind] = total / (cycles * len(queues)) if cycles else 0.0
    op = rows[:, P.OP]
    n_read = int(np.isin(op, _opcodes(isa, "Read", "Gather")).sum())
    n_written = int(np.isin(op, _opcodes(isa, "Write", "Scatter")).sum())
    acc = op == isa.lookup("ACC").opcode
    fp16_codes = [isa.dtypes[d].code for d in ("fp16", "bf16")]
    n_fp16 = int((acc & np.isin(rows[:, P.DTYPE], fp16_codes)).sum())
    per_acc = 2 * int(chip.p("mxm_rows")) * int(chip.p("mxm_cols"))
    int8_ops, fp16_ops = (int(acc.sum()) - n_fp16) * per_acc, n_fp16 * per_acc
    read_b, written_b = n_read * chip.lanes, n_written * chip.lanes

    def rate(x: float) -> float:
        return x / seconds if seconds else 0.0

    return Stats(
        cycles=cycles, seconds=seconds, busy=busy, utilization=utilization,
        kind_utilization=kind_utilization, sram_bytes_read=read_b, sram_bytes_written=written_b,
        sram_bytes_per_s=rate(read_b + written_b), sram_peak_bytes_per_s=chip.sram_bytes_per_s,
        mxm_int8_ops=int8_ops, mxm_fp16_ops=fp16_ops, mxm_int8_ops_per_s=rate(int8_ops),
        mxm_fp16_ops_per_s=rate(fp16_ops), mxm_int8_peak_ops_per_s=chip.mxm_int8_ops_per_s,
        mxm_fp16_peak_ops_per_s=chip.mxm_fp16_ops_per_s,
    )


@dataclass(eq=False)
class RunResult:
    """The outcome of a run: how long, whether it stopped, what went wrong, what is in SRAM."""

    program: Program
    chip: Chip
    cycles: int
    stopped: bool
    violations: list[Violation]
    sram: np.ndarray
    stats: Stats
    engine: str = "reference"
    events: object = None  # the fast core's event log when traced
    extra: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Run time at the preset's clock."""
        return self.cycles / self.chip.clock_hz

    @property
    def ok(self) -> bool:
        return not self.violations

    def tensor(self, name: str) -> np.ndarray:
        """A named tensor's values as they are in SRAM now (ints as ints, fp16 as float16, bf16,
        fp8e4m3 and fp32 as float32)."""
        t = symbol(self.program, name)
        return decode_tensor(read_image(self.sram, self.chip, t), t)
