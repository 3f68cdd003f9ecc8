"""Kernel builders: one lowered chip operation -> a timed Kernel.

- `elementwise`: an Expr over tensors, one output vector per cycle through a VXM ALU chain.
- `matmul`: weights stationary on up to all MXM planes (one output column tile each), activation
  rows streaming through them, accumulating over the K tiles in the planes' accumulators, and the
  epilogue (bias, activation, residual, ...) fused on the VXM on the way to SRAM.
"""

from __future__ import annotations

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


def _load_streams(target: Target, planes: list[int], mxm_dtype: str, converted: bool) -> int:
    """Streams (per direction) the weight loads of one pass take: the top of the index range,
    while the rest carries activations and epilogues (the two overlap in time). A load that
    passes the VXM on its way (a head mask) takes three groups per plane: the row, the mask,
    the product."""
    per_side: dict[bool, int] = {}
    for q in planes:
        west = target.chip.slices[q].position < target.vxm_position
        per_side[west] = per_side.get(west, 0) + target.width(mxm_dtype)
    return max(per_side.values()) * (3 if converted else 1)


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
            node = Read(loc, chunk, row, step, note)
    else:
        args = tuple(build(a, c, locs, memo, note, extra, r0) for a in e.args)
        node = Op(e.mnemonic, e.dtype, args, imm=e.imm, dtype2=e.dtype2, note=note)
    memo[key] = node
    return node


def after(pipes: list[Pipe], pipe: Pipe) -> int:
    """The earliest start of `pipe` that has its first issue after the last issue of every
    pipe before it. Pipes of one kernel reuse stream indices with values that come from other
    positions; a value placed while an earlier pipe's value is still in flight on the same
    diagonal would replace it, so one pipe's values are all taken before the next's are
    placed."""
    if not pipes:
        return -pipe.first()
    last = max(p.start + (p.count - 1) * p.period + max(s.t for s in p.slots) for p in pipes)
    return last + 1 - min(s.t for s in pipe.slots)


def elementwise(target: Target, note: str, out: Loc, ex, locs: dict[str, Loc], row0: int = 0,
                rows: int | None = None) -> Kernel:
    """out[row0 : row0 + rows] = ex, one vector a cycle, chunk after chunk."""
    rows = out.rows - row0 if rows is None else rows
    pipes: list[Pipe] = []
    streams = []
    for c in range(out.nchunks):
        s = Streams(0, target.streams)
        root = build(ex, c, locs, {}, note, None, row0)
        slots = timed(target, [Write(root, out, c, row0, 1, note)], s, Alus(target))
        # chunk pipes reuse the streams from other slices: the next starts placing values
        # only after this one has taken its last (see `after`)
        pipe = Pipe(slots, rows, 0)
        pipe.start = after(pipes, pipe)
        pipes.append(pipe)
        streams.append(s)
    ops, _ = E.size(ex)
    return Kernel(note, pipes, streams, frozenset(locs[x.name].base for x in E.leaves(ex)),
                  frozenset({out.base}), "vxm", {"alu": ops * rows * out.nchunks})


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
        locs: dict[str, Loc]) -> Kernel:
    """Run the jobs one after another on the planes; an install is shared by consecutive passes
    with the same weights (even across jobs).

    Three things pace it: a plane's queue (ABC, LW, IW, ACC in order), the weight loads (their
    own streams, the top of the index range, and their own ALUs) and the activation feeds with
    the epilogue (the rest); loads and feeds each follow `after` among themselves, and overlap
    each other (the next weights load while the plane still computes with the installed ones)."""
    chip = target.chip
    pipes: list[Pipe] = []
    loads: list[Pipe] = []
    feeds: list[Pipe] = []
    streams: list[Streams] = []
    t = 0
    lat_iw = max(target.latency("IW"), target.occupancy("IW"))
    converted = any(ps.w_conv is not None for j in jobs for ps in j.passes)
    split_at = target.streams - _load_streams(target, planes, mxm_dtype, converted)
    alus = [s.index for s in target.vxm_alus]
    load_alus, feed_alus = alus[-2:], alus[:-2]
    prev: Pass | None = None
    for job in jobs:
        for q in planes:  # clear the accumulators
            pipes.append(Pipe([Slot(q, "ABC", None, (("acc", 0),), 0, "acc", 1, note)],
                              job.rows, t))
        t += job.rows
        for i, ps in enumerate(job.passes):
            if prev is None or not _same_weights(ps, prev):
                pipe, s_load = _load(target, note, ps, planes, mxm_dtype, split_at, load_alus)
                lw_ts = [s.t for s in pipe.slots if s.mnemonic == "LW"]
                pipe.start = max(t - min(lw_ts), after(loads, pipe))
                if _reads(pipe) & {q for f in feeds for q in _reads(f)}:
                    # weights from slices the feeds read too (x @ x^T, q = k): no overlap
                    pipe.start = max(pipe.start, after(feeds, pipe))
                loads.append(pipe)
                streams.append(s_load)
                t = pipe.start + max(lw_ts) + ps.k_rows
                for q in planes:
                    pipes.append(Pipe([Slot(q, ps.install, None, (), 0, note=note)], 1, t))
                t += lat_iw
            prev = ps
            last = i == len(job.passes) - 1
            s_main = Streams(0, split_at)
            xv = ps.x_conv(Read(ps.x.loc, ps.x.chunk, ps.x.row, 1, note), note, ps.x.chunk)
            west = {chip.slices[q].position < target.vxm_position for q in planes}
            # planes on both sides: a Mov at the VXM sends the row each way
            sides = {w: Op("Mov", mxm_dtype, (xv,), note=note) if len(west) > 1 else xv
                     for w in west}
            accs = [Op("ACC", mxm_dtype, (sides[chip.slices[q].position < target.vxm_position],),
                       unit="mxm", queue=q, acc=0, acc_step=1, note=note) for q in planes]
            sinks: list = accs
            if last:
                sinks = []
                for c, a in zip(job.out_chunks, accs, strict=True):
                    root = build(job.epilogue(c), c, locs, {}, note, {"@acc": a}, job.out_row)
                    sinks.append(Write(root, job.out, c, job.out_row, 1, note))
            pipe = Pipe(timed(target, sinks, s_main, Alus(target, feed_alus)), job.rows)
            acc_ts = [s.t for s in pipe.slots if s.mnemonic == "ACC"]
            pipe.start = max(t - min(acc_ts), after(feeds, pipe))
            if _reads(pipe) & {q for f in loads for q in _reads(f)}:
                pipe.start = max(pipe.start, after(loads, pipe))
            feeds.append(pipe)
            streams.append(s_main)
            t = pipe.start + max(acc_ts) + job.rows
    macs = sum(j.rows * ps.k_rows * sum(j.out.chunk_cols(c) for c in j.out_chunks)
               for j in jobs for ps in j.passes)
    reads = {ps.x.loc.base for j in jobs for ps in j.passes}
    reads |= {w.loc.base for j in jobs for ps in j.passes for w in ps.w}
    for j in jobs:
        for c in j.out_chunks:
            reads |= {locs[lf.name].base for lf in E.leaves(j.epilogue(c)) if lf.name != "@acc"}
    return Kernel(note, pipes + loads + feeds, streams, frozenset(reads),
                  frozenset(j.out.base for j in jobs), "mxm", {"macs": macs})


