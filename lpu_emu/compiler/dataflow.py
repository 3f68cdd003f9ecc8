"""One iteration of a software pipeline as a small dataflow graph, timed to the cycle.

A kernel's work per vector (a row of a tensor) is a DAG: `Read` sources (a tensor's vector, its
byte planes read from their slices), `Op`s at a unit (a VXM ALU, an SXM unit, an MXM plane) and
`Write` sinks. Nothing on the chip waits: an op reads its inputs at the cycle they pass its
position, so the DAG is timed exactly:

1. ASAP: an op issues when its last input arrives; reads are free (they are issued for the cycle
   their consumer needs them), so an op fed only by reads issues at 0.
2. ALAP: an op with slack moves as late as its consumers allow, so fewer values must wait.
3. A value that arrives before its consumer issues waits in a chain of VXM `Mov`s (the only place
   a value can wait is on a new stream, one Mov latency at a time).
4. Streams: every value gets its own stream group in the direction of its consumers; units get
   queues (the large VXM ALUs for Exp/Tanh/Erf/Rsqrt).

`timed(...)` returns `Slot`s: instructions relative to the iteration's start, with the operand
that advances per iteration (an SRAM address, by Repeat; an accumulator, by explicit copies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lpu_emu.compiler.placement import Loc
from lpu_emu.compiler.target import Target
from lpu_emu.errors import LpuError
from lpu_emu.spec.encoding import imm_to_bits, stream_code

LARGE = ("Exp", "Rsqrt", "Tanh", "Erf")


class CompileError(LpuError):
    """A compiler invariant broke: a bug in lpu-emu, never the user's input."""


@dataclass(eq=False)
class Read:
    loc: Loc
    chunk: int
    row: int  # row of iteration 0
    step: int = 1  # row advance per iteration
    note: str = ""

    @property
    def slices(self):
        return self.loc.chunks[self.chunk].slices

    @property
    def dtype(self) -> str:
        return self.loc.dtype


@dataclass(eq=False)
class Op:
    mnemonic: str
    dtype: str
    args: tuple[Any, ...]  # Read | Op
    unit: str = "vxm"  # "vxm" | "sxm" | "mxm"
    queue: int | None = None  # fixed queue (MXM plane, SXM unit); VXM ALUs are assigned
    imm: Any = None  # immediate operand value (AddI, MulI, shift, lane map index)
    dtype2: str | None = None  # Cvt's target
    acc: int | None = None  # ACC: accumulator of iteration 0 (advances by acc_step)
    acc_step: int = 0
    note: str = ""

    @property
    def out_dtype(self) -> str:
        if self.mnemonic == "ACC":
            return "int32" if self.dtype == "int8" else "fp32"
        return self.dtype2 or self.dtype


@dataclass(eq=False)
class Fixed:
    """A value on a stream group that the graph does not produce (a recurrence's feedback):
    read where and when its consumer issues, never routed or timed."""

    out_stream: int


@dataclass(eq=False)
class Write:
    value: Any  # Read | Op
    loc: Loc
    chunk: int
    row: int
    step: int = 1
    note: str = ""

    @property
    def slices(self):
        return self.loc.chunks[self.chunk].slices


@dataclass(frozen=True)
class Slot:
    """One instruction of the iteration template."""

    queue: int
    mnemonic: str
    dtype: str | None
    operands: tuple[tuple[str, Any], ...]
    t: int
    vary: str | None = None  # operand advancing per iteration: "mem" (Repeat) or "acc"
    step: int = 0
    note: str = ""


