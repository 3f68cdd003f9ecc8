"""Kernel builders: one lowered chip operation -> a timed Kernel.

- `elementwise`: an Expr over tensors, one output vector per cycle through a VXM ALU chain.
- `matmul`: weights stationary on up to all MXM planes (one output column tile each), activation
  rows streaming through them, accumulating over the K tiles in the planes' accumulators, and the
  epilogue (bias, activation, residual, ...) fused on the VXM on the way to SRAM.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.dataflow import Alus, Op, Read, Slot, Streams, Write, timed
from lpu_emu.compiler.kernel import Kernel, Pipe
from lpu_emu.compiler.placement import Loc
from lpu_emu.compiler.target import Target


def _load_streams(target: Target, planes: list[int], mxm_dtype: str) -> int:
    """Streams (per direction) the weight loads of one pass take: the top of the index range,
    while the rest carries activations and epilogues (the two overlap in time)."""
    per_side: dict[bool, int] = {}
    for q in planes:
        west = target.chip.slices[q].position < target.vxm_position
        per_side[west] = per_side.get(west, 0) + target.width(mxm_dtype)
    return max(per_side.values())


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
            chunk, row, step = {"full": (c, r0, 1), "row": (c, 0, 0), "col": (0, r0, 1)}[e.mode]
            node = Read(loc, chunk, row, step, note)
    else:
        args = tuple(build(a, c, locs, memo, note, extra, r0) for a in e.args)
        node = Op(e.mnemonic, e.dtype, args, imm=e.imm, dtype2=e.dtype2, note=note)
    memo[key] = node
    return node


def elementwise(target: Target, note: str, out: Loc, ex, locs: dict[str, Loc]) -> Kernel:
    pipes, streams = [], []
    start = 0
    for c in range(out.nchunks):
        s = Streams(0, target.streams)
        root = build(ex, c, locs, {}, note)
        slots = timed(target, [Write(root, out, c, 0, 1, note)], s, Alus(target))
        pipes.append(Pipe(slots, out.rows, start))
        streams.append(s)
        start += out.rows
    ops, _ = E.size(ex)
    return Kernel(note, pipes, streams, frozenset(x.name for x in E.leaves(ex)),
                  frozenset({out.name}), "vxm", {"alu": ops * out.vectors})


@dataclass(frozen=True)
class Part:
    """One pass of a matmul over a K tile: weights `w` (per n tile, a Loc of K rows in the MXM
    dtype) times the activations converted by each of `xs` (fp32 activation node -> MXM input)."""

    w: dict[int, Loc]
    xs: tuple[Callable, ...]


def _convert(dtype: str) -> Callable:
    """fp32 activations -> the MXM dtype (round to nearest even)."""
    return lambda x, note: Op("Cvt", "fp32", (x,), dtype2=dtype, note=note)


def matmul(target: Target, note: str, x: Loc, parts: list[Part], mxm_dtype: str, out: Loc,
           epilogue: Callable[[int], object], locs: dict[str, Loc], planes: list[int],
           r0: int, rows: int, tiles: list[int]) -> Kernel:
    """out[r0:r0+rows, tile nt] = epilogue(x @ W) for each n tile nt in `tiles`, tile i on plane
    planes[i]; accumulation over the K tiles (and parts, for split precision) in accumulators
    0..rows-1 of each plane."""
    chip = target.chip
    pipes: list[Pipe] = []
    streams: list[Streams] = []
    t = 0
    # ABC: clear the accumulators
    for q in planes:
        abc = Slot(q, "ABC", None, (("acc", 0),), 0, "acc", 1, note)
        pipes.append(Pipe([abc], rows, t))
    t += rows
    kt_n = math.ceil(x.cols / target.lanes)
    lat_iw = max(target.latency("IW"), target.occupancy("IW"))
    passes = [(kt, p) for kt in range(kt_n) for p in parts]
    split = target.streams - _load_streams(target, planes, mxm_dtype)
    feed_free = -(1 << 40)  # when the activation path of the previous pass is done
    for i, (kt, part) in enumerate(passes):
        k_rows = min(target.lanes, x.cols - kt * target.lanes)
        # load: weight rows of tile (kt, nt) to plane i
        s_load = Streams(split, target.streams)
        loads = [Op("LW", mxm_dtype, (Read(part.w[nt], 0, kt * target.lanes, 1, note),),
                    unit="mxm", queue=q, note=note) for q, nt in zip(planes, tiles, strict=True)]
        slots = timed(target, loads, s_load, Alus(target, []))
        lw_t = next(s.t for s in slots if s.mnemonic == "LW")
        pipes.append(Pipe(slots, k_rows, t - lw_t))
        streams.append(s_load)
        t += k_rows
        for q in planes:
            pipes.append(Pipe([Slot(q, "IW", None, (), 0, note=note)], 1, t))
        t += lat_iw
        for j, conv in enumerate(part.xs):
            last = i == len(passes) - 1 and j == len(part.xs) - 1
            s_main = Streams(0, split)
            xv = conv(Read(x, kt, r0, 1, note), note)
            sides: dict[bool, Op] = {}
            accs = []
            for q in planes:
                side = chip.slices[q].position < target.vxm_position
                if side not in sides:  # the converted row, once per side (a Mov turns it round)
                    sides[side] = xv if not sides else Op("Mov", mxm_dtype, (xv,), note=note)
                accs.append(Op("ACC", mxm_dtype, (sides[side],), unit="mxm", queue=q, acc=0,
                               acc_step=1, note=note))
            sinks = accs
            if last:
                sinks = []
                for nt, a in zip(tiles, accs, strict=True):
                    root = build(epilogue(nt), nt, locs, {}, note, {"@acc": a}, r0)
                    sinks.append(Write(root, out, nt, r0, 1, note))
            slots = timed(target, sinks, s_main, Alus(target))
            acc_ts = [s.t for s in slots if s.mnemonic == "ACC"]
            first = min(s.t for s in slots)
            # after the plane's previous work, and after the previous pass's reads and ALU work
            start = max(t - min(acc_ts), feed_free - first)
            pipes.append(Pipe(slots, rows, start))
            streams.append(s_main)
            t = start + max(acc_ts) + rows
            feed_free = start + max(s.t for s in slots if s.mnemonic != "ACC") + rows
    macs = rows * x.cols * sum(min(target.lanes, out.cols - nt * target.lanes) for nt in tiles)
    reads = {x.name} | {w.name for p in parts for w in p.w.values()}
    for nt in tiles:
        reads |= {lf.name for lf in E.leaves(epilogue(nt)) if lf.name != "@acc"}
    return Kernel(note, pipes, streams, frozenset(reads), frozenset({out.name}), "mxm",
                  {"macs": macs * sum(len(p.xs) for p in parts)})


def split_lo(dtype: str) -> Callable:
    """The low part of an fp32 activation in `dtype`: x - fp32(hi(x)), rounded to dtype."""
    def lo(x, note):
        hi = Op("Cvt", "fp32", (x,), dtype2=dtype, note=note)
        back = Op("Cvt", dtype, (hi,), dtype2="fp32", note=note)
        return Op("Cvt", "fp32", (Op("Sub", "fp32", (x, back), note=note),), dtype2=dtype,
                  note=note)
    return lo
