"""Kernel builders: one lowered chip operation -> a timed Kernel.

- `elementwise`: an Expr over tensors, one output vector per cycle through a VXM ALU chain.
- `matmul`: weights stationary on up to all MXM planes (one output column tile each), activation
  rows streaming through them, accumulating over the K tiles in the planes' accumulators, and the
  epilogue (bias, activation, residual, ...) fused on the VXM on the way to SRAM.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.dataflow import (
    Alus,
    CompileError,
    Fixed,
    Op,
    Read,
    Slot,
    Streams,
    Write,
    timed,
)
from lpu_emu.compiler.kernel import Kernel, Pipe
from lpu_emu.compiler.placement import Loc
from lpu_emu.compiler.target import Target
from lpu_emu.spec.encoding import stream_code

SXM_OPS = ("Distribute", "Permute", "Rotate", "ShiftUp", "ShiftDown")


def build(e, c: int, locs: dict[str, Loc], memo: dict, note: str, extra: dict | None = None,
          r0: int = 0):
    """The dataflow node for Expr e at output chunk c from row r0 (Leaf reads, VXM Ops)."""
    key = id(e) if not isinstance(e, E.Leaf) else e
    if key in memo:
        return memo[key]
    if isinstance(e, E.Leaf):
        if extra and e.name in extra:  # a node computed elsewhere (an MXM result)
            node = extra[e.name]
        else:
            loc = locs[e.name]
            chunk, row, step = {"full": (c, r0 + e.row, 1), "row": (c, e.row, 0),
                                "col": (0, r0 + e.row, 1)}[e.mode]
            chunk = chunk if e.chunk is None else e.chunk
            node = Read(loc, chunk, row, step, note)
    else:
        args = tuple(build(a, c, locs, memo, note, extra, r0) for a in e.args)
        node = Op(e.mnemonic, e.dtype, args, imm=e.imm, dtype2=e.dtype2, note=note)
        if e.mnemonic in SXM_OPS:  # lane movement: on an SXM unit (chosen when timed)
            node.unit = "sxm"
    memo[key] = node
    return node


Placed = tuple[set[tuple[int, int]], int, int]  # (queue, position)s, first and last landing


def operand_width(target: Target, o, dtype: str | None, ops: dict) -> int:
    """Streams a stream operand of an instruction takes (its ISA width kind; `ops` the slot's
    operand values)."""
    if o.width == "one":
        return 1
    if o.width == "acc":
        return 4
    if o.width == "dtype2":
        return next(d.width for d in target.isa.dtypes.values() if d.code == ops["to"])
    if o.width == "load":
        return int(ops["rows"]) * target.width(dtype)
    return target.width(dtype)


def placements(target: Target, pipe: Pipe) -> dict[int, Placed]:
    """Stream code -> the (queue, position) pairs that place values on it in this pipe, and the
    first and last cycle (relative to the pipe) a value lands on it: issue plus latency."""
    if pipe.placements is not None:
        return pipe.placements
    out: dict[int, Placed] = {}
    for s in pipe.slots:
        lands = s.t + target.latency(s.mnemonic)
        ops = dict(s.operands)
        for o in target.ins(s.mnemonic).operands:
            if o.kind != "stream" or o.role != "out":
                continue
            for i in range(operand_width(target, o, s.dtype, ops)):
                where, lo, hi = out.get(ops[o.name] + i, (set(), lands, lands))
                where.add((s.queue, target.chip.slices[s.queue].position))
                out[ops[o.name] + i] = (where, min(lo, lands), max(hi, lands))
    pipe.placements = out
    return out


def last_reads(target: Target, pipe: Pipe) -> dict[int, int]:
    """Stream code -> the last cycle (relative to the pipe) a slot of the pipe reads it."""
    if pipe.reads is None:
        pipe.reads = {}
        for s in pipe.slots:
            for code in consumed(target, s):
                pipe.reads[code] = max(pipe.reads.get(code, s.t), s.t)
    return pipe.reads


def after(target: Target, pipes: list[Pipe], pipe: Pipe) -> int:
    """The earliest start of `pipe` after the pipes before it in one kernel.

    On a queue both use, its first issue comes after the earlier pipe's last. And a stream
    index that the earlier pipe uses from other places than this one (other MEM slices: another
    chunk or tensor) must carry the earlier pipe's values to their consumers first: a value
    placed on the same diagonal upstream of one still in flight would replace it. So then this
    pipe places nothing on it until the earlier one's last value there has landed and been
    read (a later placement is never upstream of an earlier one on its diagonal, so none of
    the earlier values can then be seen in place of this pipe's). Pipes placing from the same
    places (the next rows of the same tensors) follow back to back: their first value lands
    after the earlier pipe's last (two ops of different latencies on one ALU)."""
    if not pipes:
        return -pipe.first()
    mine = placements(target, pipe)
    by_queue: dict[int, int] = {}
    for s in pipe.slots:
        by_queue[s.queue] = min(by_queue.get(s.queue, s.t), s.t)
    lo = -(1 << 40)
    for p in pipes:
        tail = p.start + (p.count - 1) * p.period
        theirs = placements(target, p)
        for code, (where, _, last) in theirs.items():
            if code not in mine:
                continue
            if mine[code][0] != where:
                read = last_reads(target, p).get(code, last)
                lo = max(lo, tail + max(last, read) + 1 - mine[code][1])
            else:
                lo = max(lo, tail + last + 1 - mine[code][1])
        for s in p.slots:
            if s.queue in by_queue:
                lo = max(lo, tail + s.t + target.occupancy(s.mnemonic, s.dtype)
                         - by_queue[s.queue])
    return lo


def _after_first(target: Target, pipes: list[Pipe], pipe: Pipe) -> int:
    """`after`, and no earlier than the kernel's first issue: a VXM pass that shares nothing
    with the pipes before it starts with them."""
    start = after(target, pipes, pipe)
    if pipes:
        start = max(start, min(p.first() for p in pipes) - min(s.t for s in pipe.slots))
    return start


@dataclass(frozen=True)
class Segment:
    """out[row0 : row0 + rows, chunk (all chunks if None)] = ex."""

    ex: object
    out: Loc
    row0: int = 0
    rows: int | None = None
    chunk: int | None = None


def consumed(target: Target, s: Slot) -> list[int]:
    """The stream codes a slot reads (at its issue cycle)."""
    ops = dict(s.operands)
    codes = []
    for o in target.ins(s.mnemonic).operands:
        if o.kind == "stream" and o.role == "in":
            codes += range(ops[o.name], ops[o.name] + operand_width(target, o, s.dtype, ops))
    return codes


@dataclass(frozen=True)
class Held:
    """The VXM ALUs and the stream indices (by direction: west True) a kernel uses: what the
    next VXM kernel avoids where it can, so that the scheduler may start it before this one is
    done with them (`schedule.spans`)."""

    alus: frozenset[int]
    streams: dict[bool, set[int]]


def elementwise(target: Target, note: str, segments: list[Segment],
                locs: dict[str, Loc], before: Held | None = None) -> Kernel:
    """Each segment's Expr, one vector a cycle, chunk after chunk, segment after segment.

    A pass takes other streams and ALUs than the pass before it (the first, than the kernel
    `before` it) where there are enough: it reads other slices (the next chunk, the other way
    of a softmax's heads), and on the same streams it could place nothing until the pass before
    had issued its last instruction (`after`); on streams and ALUs of its own it runs beside
    that pass, or follows it back to back where they share slices."""
    pipes: list[Pipe] = []
    work = 0
    prev = before.streams if before else None
    prev_alus = set(before.alus) if before else set()
    for seg in segments:
        rows = seg.out.rows - seg.row0 if seg.rows is None else seg.rows
        for c in range(seg.out.nchunks) if seg.chunk is None else (seg.chunk,):
            slots, s, taken = _other_alus(
                target, lambda st, units, seg=seg, c=c: timed(
                    target, [Write(build(seg.ex, c, locs, {}, note, None, seg.row0), seg.out,
                                   c, seg.row0, 1, note)], st, units),
                None, prev_alus, None, prev, from_top=True)
            pipe = Pipe(slots, rows, 0)
            pipe.start = _after_first(target, pipes, pipe)
            pipes.append(pipe)
            prev, prev_alus = s.used, taken
            work += E.size(seg.ex)[0] * rows
    return Kernel(note, pipes, "vxm", {"alu": work})


@dataclass(frozen=True)
class Src:
    """Rows row.. of chunk `chunk` of a placed tensor."""

    loc: Loc
    chunk: int
    row: int = 0


@dataclass(frozen=True)
class Pass:
    """One use of the planes: install `k_rows` weight rows per plane (tile i's from w[i], each
    row through `w_conv` on its way, e.g. an activation rounded to the MXM dtype; `install` is IW,
    or IWT to install them transposed), then stream `rows` activation rows from `x` through
    `x_conv` into every plane, accumulating. The conversions are conv(node, note, chunk)."""

    w: tuple[Src, ...]
    k_rows: int
    x: Src
    x_conv: Callable
    w_conv: Callable | None = None
    install: str = "IW"


@dataclass(frozen=True)
class Job:
    """Passes accumulated into accumulators 0..rows-1 of every plane, then written:
    out[out_row.., out_chunks[i]] = epilogue(chunk) with Leaf "@acc" for plane i's result."""

    passes: tuple[Pass, ...]
    rows: int
    out: Loc
    out_chunks: tuple[int, ...]
    out_row: int
    epilogue: Callable[[int], object]


def _same_weights(a: Pass, b: Pass) -> bool:
    return (a.w, a.w_conv, a.install, a.k_rows) == (b.w, b.w_conv, b.install, b.k_rows)


def mxm(target: Target, note: str, jobs: list[Job], mxm_dtype: str, planes: list[int],
        locs: dict[str, Loc], sets: int = 1) -> Kernel:
    """Run the jobs one after another on the planes; an install is shared by consecutive passes
    with the same weights (even across jobs). With `sets` > 1 the planes split into that many
    sets, job i running on set i mod sets with each set's own time cursor: one set clears,
    loads and installs while another computes (their pipes still follow `after` wherever they
    share queues or streams, e.g. the MEM slices of one activation).

    Three things pace it: a plane's queue (ABC, LW, IW, ACC in order), the weight loads (their
    own streams, the top of the index range, and their own ALUs) and the activation feeds with
    the epilogue (the rest); loads and feeds each follow `after` among themselves, and overlap
    each other (the next weights load while the plane still computes with the installed ones)."""
    pipes: list[Pipe] = []
    loads: list[Pipe] = []
    feeds: list[Pipe] = []
    n = len(planes) // sets
    cursors = [0] * sets
    lat_iw = max(target.latency("IW"), target.occupancy("IW"))
    period = target.acc_period(mxm_dtype)  # fp16/bf16 products hold the plane pair 2 cycles
    groups, blocked = _groups_blocked(target, jobs, planes, mxm_dtype)
    alus = [s.index for s in target.vxm_alus]
    load_alus, feed_alus = alus[-2:], alus[:-2]
    prevs: list[Pass | None] = [None] * sets
    last_feed: list[dict[bool, set[int]] | None] = [None] * sets
    last_alus: list[set[int]] = [set() for _ in range(sets)]
    # each set's feeds keep to their own streams, so that one set's feed need not wait for
    # another's values to clear a stream (`after`)
    feeding: list[dict[bool, set[int]]] = [{True: set(), False: set()} for _ in range(sets)]
    all_planes = planes
    for k, job in enumerate(jobs):
        planes = all_planes[k % sets * n:][:n]
        t, prev = cursors[k % sets], prevs[k % sets]
        for q in planes:  # clear the accumulators
            pipes.append(Pipe([Slot(q, "ABC", None, (("acc", 0),), 0, "acc", 1, note)],
                              job.rows, t))
        t += job.rows
        for i, ps in enumerate(job.passes):
            if prev is None or not _same_weights(ps, prev):
                for pipe in _load(target, note, ps, planes, mxm_dtype, groups, load_alus):
                    lw_ts = [s.t for s in pipe.slots if s.mnemonic == "LW"]
                    pipe.start = _start(target, pipe, t - min(lw_ts), loads, feeds)
                    loads.append(pipe)
                    t = pipe.start + max(lw_ts) + pipe.count
                for q in planes:
                    pipes.append(Pipe([Slot(q, ps.install, None, (), 0, note=note)], 1, t))
                t += lat_iw
            prev = ps
            last = i == len(job.passes) - 1
            others = [u for j, u in enumerate(feeding) if j != k % sets]
            taken = {w: b.union(*(u[w] for u in others)) for w, b in blocked.items()}
            slots, s_main, last_alus[k % sets] = _other_alus(
                target, lambda s, alus, ps=ps, job=job, planes=planes, last=last: timed(
                    target, _feed(target, note, ps, job, planes, mxm_dtype, last, locs), s,
                    alus), feed_alus, last_alus[k % sets], taken, last_feed[k % sets])
            pipe = Pipe(slots, job.rows, period=period)
            last_feed[k % sets] = s_main.used
            acc_ts = [s.t for s in pipe.slots if s.mnemonic == "ACC"]
            pipe.start = _start(target, pipe, t - min(acc_ts), feeds, loads)
            feeds.append(pipe)
            for w, used in s_main.used.items():
                feeding[k % sets][w] |= used
            t = pipe.start + max(acc_ts) + job.rows * period
        cursors[k % sets], prevs[k % sets] = t, prev
    macs = sum(j.rows * ps.k_rows * sum(j.out.chunk_cols(c) for c in j.out_chunks)
               for j in jobs for ps in j.passes)
    return Kernel(note, pipes + loads + feeds, "mxm", {"macs": macs})


def _other_alus(target: Target, make: Callable, pool: list[int] | None, avoid: set[int],
                base: dict[bool, set[int]] | None, prefer_not: dict[bool, set[int]] | None,
                from_top: bool = False):
    """make(streams, alus) -> a pass's slots on ALUs of `pool` (None: all) other than the pass
    before's (`avoid`) where there are enough, so that it need not wait for that pass to leave
    them, and on other streams (`_other_streams`); (slots, the Streams used, the ALUs taken)."""
    for shun in ([avoid] if avoid else []) + [set()]:
        taken: list[int] = []

        def one(s: Streams, shun=shun, taken=taken) -> list[Slot]:
            units = Alus(target, pool, from_top=from_top, avoid=shun)
            slots = make(s, units)
            taken[:] = units.taken
            return slots
        try:
            slots, s = _other_streams(target, one, base, prefer_not, from_top)
        except CompileError:
            if shun:
                continue
            raise
        return slots, s, set(taken)
    raise AssertionError("unreachable: the last try avoids nothing")


def _other_streams(target: Target, make: Callable, base: dict[bool, set[int]] | None,
                   prefer_not: dict[bool, set[int]] | None, from_top: bool = False):
    """make(streams) -> slots, on streams outside `base` and, where there are enough, outside
    `prefer_not` too (the pass before's: a pass reading other slices than it follows it back
    to back on streams of its own, see `after`); else on as few of those as the groups left
    allow (`Streams.avoid`), else on any; (slots, the Streams used)."""
    no = {w: set((base or {}).get(w, ())) for w in (True, False)}
    extra = {w: set((prefer_not or {}).get(w, ())) for w in (True, False)}
    ways = [Streams(0, target.streams, blocked={w: no[w] | extra[w] for w in no},
                    from_top=from_top),
            Streams(0, target.streams, blocked=no, from_top=from_top, avoid=extra)
            ] if prefer_not else []
    for s in ways:
        with contextlib.suppress(CompileError):
            return make(s), s
    s = Streams(0, target.streams, blocked=no, from_top=from_top)
    return make(s), s


def _groups_blocked(target: Target, jobs: list[Job], planes: list[int], mxm_dtype: str):
    """Each plane's load group (`_load_groups`) and the streams the groups take from the feeds,
    by direction."""
    converted = any(ps.w_conv is not None for j in jobs for ps in j.passes)
    rows = max([1] + [len(src.loc.stripes) for j in jobs for ps in j.passes for src in ps.w])
    groups = _load_groups(target, planes, mxm_dtype, converted, rows)
    blocked: dict[bool, set[int]] = {w: set() for w in (True, False)}
    for west, base, need in groups.values():
        for side in (west, not west) if converted else (west,):  # a mask passes the VXM
            blocked[side].update(range(base, base + need))
    return groups, blocked


def mxm_split(target: Target, note: str, jobs: list[Job], mxm_dtype: str, planes: list[int],
              locs: dict[str, Loc]) -> Kernel:
    """Jobs of one output chunk and an even number of passes, their passes split over two
    planes: the planes take the passes in pairs, each fed its own activation in one pipe and
    accumulating its own half, and the job's last pair adds the two halves on their way into
    the epilogue. Where the passes read different tensors (a value's bf16 parts, the chunks of
    its K), the two feeds run at once, and the job takes half the ACC cycles. Float products
    only (int32 sums would need an integer add); the sum of two fp32 halves rounds differently
    from one running sum, within the mode's accuracy."""
    if len(planes) != 2 or mxm_dtype == "int8":
        raise CompileError("a split needs two planes and a float MXM dtype")
    if any(len(j.passes) % 2 or len(j.out_chunks) != 1 for j in jobs):
        raise CompileError("a split needs jobs of one output chunk and an even number of passes")
    pipes: list[Pipe] = []
    loads: list[Pipe] = []
    feeds: list[Pipe] = []
    lat_iw = max(target.latency("IW"), target.occupancy("IW"))
    period = target.acc_period(mxm_dtype)
    groups, blocked = _groups_blocked(target, jobs, planes, mxm_dtype)
    alus = [s.index for s in target.vxm_alus]
    load_alus, feed_alus = alus[-2:], alus[:-2]
    ready = {q: 0 for q in planes}  # when each plane's queue takes its next instruction
    prev: dict[int, Pass | None] = {q: None for q in planes}
    last_feed: dict[bool, set[int]] | None = None
    last_alus: set[int] = set()
    for job in jobs:
        t = max(ready.values())
        for q in planes:
            pipes.append(Pipe([Slot(q, "ABC", None, (("acc", 0),), 0, "acc", 1, note)],
                              job.rows, t))
            ready[q] = t + job.rows
        # the passes by weights, the first half on one plane and the second on the other: a
        # plane keeps its install across the pairs and the jobs where the halves' weights do
        # (a sum's two K tiles: each plane one tile, loaded once)
        order = sorted(job.passes, key=_weights_key)
        half = len(order) // 2
        for r in range(half):
            pair = dict(zip(planes, (order[r], order[r + half]), strict=True))
            for q, ps in pair.items():
                if prev[q] is not None and _same_weights(ps, prev[q]):
                    continue
                one = Pass((ps.w[0],), ps.k_rows, ps.x, ps.x_conv, ps.w_conv, ps.install)
                for pipe in _load(target, note, one, [q], mxm_dtype, groups, load_alus):
                    lw_ts = [s.t for s in pipe.slots if s.mnemonic == "LW"]
                    pipe.start = _start(target, pipe, ready[q] - min(lw_ts), loads, feeds)
                    loads.append(pipe)
                    ready[q] = pipe.start + max(lw_ts) + pipe.count
                pipes.append(Pipe([Slot(q, ps.install, None, (), 0, note=note)], 1, ready[q]))
                ready[q] += lat_iw
                prev[q] = ps
            last = r == half - 1
            slots, s_main, last_alus = _other_alus(
                target, lambda s, alus, pair=pair, job=job, last=last: timed(
                    target, _split_feed(target, note, pair, job, mxm_dtype, last, locs), s,
                    alus), feed_alus, last_alus, blocked, last_feed)
            pipe = Pipe(slots, job.rows, period=period)
            _check_period(target, pipe)
            last_feed = s_main.used
            acc_t = {s.queue: s.t for s in pipe.slots if s.mnemonic == "ACC"}
            pipe.start = _start(target, pipe, max(ready[q] - acc_t[q] for q in planes),
                                feeds, loads)
            feeds.append(pipe)
            for q in planes:
                ready[q] = pipe.start + acc_t[q] + job.rows * period
    macs = sum(j.rows * ps.k_rows * j.out.chunk_cols(j.out_chunks[0])
               for j in jobs for ps in j.passes)
    return Kernel(note, pipes + loads + feeds, "mxm", {"macs": macs})


def _check_period(target: Target, pipe: Pipe) -> None:
    """A pipe whose iterations would issue twice on one queue in one cycle (two reads of one
    slice, `period` cycles apart in the template) cannot be: a CompileError, for the caller to
    take another kernel."""
    busy: dict[int, set[int]] = {}
    for s in pipe.slots:
        taken = busy.setdefault(s.queue, set())
        cycles = {(s.t + k) % pipe.period for k in range(target.occupancy(s.mnemonic, s.dtype))}
        if taken & cycles or len(cycles) == pipe.period and taken:
            raise CompileError(f"two issues on queue {s.queue} a pipe period apart")
        taken |= cycles


def _weights_key(ps: Pass) -> tuple:
    return tuple((w.loc.name, w.chunk, w.row) for w in ps.w) + (ps.k_rows, ps.install)


def _split_feed(target: Target, note: str, pair: dict[int, Pass], job: Job, mxm_dtype: str,
                last: bool, locs: dict[str, Loc]) -> list:
    """The sinks of one pair of passes: each plane's activation row through its ACC, and for
    the job's last pair the two accumulators' sum through the epilogue."""
    chip = target.chip
    (qa, a), (qb, b) = pair.items()
    if (a.x, a.x_conv) == (b.x, b.x_conv):  # one row for both: read once, a Mov each way
        xv = a.x_conv(Read(a.x.loc, a.x.chunk, a.x.row, 1, note), note, a.x.chunk)
        both_sides = len({chip.slices[q].position < target.vxm_position for q in pair}) > 1
        xs = [Op("Mov", mxm_dtype, (xv,), note=note) if both_sides else xv for _ in pair]
    else:
        xs = [ps.x_conv(Read(ps.x.loc, ps.x.chunk, ps.x.row, 1, note), note, ps.x.chunk)
              for ps in (a, b)]
    accs = [Op("ACC", mxm_dtype, (x,), unit="mxm", queue=q, acc=0, acc_step=1, note=note)
            for q, x in zip((qa, qb), xs, strict=True)]
    if not last:
        return accs
    c = job.out_chunks[0]
    total = Op("Add", "fp32", tuple(accs), note=note)
    root = build(job.epilogue(c), c, locs, {}, note, {"@acc": total}, job.out_row)
    return [Write(root, job.out, c, job.out_row, 1, note)]


def _feed(target: Target, note: str, ps: Pass, job: Job, planes: list[int], mxm_dtype: str,
          last: bool, locs: dict[str, Loc]) -> list:
    """The sinks of one pass's feed: x's row through every plane's ACC, and for the job's last
    pass each plane's result through the epilogue to its output chunk."""
    chip = target.chip
    xv = ps.x_conv(Read(ps.x.loc, ps.x.chunk, ps.x.row, 1, note), note, ps.x.chunk)
    west = {chip.slices[q].position < target.vxm_position for q in planes}
    # planes on both sides: a Mov at the VXM sends the row each way
    sides = {w: Op("Mov", mxm_dtype, (xv,), note=note) if len(west) > 1 else xv for w in west}
    accs = [Op("ACC", mxm_dtype, (sides[chip.slices[q].position < target.vxm_position],),
               unit="mxm", queue=q, acc=0, acc_step=1, note=note) for q in planes]
    if not last:
        return accs
    sinks = []
    for c, a in zip(job.out_chunks, accs, strict=True):
        root = build(job.epilogue(c), c, locs, {}, note, {"@acc": a}, job.out_row)
        sinks.append(Write(root, job.out, c, job.out_row, 1, note))
    return sinks


def _load_groups(target: Target, planes: list[int], mxm_dtype: str, converted: bool,
                 rows: int) -> dict[int, tuple[bool, int, int]]:
    """Plane -> (west, first stream, streams used) of the load group its LW reads: groups of
    `mxm_load_streams` streams aligned to the group size, the planes of a side taking them from
    the top of the index range down; `rows` rows a cycle (the weights' stripes, one row for
    an unstriped operand). A load
    that passes the VXM on its way (a head mask) takes one row a cycle and three rows' streams
    (the row, the mask, the product) on both sides of the VXM, so such loads of planes on
    either side take groups of their own."""
    size = target.chip.mxm_load_streams
    w = target.width(mxm_dtype)
    need = w * max(3, rows) if converted else w * rows  # a kernel may mix both kinds of pass
    out: dict[int, tuple[bool, int, int]] = {}
    count = {True: 0, False: 0}
    for q in planes:
        west = target.chip.slices[q].position < target.vxm_position
        side = west or converted  # converted: one count for both sides
        k = count[side]
        count[side] += 1
        base = target.streams - size * (k + 1)
        if base < 0:
            raise CompileError(f"more planes than load groups on one side ({len(planes)})")
        out[q] = (west, base, need)
    return out


def _reads(pipe: Pipe) -> set[int]:
    """The MEM queues a pipe reads from."""
    return {s.queue for s in pipe.slots if s.mnemonic == "Read"}


def _start(target: Target, pipe: Pipe, earliest: int, own: list[Pipe],
           other: list[Pipe]) -> int:
    """A load or feed pipe's start: after its own family (`after`), and after the other family
    too where both read the same slices (weights and activations of one tensor: q = k = v)."""
    start = max(earliest, after(target, own, pipe))
    if _reads(pipe) & {q for f in other for q in _reads(f)}:
        start = max(start, after(target, other, pipe))
    return start


def _load(target: Target, note: str, ps: Pass, planes: list[int], mxm_dtype: str,
          groups: dict[int, tuple[bool, int, int]], alus: list[int]) -> list[Pipe]:
    """The pipes that load the pass's weight rows into every plane, each LW's rows on the first
    streams of the plane's load group. Striped weights (constants: row r in stripe r mod n) give
    n rows an LW, one from each stripe (then one LW for the rows left over); other operands one
    row an LW."""
    blocked = {w: set(range(target.streams)) for w in (True, False)}
    for west, base, need in groups.values():
        for side in (west, not west) if ps.w_conv is not None else (west,):
            blocked[side] -= set(range(base, base + need))
    w = target.width(mxm_dtype)
    stripes = {len(src.loc.stripes) for src in ps.w}
    n = stripes.pop() if len(stripes) == 1 else 0
    n = n if n > 1 and ps.w_conv is None and all(src.row % n == 0 for src in ps.w) else 1
    full, rest = divmod(ps.k_rows, n)
    out = []
    for first, count, rows in ((0, full, n), (full, 1 if rest else 0, rest)):
        if count == 0:
            continue
        s_load = Streams(0, target.streams, blocked={k: set(v) for k, v in blocked.items()})
        loads = []
        for q, src in zip(planes, ps.w, strict=True):
            reads = []
            for j in range(rows):
                if n > 1:
                    v = Read(src.loc.stripes[j], src.chunk, src.row // n + first, 1, note)
                else:
                    v = Read(src.loc, src.chunk, src.row + first, 1, note)
                    if ps.w_conv is not None:
                        v = ps.w_conv(v, note, src.chunk)
                v.at = groups[q][1] + j * w  # row j of the LW: streams base + j*w onwards
                reads.append(v)
            loads.append(Op("LW", mxm_dtype, tuple(reads), unit="mxm", queue=q, imm=rows,
                            note=note))
        out.append(Pipe(timed(target, loads, s_load, Alus(target, alus)), count))
    return out


ACC_LEAF = E.Leaf("@acc")  # an epilogue's accumulator

# the recurrences of `colreduce`: the op, and the one that starts a chain (same latency)
CHAIN = {"max": ("Max", "MaxI", float("-inf")), "sum": ("Add", "AddI", 0.0)}


@dataclass(frozen=True)
class Reduction:
    """out[out_row, :] = reduce over rows row0 .. row0 + rows - 1 of ex; `also`, if given,
    receives ex itself at those rows (the exponentials a softmax normalises)."""

    ex: object
    rows: int
    out: Loc
    row0: int = 0
    out_row: int = 0
    also: Loc | None = None


def colreduce(target: Target, note: str, how: str, parts: list[Reduction],
              locs: dict[str, Loc], before: Held | None = None) -> Kernel:
    """Column reductions (max or sum over rows), one after another, per chunk.

    One value a cycle enters a recurrence on an ALU: acc <- op(x_r, acc). The op's result comes
    back after its latency L, so L interleaved chains share the ALU (row r joins chain r mod L),
    each started by the immediate form (x op identity); at the end a Mov lines the chains' last
    values up and one more op combines them. A reduction takes other ALUs and streams than the
    one before it (the first, than the kernel `before` it) where there are enough, so it starts
    while that one's result is combined and written, or beside it over other slices; where they
    share queues or streams, `after` keeps them apart (the chains, and the combine and write
    at the end)."""
    op, first, identity = CHAIN[how]
    lat = target.latency(op)
    if target.latency(first) != lat or lat != 2 * target.latency("Mov"):
        raise CompileError(f"colreduce needs {op} and {first} of one latency, twice Mov's")
    pipes: list[Pipe] = []
    prev: tuple[set[int], dict[bool, set[int]]] = (
        (set(before.alus), before.streams) if before else (set(), {True: set(), False: set()}))
    alu_work = 0
    for part in parts:
        for c in range(part.out.nchunks):
            try:
                chain, codes, alus, used = _chain(target, note, how, part, c, locs, *prev)
            except CompileError:
                chain, codes, alus, used = _chain(target, note, how, part, c, locs, set(),
                                                  {True: set(), False: set()})
            # the chain op of row r issues at base + r: as early as the pipes before allow
            base = max(_after_first(target, pipes, pipe) + t_op - r0
                       for r0, pipe, t_op, _ in chain)
            tail = _combine(target, note, op, lat, codes, min(lat, part.rows),
                            base + part.rows, chain[-1][3], part.out, c, part.out_row)
            # its combine and write too: the whole reduction moves later if they must
            tail.start = max(0, after(target, pipes, tail)) if pipes else 0
            base += tail.start
            for r0, pipe, t_op, _ in chain:
                pipe.start = base - t_op + r0
                pipes.append(pipe)
            pipes.append(tail)
            prev = (alus, used)
            alu_work += (E.size(part.ex)[0] + 1) * part.rows
    return Kernel(note, pipes, "vxm", {"alu": alu_work})


def _chain(target: Target, note: str, how: str, part: Reduction, c: int,
           locs: dict[str, Loc], avoid_alus: set[int], avoid_streams: dict[bool, set[int]]):
    """The recurrence pipes of one reduction of chunk c (rows 0..L-1 by the immediate form,
    then the rest), on ALUs and streams outside the ones to avoid: (pipes as (first row, pipe,
    the op's time, its ALU), the feedback codes, the ALUs used, the streams used)."""
    op, first, identity = CHAIN[how]
    lat = target.latency(op)
    west = part.out.chunks[c].slices[0].position < target.vxm_position
    s = Streams(0, target.streams, blocked={w: set(u) for w, u in avoid_streams.items()},
                from_top=True)
    # the chains' feedback f and the combine's g are read where they are placed (the VXM), so
    # they flow away from the output and leave its direction's streams to the next reduction;
    # h, the result, flows to the output (f itself is the result of a single chain)
    flows = (west, west, west) if min(lat, part.rows) == 1 else (not west, not west, west)
    codes = tuple(stream_code(s.take(w, 4), w) for w in flows)
    chain = []
    alus: set[int] = set()
    used = {w: set(u) for w, u in s.used.items()}
    for r0, count, mnem in ((0, min(lat, part.rows), first), (lat, part.rows - lat, op)):
        if count <= 0:
            continue
        s_k = Streams(0, target.streams, {w: set(u) for w, u in s.used.items()},
                      {w: set(u) for w, u in avoid_streams.items()}, from_top=True)
        root = build(part.ex, c, locs, {}, note, None, part.row0 + r0)
        node = Op(mnem, "fp32", (root,) if mnem == first else (root, Fixed(codes[0])),
                  imm=identity if mnem == first else None, note=note)
        node.out_stream = codes[0]
        sinks = [node]
        if part.also is not None:
            sinks.append(Write(root, part.also, c, part.row0 + r0, 1, note))
        units = Alus(target, from_top=True, avoid=avoid_alus)
        slots = timed(target, sinks, s_k, units)
        t_op = next(x.t for x in slots if x.mnemonic == mnem and x.queue == node.queue)
        chain.append((r0, Pipe(slots, count), t_op, node.queue))
        alus |= set(units.taken)
        for w, u in s_k.used.items():
            used[w] |= u
    return chain, codes, alus, used


def _combine(target: Target, note: str, op: str, lat: int, codes: tuple[int, int, int],
             chains: int, end: int, alu: int, out: Loc, c: int, out_row: int) -> Pipe:
    """The chains' last values are placed at end + lat - chains .. end + lat - 1 on the
    feedback group f; combine them (two chains: a Mov onto g lines the first up with the
    second, the op puts the result on h) and write it to out chunk c."""
    f_code, g, h = codes
    slots = []
    if chains == 1:
        result, ready = f_code, end + lat - 1
    else:
        first = end + lat - 2
        slots.append(Slot(alu, "Mov", "fp32", (("x", f_code), ("z", g)), first, note=note))
        slots.append(Slot(alu, op, "fp32", (("x", g), ("y", f_code), ("z", h)), first + 1,
                          note=note))
        result, ready = h, first + 1 + lat
    ch = out.chunks[c]
    for p, sl in enumerate(ch.slices):
        slots.append(Slot(sl.index, "Write", "fp32", (("src", result + p),
                                                      ("dst", (ch.bank, ch.addr + out_row))),
                          ready + target.hops(target.vxm_position, sl.position), note=note))
    return Pipe(slots, 1, 0)