def _reads(pipe: Pipe) -> set[int]:
    """The MEM queues a pipe reads from."""
    return {s.queue for s in pipe.slots if s.mnemonic == "Read"}


def _load(target: Target, note: str, ps: Pass, planes: list[int], mxm_dtype: str,
          split_at: int, alus: list[int]) -> tuple[Pipe, Streams]:
    """The pipe that loads the pass's weight rows into every plane (LW, one row a cycle)."""
    s_load = Streams(split_at, target.streams)
    loads = []
    for q, src in zip(planes, ps.w, strict=True):
        v = Read(src.loc, src.chunk, src.row, 1, note)
        if ps.w_conv is not None:
            v = ps.w_conv(v, note, src.chunk)
        loads.append(Op("LW", mxm_dtype, (v,), unit="mxm", queue=q, note=note))
    return Pipe(timed(target, loads, s_load, Alus(target, alus)), ps.k_rows), s_load


ACC_LEAF = E.Leaf("@acc")  # an epilogue's accumulator

# the recurrences of `colreduce`: the op, and the one that starts a chain (same latency)
CHAIN = {"max": ("Max", "MaxI", float("-inf")), "sum": ("Add", "AddI", 0.0)}


def colreduce(target: Target, note: str, how: str, ex, locs: dict[str, Loc], out: Loc,
              rows: int, also: Loc | None = None, row0: int = 0, out_row: int = 0) -> Kernel:
    """out[out_row, :] = reduce over rows r = row0 .. row0 + rows - 1 of ex(r) (max or sum), per
    chunk; `also`, if given, receives ex itself at those rows (e.g. the exponentials a softmax
    normalises).

    One value a cycle enters a recurrence on one ALU: acc <- op(x_r, acc). The op's result comes
    back after its latency L, so L interleaved chains share the ALU (row r joins chain r mod L),
    each started by the immediate form (x op identity); at the end a Mov lines the chains' last
    values up and one more op combines them."""
    op, first, identity = CHAIN[how]
    lat = target.latency(op)
    if target.latency(first) != lat or lat != 2 * target.latency("Mov"):
        raise CompileError(f"colreduce needs {op} and {first} of one latency, twice Mov's")
    pipes: list[Pipe] = []
    streams: list[Streams] = []
    start = 0
    for c in range(out.nchunks):
        west = out.chunks[c].slices[0].position < target.vxm_position
        s = Streams(0, target.streams)
        f_code, g, h = (stream_code(s.take(west, 4), west) for _ in range(3))
        chain = []
        for r0, count, mnem in ((0, min(lat, rows), first), (lat, rows - lat, op)):
            if count <= 0:
                continue
            s_k = Streams(0, target.streams, {w: set(u) for w, u in s.used.items()})
            root = build(ex, c, locs, {}, note, None, row0 + r0)
            node = Op(mnem, "fp32", (root,) if mnem == first else (root, Fixed(f_code)),
                      imm=identity if mnem == first else None, note=note)
            node.out_stream = f_code
            sinks = [node] + ([Write(root, also, c, row0 + r0, 1, note)] if also is not None
                              else [])
            slots = timed(target, sinks, s_k, Alus(target))
            t_op = next(x.t for x in slots if x.mnemonic == mnem and x.queue == node.queue)
            chain.append((r0, count, slots, t_op, node.queue))
            streams.append(s_k)
        base = max(x[3] for x in chain)  # the chain op of row r issues at start + base + r
        for r0, count, slots, t_op, _ in chain:
            pipes.append(Pipe(slots, count, start + base - t_op + r0))
        end = start + base + rows
        pipes.append(_combine(target, note, op, lat, (f_code, g, h), min(lat, rows), end,
                              chain[-1][4], out, c, out_row))
        streams.append(s)
        start = end + 2 * lat + 1
    return Kernel(note, pipes, streams, frozenset(locs[x.name].base for x in E.leaves(ex)),
                  frozenset({out.base} | ({also.base} if also else set())), "vxm",
                  {"alu": (E.size(ex)[0] + 1) * rows * out.nchunks})


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
