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
    """A tensor whose column j is column idx[j] of src (0 where idx[j] is -1): each output chunk
    takes its lanes from every source chunk that holds one of them (a Distribute lane map
    each), summed; a chunk that takes none is a map of zeros."""
    lanes = low.target.lanes
    cols = len(idx)
    out = low.tensor(low.fresh(f"{src}.cols"), rows, cols)
    for c in range(math.ceil(cols / lanes)):
        want = idx[c * lanes:(c + 1) * lanes]
        terms = []
        for k in sorted({i // lanes for i in want if i >= 0}) or [0]:
            m = [i - k * lanes if i >= 0 and i // lanes == k else -1 for i in want]
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


def reshape(low: Lowering, n: Node) -> str:
    """A Reshape that changes the last dimension, (R, C) -> (R2, C2) as chip tensors.

    Source row r holds the flat elements r*C .. r*C + C - 1, which land in output rows q0(r) =
    r*C // C2 and on: piece t of the row goes to row q0 + t, shifted by d - t*C2 lanes (d = r*C
    mod C2). Rows with one (d, t) form a class, moved together: its lanes by one Distribute
    gather, its rows by Mov passes where a row of the result is one piece (or one class has
    every output row), else by a 0/1 matrix G (G[q0 + t, r] = 1) on the MXM, the values in
    exact parts (as transposes are). Splitting lanes into rows (C2 < C) gathers lanes first,
    merging rows into lanes (C2 > C) gathers rows first: either way the intermediates are no
    larger than the output times the classes. Into or out of one column (C2 or C is 1), each
    row is a transpose instead (a class per lane would need a lane map each)."""
    r, c = low.dims(n.inputs[0])
    r2, c2 = low.dims(n.outputs[0])
    x = low.leaf(n.inputs[0]).name
    if c2 == 1:  # each row becomes a column: a transpose per row, no lane map
        return swap_last(low, x, (r, 1, c), n.outputs[0], f"{n.name} rows to a column")
    if c == 1:  # each block of c2 rows becomes a row
        return swap_last(low, x, (r2, c2, 1), n.outputs[0], f"{n.name} a column to rows")
    out = low.tensor(low.fresh(n.outputs[0]), r2, c2)
    if c2 < c:
        _split_lanes(low, n, x, out, (r, c, r2, c2))
    else:
        _merge_lanes(low, n, x, out, (r, c, r2, c2))
    return out


def _split_lanes(low: Lowering, n: Node, x: str, out: str, dims: tuple[int, ...]) -> None:
    """Each class's lanes gathered from every row; where C2 divides C (each output row is one
    piece of one source row) its rows then move by Mov passes, else one matmul accumulates
    every class's G @ lanes."""
    from lpu_emu.compiler.lowering import ACC, MmStep, Term
    r, c, r2, c2 = dims
    classes = _classes(r, c, c2)
    pieces = {key: lane_gather(low, x, r, _lane_idx(*key, c, c2), f"{n.name} piece {key[1]}")
              for key in classes}
    if c % c2 == 0:
        for key, pairs_ in classes.items():
            _move_rows(low, out, pieces[key], pairs_, f"{n.name} piece {key[1]}")
        return
    exact = low.mode.exact
    terms = tuple(Term((low.const(f"{n.name}.rows", _picker(pairs_, r2, r), exact),),
                       low.tparts(E.Leaf(pieces[key]), r, c2), parts=_parts(low))
                  for key, pairs_ in classes.items())
    low.steps.append(MmStep(out, terms, ACC, exact, f"{n.name} rows"))


def _merge_lanes(low: Lowering, n: Node, x: str, out: str, dims: tuple[int, ...]) -> None:
    """Each class's rows gathered first (Mov passes where the class has every output row, else
    G @ x on the MXM), then every class's lanes shifted into place and summed."""
    from lpu_emu.compiler.lowering import ACC, MmStep, Term
    r, c, r2, c2 = dims
    exact = low.mode.exact
    moved = []
    for (d, t), pairs_ in _classes(r, c, c2).items():
        y = low.tensor(low.fresh(f"{n.outputs[0]}.rows"), r2, c)
        if sorted(q for _, q in pairs_) == list(range(r2)):
            # copied, not viewed: the sum below reads every class at once, and views of one
            # storage would read its slices twice a cycle
            _move_rows(low, y, x, pairs_, f"{n.name} piece {t}")
        else:
            g = low.const(f"{n.name}.rows", _picker(pairs_, r2, r), exact)
            low.steps.append(MmStep(y, (Term((g,), low.tparts(E.Leaf(x), r, c),
                                             parts=_parts(low)),), ACC, exact,
                                    f"{n.name} rows"))
        moved.append((y, _lane_idx(d, t, c, c2)))
    lanes = low.target.lanes
    for k in range(math.ceil(c2 / lanes)):
        terms = []
        for y, idx in moved:
            want = idx[k * lanes:(k + 1) * lanes]
            for j in sorted({i // lanes for i in want if i >= 0}):
                m = [i - j * lanes if i >= 0 and i // lanes == j else -1 for i in want]
                m += [-1] * (lanes - len(m))
                terms.append(E.Ex("Distribute", (E.Leaf(y, chunk=j),), imm=low.lanemap(m)))
        low._sum_chunk(out, k, terms, r2, c2, f"{n.name} columns")


def _move_rows(low: Lowering, out: str, src: str, pairs_: list[tuple[int, int]],
               note: str) -> None:
    """out[q] = src[s] for each (s, q): a Mov pass per run where both rows advance together."""
    from lpu_emu.compiler.lowering import MapStep
    pairs_ = sorted(pairs_, key=lambda p: p[1])
    first = 0
    for i in range(1, len(pairs_) + 1):
        if i < len(pairs_) and pairs_[i] == (pairs_[i - 1][0] + 1, pairs_[i - 1][1] + 1):
            continue
        s, q = pairs_[first]
        low.steps.append(MapStep(out, E.Ex("Mov", (E.Leaf(src, row=s - q),)),
                                 f"{note} rows {q}..{q + i - first - 1}", row0=q,
                                 rows=i - first))
        first = i


def _parts(low: Lowering) -> int:
    """The parts `Lowering.tparts` splits into (exact in fp32 mode)."""
    from lpu_emu.compiler.precision import TRANSPOSE_PARTS
    return TRANSPOSE_PARTS if low.mode.name == "fp32" else 1


def _classes(r: int, c: int, c2: int) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """(d, t) -> the (source row, output row) pairs of that class (see `reshape`)."""
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for row in range(r):
        q0, d = divmod(row * c, c2)
        for t in range((d + c - 1) // c2 + 1):
            out.setdefault((d, t), []).append((row, q0 + t))
    return out


def _lane_idx(d: int, t: int, c: int, c2: int) -> list[int]:
    """For each output lane, the source lane piece t of a row at offset d puts there (or -1)."""
    return [j + t * c2 - d if 0 <= j + t * c2 - d < c else -1 for j in range(c2)]


def _picker(pairs_: list[tuple[int, int]], rows: int, cols: int) -> np.ndarray:
    g = np.zeros((rows, cols), dtype=np.float32)
    for src, dst in pairs_:
        g[dst, src] = 1.0
    return g