@dataclass
class Streams:
    """Stream groups handed out to one dataflow graph: indices [lo, hi) of each direction but
    the `blocked` ones (those another graph of the kernel uses at the same time).

    Graphs of one kernel that run at the same time take disjoint indices; graphs that run one
    after another (the passes of a matmul) take the same ones again."""

    lo: int
    hi: int
    used: dict[bool, set[int]] = field(default_factory=lambda: {False: set(), True: set()})
    blocked: dict[bool, set[int]] = field(default_factory=lambda: {False: set(), True: set()})

    held: dict[bool, set[int]] = field(default_factory=lambda: {False: set(), True: set()})
    from_top: bool = False  # hand out the highest free group first (see `Alus`)
    # free, but handed out only when no other group is (the pass before's: `kernels.after`)
    avoid: dict[bool, set[int]] = field(default_factory=lambda: {False: set(), True: set()})

    def take(self, west: bool, width: int, at: int | None = None) -> int:
        """A free group of `width` streams aligned to its width (at index `at`, if given: a
        group `hold` kept for the value that must sit there), one outside `avoid` if any."""
        taken = self.used[west] | self.blocked[west] | (self.held[west] if at is None
                                                         else set())
        first = -(-self.lo // width) * width
        bases = [at] if at is not None else list(range(first, self.hi - width + 1, width))
        if self.from_top and at is None:
            bases.reverse()
        for skip in (taken | self.avoid[west], taken):
            for base in bases:
                if not any(base + i in skip for i in range(width)):
                    self.used[west].update(range(base, base + width))
                    return base
        raise CompileError(f"no free group of {width} streams flowing "
                           f"{'west' if west else 'east'}")

    def hold(self, west: bool, base: int, width: int) -> None:
        self.held[west].update(range(base, base + width))

    def free(self, west: bool) -> int:
        return self.hi - self.lo - len(self.used[west] | self.blocked[west] | self.held[west])



class Alus:
    """The VXM ALU queues a kernel may use, handed out one per op; and the SXM units.

    MXM kernels take their feeds' ALUs and streams from the bottom (and their weight loads' from
    the top); kernels of VXM work alone take theirs `from_top` (ALUs from the last before the
    loads' two, streams from the highest group down), so the two kinds share less and their
    spans can overlap in the schedule."""

    def __init__(self, target: Target, queues: list[int] | None = None,
                 from_top: bool = False, avoid: set[int] | frozenset[int] = frozenset()) -> None:
        self.sxm = {w: [s.index for s in target.sxm("W" if w else "E")] for w in (True, False)}
        order = queues or [s.index for s in target.vxm_alus]
        if from_top:
            order = order[-3::-1] + order[-2:]
        order = [q for q in order if q not in avoid]
        self.large = [q for q in order if q in target.large_alus]
        self.small = [q for q in order if q not in target.large_alus]
        self.taken: list[int] = []

    def take_sxm(self, west: bool) -> int:
        """An SXM unit on the side the data is on (the other side's if this one has none)."""
        for side in (west, not west):
            if self.sxm[side]:
                return self.sxm[side].pop(0)
        raise CompileError("no free SXM unit")

    def take(self, mnemonic: str) -> int:
        pools = [self.large] if mnemonic in LARGE else [self.small, self.large]
        for pool in pools:
            if pool:
                q = pool.pop(0)
                self.taken.append(q)
                return q
        raise CompileError(f"no free VXM ALU for {mnemonic}")


def _position(target: Target, node) -> int:
    if isinstance(node, Op):
        if node.unit == "vxm":
            return target.vxm_position
        return target.chip.slices[node.queue].position
    raise CompileError(f"{node!r} has no single position")


def _topo(sinks: list) -> list:
    order, seen = [], set()

    def visit(n) -> None:
        if id(n) in seen:
            return
        seen.add(id(n))
        for a in (n.args if isinstance(n, Op) else (n.value,) if isinstance(n, Write) else ()):
            visit(a)
        order.append(n)

    for s in sinks:
        visit(s)
    return order


def timed(target: Target, sinks: list, streams: Streams, alus: Alus) -> list[Slot]:
    """Time one iteration of the DAG that ends in `sinks` (Writes, or Ops nobody consumes)."""
    order = _topo(sinks)
    consumers: dict[int, list] = {id(n): [] for n in order}
    for n in order:
        for a in (n.args if isinstance(n, Op) else (n.value,) if isinstance(n, Write) else ()):
            consumers[id(a)].append(n)
    ops = [n for n in order if isinstance(n, Op)]
    for op in ops:
        if op.unit == "vxm" and op.queue is None:
            op.queue = alus.take(op.mnemonic)
        elif op.unit == "sxm" and op.queue is None:
            src = op.args[0]
            west = (src.slices[0].position < target.vxm_position if isinstance(src, Read)
                    else True)
            op.queue = alus.take_sxm(west)
    lat = {id(op): target.latency(op.mnemonic) for op in ops}
    pos = {id(op): _position(target, op) for op in ops}
    # 1. ASAP
    t: dict[int, int] = {}
    for op in ops:
        ready = [t[id(a)] + lat[id(a)] + target.hops(pos[id(a)], pos[id(op)])
                 for a in op.args if isinstance(a, Op)]
        t[id(op)] = max(ready, default=0)
    # 2. ALAP for ops with slack (latest consumer time bounds them)
    for op in reversed(ops):
        uses = [c for c in consumers[id(op)] if isinstance(c, Op)]
        if not uses or any(isinstance(c, Write) for c in consumers[id(op)]):
            continue
        latest = min(t[id(c)] - target.hops(pos[id(op)], pos[id(c)]) for c in uses) - lat[id(op)]
        bound = [t[id(a)] + lat[id(a)] + target.hops(pos[id(a)], pos[id(op)])
                 for a in op.args if isinstance(a, Op)]
        if latest > t[id(op)] and all(b <= latest for b in bound):
            t[id(op)] = latest
    slots: list[Slot] = []
    for n in order:  # values that must sit on given streams (an LW's load group) get them
        if getattr(n, "at", None) is not None:
            dtype = n.out_dtype if isinstance(n, Op) else n.dtype
            for west in (True, False):
                streams.hold(west, n.at, target.width(dtype))
    # 3. values: a stream group each, Mov chains for early arrivals at VXM consumers
    for n in order:
        if isinstance(n, (Write, Fixed)):
            continue
        _route(target, n, consumers[id(n)], t, lat, pos, streams, alus, slots)
    for op in ops:
        slots.append(_op_slot(target, op, t[id(op)]))
    return slots


def _route(target: Target, n, uses: list, t, lat, pos, streams: Streams, alus: Alus,
           slots: list[Slot]) -> None:
    """Give value n a stream group toward its consumers; time reads and writes; add Movs."""
    vxm = target.vxm_position
    dtype = n.out_dtype if isinstance(n, Op) else n.dtype
    w = target.width(dtype)
    if isinstance(n, Op) and getattr(n, "out_stream", None) is not None:
        return  # a recurrence: its result goes to the stream it was given
    if not uses:
        outs = isinstance(n, Op) and any(o.kind == "stream" and o.role == "out"
                                         for o in target.ins(n.mnemonic).operands)
        if outs:  # an unconsumed result (an intermediate ACC): flows off the chip
            west = n.unit == "mxm" and pos[id(n)] > vxm
            n.out_stream = stream_code(streams.take(west, w), west)
        return
    # the time each consumer needs the value at its position
    need = []
    for c in uses:
        if isinstance(c, Op):
            need.append((c, t[id(c)], pos[id(c)]))
    origin = pos[id(n)] if isinstance(n, Op) else None
    targets = [p for _, _, p in need] + [s.position for c in uses if isinstance(c, Write)
                                         for s in c.slices]
    if origin is None:  # a Read: its consumers must all sit on one side of its slices
        sides = {s.position < p for s in n.slices for p in targets}
        if len(sides) != 1:
            raise CompileError(f"read of {n.loc.name} has consumers on both sides")
        west = not sides.pop()
    else:
        sides = {p < origin for p in targets if p != origin}
        if len(sides) > 1:
            raise CompileError(f"{n.mnemonic} has consumers on both sides")
        west = sides.pop() if sides else streams.free(True) > streams.free(False)
    base = streams.take(west, w, getattr(n, "at", None))
    code = stream_code(base, west)
    if isinstance(n, Op):
        n.out_stream = code
        placed = t[id(n)] + lat[id(n)]
        arrival = {id(c): placed + target.hops(origin, p) for c, _, p in need}
        late = [(c, tc) for c, tc, _ in need if tc > arrival[id(c)]]
        for c, tc in late:  # wait in a Mov chain at the VXM
            _delay(target, n, c, code, placed + target.hops(origin, vxm), tc, streams, alus,
                   slots, w)
        for c in uses:
            if isinstance(c, Write):
                _write_slots(target, c, code, origin, placed, slots)
        return
    # a Read: issue each plane so that it reaches the earliest consumer when it needs it
    n.out_stream = code
    if need:
        first_t = min(tc for _, tc, _ in need)
        first_pos = next(p for _, tc, p in need if tc == first_t)
    else:  # a copy: read, write elsewhere
        first_t, first_pos = 0, uses[0].slices[0].position
    ch = n.loc.chunks[n.chunk]
    for p, s in enumerate(ch.slices):
        issue = first_t - target.hops(s.position, first_pos) - target.latency("Read")
        slots.append(Slot(s.index, "Read", n.dtype, (("src", (ch.bank, ch.addr + n.row)),
                                                     ("dst", stream_code(base + p, west))),
                          issue, "mem", n.step, n.note))
    for c, tc, _ in need:
        if tc != first_t:
            _delay(target, n, c, code, first_t, tc, streams, alus, slots, w)
    for c in uses:
        if isinstance(c, Write):
            placed = first_t - target.hops(ch.slices[0].position, first_pos)
            raise CompileError(f"direct copy of {n.loc.name} is not supported ({placed})")


def _delay(target: Target, n, consumer: Op, code: int, at_vxm: int, when: int, streams: Streams,
           alus: Alus, slots: list[Slot], w: int) -> None:
    """Hold value n (passing the VXM at at_vxm on `code`) until `when` with Mov hops."""
    step = target.latency("Mov")
    gap = when - at_vxm
    if consumer.unit != "vxm" or gap % step or gap < 0:
        raise CompileError(f"cannot delay a value by {gap} cycles for {consumer.mnemonic}")
    dtype = n.out_dtype if isinstance(n, Op) else n.dtype
    cur, now = code, at_vxm
    for _ in range(gap // step):
        q = alus.take("Mov")
        west = streams.free(True) > streams.free(False)  # it waits at the VXM: any direction
        nxt = stream_code(streams.take(west, w), west)
        slots.append(Slot(q, "Mov", dtype, (("x", cur), ("z", nxt)), now, note=consumer.note))
        cur, now = nxt, now + step
    consumer.delayed = getattr(consumer, "delayed", {})
    consumer.delayed[id(n)] = cur


def _write_slots(target: Target, wr: Write, code: int, origin: int, placed: int,
                 slots: list[Slot]) -> None:
    ch = wr.loc.chunks[wr.chunk]
    for p, s in enumerate(ch.slices):
        slots.append(Slot(s.index, "Write", wr.loc.dtype,
                          (("src", code + p), ("dst", (ch.bank, ch.addr + wr.row))),
                          placed + target.hops(origin, s.position), "mem", wr.step, wr.note))


def _arg_code(op: Op, a) -> int:
    return getattr(op, "delayed", {}).get(id(a), a.out_stream)


def _op_slot(target: Target, op: Op, t: int) -> Slot:
    ins = target.ins(op.mnemonic)
    values: dict[str, Any] = {}
    args = list(op.args)
    for o in ins.operands:
        if o.kind == "stream" and o.role == "in":
            values[o.name] = _arg_code(op, args.pop(0))
        elif o.kind == "stream":
            values[o.name] = op.out_stream
        elif o.kind == "dtype2":
            values[o.name] = target.isa.dtypes[op.dtype2].code
        elif o.kind == "acc" or o.name == "acc":
            values[o.name] = op.acc or 0
        elif o.default is not None and op.imm is None:
            values[o.name] = o.default
        elif o.kind == "imm32":
            values[o.name] = imm_to_bits(op.imm, target.isa.dtypes[op.dtype])
        else:
            values[o.name] = op.imm
    vary = "acc" if op.acc_step else None
    return Slot(op.queue, op.mnemonic, op.dtype if ins.typed else None,
                tuple(values.items()), t, vary, op.acc_step, op.note)
