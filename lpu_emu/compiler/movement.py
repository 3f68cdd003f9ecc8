"""Lowering of the ops that only move values: Concat, Slice and Transpose along any axis, and
the transposed or batched operands of MatMul.

A value of shape (d0, ..., dn-1) is a chip tensor of prod(d0..dn-2) rows and dn-1 columns, so a
move either keeps each row's lanes and reorders the rows, or moves values between lanes:

- rows are gathered by VXM `Mov` passes, one per run of consecutive source rows (a run that is
  the whole output is a view of the source, no copy). Nothing crosses the MXM, so an infinity
  or a NaN stays what it was;
- lanes are gathered by SXM `Distribute` with a lane map per source chunk, the chunks' results
  summed on the VXM (`Lowering.lane_slice`'s path, for any list of columns: a negative step);
- swapping the last two axes is one `TransposeStep` per leading index (an exact MXM transpose
  of that block of rows: its values must be finite, as in softmax's transposes);
- any other permutation is those two: the axis that becomes the last moves next to it by rows,
  the last two swap, and the rows move into the final order.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.graph import Node

if TYPE_CHECKING:
    from lpu_emu.compiler.lowering import Lowering


def gather_rows(low: Lowering, src: str, picks: np.ndarray, cols: int, base: str,
                note: str) -> str:
    """A tensor whose row i is row picks[i] of src: src itself when picks is every row in
    order, a view when it is one run of consecutive rows, else a Mov pass per run."""
    picks = np.asarray(picks, dtype=np.int64)
    spec = low.tensors[src]
    if len(picks) == spec.rows and np.array_equal(picks, np.arange(spec.rows)):
        return src
    runs = _runs(picks)
    if len(runs) == 1:
        return low.tensor(low.fresh(base), len(picks), cols, view=(src, int(picks[0])))
    from lpu_emu.compiler.lowering import MapStep
    out = low.tensor(low.fresh(base), len(picks), cols)
    for first, start, count in runs:
        low.steps.append(MapStep(out, E.Ex("Mov", (E.Leaf(src, row=start - first),)),
                                 f"{note} rows {first}..{first + count - 1}", row0=first,
                                 rows=count))
    return out


def _runs(picks: np.ndarray) -> list[tuple[int, int, int]]:
    """(first output row, first source row, length) of each run of consecutive source rows."""
    breaks = [0, *(i for i in range(1, len(picks)) if picks[i] != picks[i - 1] + 1),
              len(picks)]
    return [(a, int(picks[a]), b - a) for a, b in pairwise(breaks)]


def lane_gather(low: Lowering, src: str, rows: int, idx: list[int], note: str) -> str:
    """A tensor whose column j is column idx[j] of src: each output chunk takes its lanes from
    every source chunk that holds one of them (a Distribute lane map each), summed."""
    lanes = low.target.lanes
    cols = len(idx)
    out = low.tensor(low.fresh(f"{src}.cols"), rows, cols)
    for c in range(math.ceil(cols / lanes)):
        want = idx[c * lanes:(c + 1) * lanes]
        terms = []
        for k in sorted({i // lanes for i in want}):
            m = [i - k * lanes if i // lanes == k else -1 for i in want]
            m += [-1] * (lanes - len(m))
            leaf = E.Leaf(src, chunk=k)
            same = len(want) == lanes and m == list(range(lanes))
            terms.append(leaf if same else E.Ex("Distribute", (leaf,), imm=low.lanemap(m)))
        low._sum_chunk(out, c, terms, rows, cols, f"{note} columns")
    return out


def slice_axis(low: Lowering, n: Node, value: str, out_value: str, axis: int, start: int,
               step: int = 1) -> E.Leaf:
    """Elements start, start + step, ... of one axis (as many as out_value has): lanes for the
    last axis, rows for any other."""
    shape = low.graph.value(value).shape
    count = low.graph.value(out_value).shape[axis]
    idx = [start + i * step for i in range(count)]
    src = low.leaf(value).name
    rows, cols = low.dims(out_value)
    if axis == len(shape) - 1:
        if step == 1:
            return E.Leaf(low.lane_slice(src, rows, cols, start, n.name))
        return E.Leaf(lane_gather(low, src, rows, idx, n.name))
    outer = math.prod(shape[:axis])
    inner = math.prod(shape[axis + 1:-1])
    picks = ((np.arange(outer)[:, None, None] * shape[axis] + np.asarray(idx)[None, :, None])
             * inner + np.arange(inner)[None, None, :]).reshape(-1)
    return E.Leaf(gather_rows(low, src, picks, cols, out_value, f"{n.name} slice"))


def concat_rows(low: Lowering, n: Node, axis: int) -> str:
    """Inputs joined along a leading axis: for each index of the axes before it, each input's
    block of rows in turn (a Mov pass each)."""
    from lpu_emu.compiler.lowering import MapStep
    shape = low.graph.value(n.outputs[0]).shape
    outer = math.prod(shape[:axis])
    parts = [low.leaf(i).name for i in n.inputs]
    blocks = [low.tensors[p].rows // outer for p in parts]
    rows, cols = low.dims(n.outputs[0])
    out = low.tensor(low.fresh(n.outputs[0]), rows, cols, pinned=low.pinned.get(n.outputs[0]))
    r0 = 0
    for o in range(outer):
        for p, k in zip(parts, blocks, strict=True):
            low.steps.append(MapStep(out, E.Ex("Mov", (E.Leaf(p, row=o * k - r0),)),
                                     f"{n.name} rows {r0}..", row0=r0, rows=k))
            r0 += k
    return out


def swap_last(low: Lowering, src: str, shape: tuple[int, ...], base: str, note: str) -> str:
    """src of graph shape (..., r, c) as (..., c, r): one exact MXM transpose per block of r
    rows (one per index of the leading axes)."""
    r, c = shape[-2], shape[-1]
    batches = math.prod(shape[:-2])
    out = low.tensor(low.fresh(base), batches * c, r)
    parts = low.tparts(E.Leaf(src), batches * r, c)
    for b in range(batches):
        low.steps.append(low._transpose(out, parts, low.mode.exact, note, x_row=b * r,
                                        x_rows=r, out_row=b * c))
    return out


def permute_rows(low: Lowering, src: str, shape: tuple[int, ...], perm: tuple[int, ...],
                 base: str, note: str) -> str:
    """src of graph shape `shape` with its leading axes in the order perm (the last axis stays):
    a row gather."""
    lead = shape[:-1]
    picks = np.arange(math.prod(lead)).reshape(lead).transpose(perm).reshape(-1)
    return gather_rows(low, src, picks, shape[-1], base, note)


def transpose(low: Lowering, n: Node) -> str:
    """Transpose by any perm (see the module docstring): the chip tensor of the output."""
    shape = tuple(low.graph.value(n.inputs[0]).shape)
    rank = len(shape)
    perm = tuple(n.attr("perm")) or tuple(reversed(range(rank)))
    x, out = low.leaf(n.inputs[0]).name, n.outputs[0]
    if rank < 2:
        return x
    if perm[-1] == rank - 1:
        return permute_rows(low, x, shape, perm[:-1], out, n.name)
    a = perm[-1]
    order = [d for d in range(rank - 1) if d != a] + [a, rank - 1]  # a next to the last axis
    x = permute_rows(low, x, shape, tuple(order[:-1]), f"{out}.rows", n.name)
    x = swap_last(low, x, tuple(shape[d] for d in order), out, n.name)
    order[-2], order[-1] = order[-1], order[-2]
    return permute_rows(low, x, tuple(shape[d] for d in order),
                        tuple(order.index(p) for p in perm[:-1]), f"{out}.rows", n.name)
