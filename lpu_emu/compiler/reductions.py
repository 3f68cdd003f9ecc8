"""Lowering of ReduceSum, ReduceMean and ReduceMax, and of broadcasting over the rows.

A value of shape (d0, ..., dn-1) is a chip tensor of prod(d0..dn-2) rows and dn-1 columns, so an
axis is either the last (the lanes) or one of the leading axes (the rows). Every reduction and
every row movement here reuses a path the lowering already has:

- sums over the last axis are `Lowering.rowsum`: the MXM against a column of ones, which leaves
  the sum repeated across the lanes (as LayerNorm's mean);
- sums over leading axes are G @ x on the MXM, G a constant 0/1 matrix that picks each output
  row's input rows (x split into exact parts, as for the ones): one pass for any set of axes;
- maxima over leading axes are `ReduceStep`s (softmax's recurrence on one ALU) over runs of
  consecutive rows, or VXM passes acc = max(acc, block j) when the reduced rows interleave;
- maxima over the last axis transpose first (softmax's path), reduce the rows, transpose back;
- a reduced last axis not kept (keepdims 0) moves the leading axes into the lanes: y = S @
  (v * mask), one term per output element, so exact;
- broadcasting one row set onto another (an Expand, or a mean of shape (2, 1, 1) met by x of
  shape (2, 3, 4)) is G @ x with G[r, g(r)] = 1, the repetition as a matmul.

What goes through the MXM must be finite: the matrices' zeros meet every element, and inf * 0 is
NaN (as in softmax's transposes). So a sum of an infinity, a max over the last axis of one, or a
repetition of one is NaN; a max over leading axes never touches the MXM and keeps it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.graph import Node
from lpu_emu.errors import UsageError

if TYPE_CHECKING:
    from lpu_emu.compiler.lowering import Lowering


def reduce_node(low: Lowering, n: Node, how: str) -> None:
    """n's output = the sum, mean or max (`how`) of its input over n's axes."""
    from lpu_emu.compiler.lowering import ACC
    shape = low.graph.value(n.inputs[0]).shape
    rank = len(shape)
    axes = _axes(n, rank)
    if all(shape[a] == 1 for a in axes) and low.dims(n.outputs[0]) == low.dims(n.inputs[0]):
        low.exprs[n.outputs[0]] = E.Ex("Mov", (low.leaf(n.inputs[0]),))  # nothing to reduce
        return
    rows, cols = low.dims(n.inputs[0])
    lead = [a for a in axes if a < rank - 1]
    last = rank - 1 in axes
    count = math.prod(shape[a] for a in axes)
    x = low.operand(n.inputs[0], (rows, cols))
    kept = math.prod(d for a, d in enumerate(shape[:-1]) if a not in lead)  # rows left
    if how == "max":
        if lead:
            x, rows = E.Leaf(_max_rows(low, n, x, shape, lead)), kept
        if last:
            x = _max_last(low, n, x, rows, cols)
    else:  # a mean scales once, in the last pass's epilogue
        scale = E.mul(ACC, E.Imm(1.0 / count)) if how == "mean" else ACC
        if lead:
            x, rows = E.Leaf(_sum_rows(low, n, x, shape, lead, ACC if last else scale)), kept
        if last:
            x = E.Leaf(low.rowsum(x, rows, cols, scale, f"{n.name} sum"))
    out_rows, out_cols = low.dims(n.outputs[0])
    if last and out_cols != 1:  # keepdims 0: the kept leading axes move into the lanes
        x = E.Leaf(_to_lanes(low, n, x.name, rows, out_rows, out_cols))
    low.exprs[n.outputs[0]] = x


def _axes(n: Node, rank: int) -> tuple[int, ...]:
    axes = tuple(n.attr("axes"))
    if not axes:
        return tuple(range(rank))
    for a in axes:
        if not -rank <= a < rank:
            raise UsageError(f"node {n.name!r}: {n.op} axis {a} is out of range for rank {rank}")
    return tuple(sorted({a % rank for a in axes}))


def _sum_rows(low: Lowering, n: Node, x, shape: tuple[int, ...], lead: list[int],
              epilogue) -> str:
    """The sum over the leading axes `lead`: G @ x, G[o, r] = 1 where input row r belongs to
    output row o (x split into parts that hold it exactly; their products with 1 are exact)."""
    from lpu_emu.compiler.lowering import MmStep, Term
    rows, cols = int(math.prod(shape[:-1])), shape[-1]
    src = low.leaf_expr(x, rows, cols)
    spec = low.tensors[src]
    groups = _groups(shape[:-1], lead)
    g = np.zeros((int(groups.max()) + 1, rows), dtype=np.float32)
    g[groups, np.arange(rows)] = 1.0
    exact, parts = low.mode.exact, low.mode.sum_parts
    gname = low.const(f"{n.name}.sum", g, exact)
    ws = low.split(E.Leaf(src), rows, spec.cols, parts, exact)
    out = low.tensor(low.fresh(f"{n.outputs[0]}.rows"), g.shape[0], spec.cols, bcast=spec.bcast)
    low.steps.append(MmStep(out, (Term((gname,), ws, parts=parts),), epilogue, exact,
                            f"{n.name} sum over axes {tuple(lead)}"))
    return out


def _groups(lead_shape: tuple[int, ...], axes: list[int]) -> np.ndarray:
    """For each row (a leading index, row-major), the output row it reduces into: its index
    over the kept axes."""
    idx = np.indices(lead_shape).reshape(len(lead_shape), -1)
    kept = [a for a in range(len(lead_shape)) if a not in axes]
    if not kept:
        return np.zeros(idx.shape[1], dtype=np.int64)
    return np.ravel_multi_index(tuple(idx[a] for a in kept), tuple(lead_shape[a] for a in kept))


def _max_rows(low: Lowering, n: Node, x, shape: tuple[int, ...], lead: list[int]) -> str:
    """The max over the leading axes `lead`, one run of adjacent axes at a time (the last run
    first): with rows (outer, m, inner), m reduced. Runs of consecutive rows (inner 1) are one
    ReduceStep per output row (softmax's recurrence); otherwise block j of each outer block is
    folded in by a VXM pass, acc = max(acc, x[j]) (acc alternating between two tensors: a pass
    never reads what it writes, nor one tensor twice). Neither touches the MXM, so an infinity
    stays one (a 0/1 matmul would make inf * 0 = NaN)."""
    from lpu_emu.compiler.lowering import MapStep, ReduceStep
    dims, cols = list(shape[:-1]), shape[-1]
    note = f"{n.name} max over axes {tuple(lead)}"
    for first, last in reversed(_runs(lead)):
        outer, m = math.prod(dims[:first]), math.prod(dims[first:last + 1])
        inner = math.prod(dims[last + 1:])
        out = low.tensor(low.fresh(f"{n.outputs[0]}.max"), outer * inner, cols)
        if inner == 1:
            for o in range(outer):
                low.steps.append(ReduceStep(out, "max", x, m, note, row0=o * m, out_row=o))
        else:
            src = low.leaf_expr(x, math.prod(dims), cols)
            accs = [low.tensor(low.fresh(f"{n.outputs[0]}.acc"), outer * inner, cols)
                    for _ in range(min(2, m - 1))]
            for o in range(outer):
                for j in range(m):
                    block = E.Leaf(src, row=(o * m + j - o) * inner)
                    e = E.Ex("Mov", (block,)) if j == 0 else \
                        E.Ex("Max", (E.Leaf(accs[(j - 1) % 2]), block))
                    dest = out if j == m - 1 else accs[j % 2]
                    low.steps.append(MapStep(dest, e, note, row0=o * inner, rows=inner))
        x = E.Leaf(out)
        dims[first:last + 1] = [1] * (last + 1 - first)
    return x.name


def _runs(axes: list[int]) -> list[tuple[int, int]]:
    """Sorted axes as runs of adjacent ones: [0, 1, 3] -> [(0, 1), (3, 3)]."""
    runs: list[tuple[int, int]] = []
    for a in axes:
        if runs and runs[-1][1] == a - 1:
            runs[-1] = (runs[-1][0], a)
        else:
            runs.append((a, a))
    return runs


def _max_last(low: Lowering, n: Node, x, rows: int, cols: int) -> E.Leaf:
    """The max over the last axis, as a column (rows x 1): x transposed, its rows reduced
    (softmax's max), the row of maxima transposed back."""
    xt = low.tensor(low.fresh(f"{n.outputs[0]}.T"), cols, rows)
    low.steps.append(low._transpose(xt, low.tparts(x, rows, cols), low.mode.exact, n.name))
    from lpu_emu.compiler.lowering import ReduceStep
    m = low.tensor(low.fresh(f"{n.outputs[0]}.maxT"), 1, rows)
    low.steps.append(ReduceStep(m, "max", E.Leaf(xt), cols, f"{n.name} max over the last axis"))
    out = low.tensor(low.fresh(f"{n.outputs[0]}.max"), rows, 1)
    low.steps.append(low._transpose(out, low.tparts(E.Leaf(m), 1, rows), low.mode.exact,
                                    n.name))
    return E.Leaf(out)


def _to_lanes(low: Lowering, n: Node, col: str, rows: int, out_rows: int,
              out_cols: int) -> str:
    """A column of `rows` values (one per row, as a reduction leaves it) laid out as out_rows x
    out_cols, row-major: y = S @ (v * mask), mask[k, j] = (j == k mod out_cols), S[i, k] =
    (i == k div out_cols). Every output is one product with 1, so the move is exact."""
    from lpu_emu.compiler.lowering import MmStep, Term
    v = low.broadcast(col, rows)
    k = np.arange(rows)
    mask = np.zeros((rows, out_cols), dtype=np.float32)
    mask[k, k % out_cols] = 1.0
    s = np.zeros((out_rows, rows), dtype=np.float32)
    s[k // out_cols, k] = 1.0
    exact, parts = low.mode.exact, low.mode.sum_parts
    masked = E.mul(E.Leaf(v, "col"), E.Leaf(low.const(f"{n.name}.lanes", mask)))
    ys = low.split(masked, rows, out_cols, parts, exact)
    out = low.tensor(low.fresh(n.outputs[0]), out_rows, out_cols)
    low.steps.append(MmStep(out, (Term((low.const(f"{n.name}.rows", s, exact),), ys,
                                       parts=parts),), E.Leaf("@acc"), exact,
                            f"{n.name} into the lanes"))
    return out


def expand_rows(low: Lowering, value: str, dst: tuple[int, ...]):
    """value broadcast to the graph shape dst (numpy's rules), as an Expr over dst's grid: rows
    repeated by G @ x on the MXM (G[r, g(r)] = 1), a column repeated across the lanes."""
    from lpu_emu.compiler.lowering import MmStep, Term
    src = low.graph.value(value).shape
    if len(src) > len(dst) or np.broadcast_shapes(src, dst) != tuple(dst):
        raise UsageError(f"{value}: shape {src} does not broadcast to {tuple(dst)}")
    src = (1,) * (len(dst) - len(src)) + tuple(src)
    rows, cols = low.dims(value)
    drows = int(math.prod(dst[:-1])) if len(dst) > 1 else 1
    leaf = low.leaf(value) if value not in low.graph.constants else low.const_leaf(value)
    name = leaf.name
    if src[:-1] != tuple(dst[:-1]):
        if rows == 1 and src[-1] == dst[-1]:
            return E.Leaf(name, "row")
        spec = low.tensors[name]
        idx = np.indices(dst[:-1]).reshape(len(dst) - 1, -1)
        picks = np.ravel_multi_index(tuple(np.minimum(idx[a], src[a] - 1)
                                           for a in range(len(dst) - 1)), src[:-1])
        g = np.zeros((drows, rows), dtype=np.float32)
        g[np.arange(drows), picks] = 1.0
        exact, parts = low.mode.exact, low.mode.sum_parts
        ws = low.split(E.Leaf(name), rows, spec.cols, parts, exact)
        out = low.tensor(low.fresh(f"{value}.rows"), drows, spec.cols, bcast=spec.bcast)
        low.steps.append(MmStep(out, (Term((low.const(f"{value}.repeat", g, exact),), ws,
                                           parts=parts),), E.Leaf("@acc"), exact,
                                f"{value} rows repeated to {tuple(dst)}"))
        name = out
    if src[-1] != dst[-1]:
        return E.Leaf(low.broadcast(name, drows), "col")
    return E.Leaf(name)
