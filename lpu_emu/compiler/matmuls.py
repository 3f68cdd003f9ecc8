"""MatMul's operands beyond a row-major x times a 2-D W: a transposed first operand, and
batched products (numpy's broadcasting over the leading axes).

- a transposed first operand (Gemm's transA) is transposed on the chip first, one exact MXM
  transpose per matrix (`movement.swap_last`), or on the host if it is a constant;
- a batched product is one `MmStep` per output matrix, all writing one output tensor (each its
  own block of rows, as attention writes each head's scores): x streams its batch's rows (the
  term's x_row; a 2-D x is every batch's), W is its batch's rows of W (a view of each part, or
  that batch's constant, split on the host). The steps share kernels as attention's heads do.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.graph import Node

if TYPE_CHECKING:
    from lpu_emu.compiler.lowering import Lowering, Term


def lhs(low: Lowering, n: Node) -> tuple[str, int, int]:
    """The first operand as a row-major chip tensor of (..., M, K) (transposed first if
    trans_a), its rows and K."""
    a = n.inputs[0]
    shape = tuple(low.graph.value(a).shape)
    data = low.value_const(a)
    if not n.attr("trans_a"):
        name = low.leaf(a).name if data is None else low.const_leaf(a).name
        return name, low.dims(a)[0], shape[-1]
    rows = math.prod(shape[:-2]) * shape[-1]
    if data is not None:
        t = np.swapaxes(np.asarray(data, dtype=np.float32), -1, -2)
        return low.const(f"{a}.T", t.reshape(rows, shape[-2])), rows, shape[-2]
    from lpu_emu.compiler.movement import swap_last
    return swap_last(low, low.leaf(a).name, shape, f"{a}.T", f"{n.name} first operand"), \
        rows, shape[-2]


def _batch_index(shape: tuple[int, ...], batch: tuple[int, ...]) -> np.ndarray:
    """For each output matrix (row-major over `batch`), the operand's matrix it reads: the
    operand's leading axes `shape` broadcast to `batch`."""
    shape = (1,) * (len(batch) - len(shape)) + tuple(shape)
    idx = np.indices(batch).reshape(len(batch), -1)
    return np.ravel_multi_index(tuple(np.minimum(idx[d], shape[d] - 1)
                                      for d in range(len(batch))), shape)


def batched_matmul(low: Lowering, n: Node) -> None:
    """n's output = one 2-D product per output matrix (see the module docstring)."""
    from lpu_emu.compiler.lowering import MmStep
    a, b = n.inputs[:2]
    ga, gb = low.graph.value(a).shape, low.graph.value(b).shape
    full = tuple(low.graph.value(n.outputs[0]).shape)
    batch, m = full[:-2], full[-2]
    x, _, k = lhs(low, n)
    rows, cols = low.dims(n.outputs[0])
    out = low.tensor(low.fresh(n.outputs[0]), rows, cols, pinned=low.pinned.get(n.outputs[0]))
    bias = None
    if len(n.inputs) == 3:
        bias = low.operand(n.inputs[2], (rows, cols), full)
    ia, ib = _batch_index(ga[:-2], batch), _batch_index(gb[:-2], batch)
    mask = None
    if n.attr("trans_b") and k % low.target.lanes and low.value_const(b) is None:
        # as in op_MatMul: K runs across lanes, and x's padding lanes would meet W's
        mask = (low.const(f"{n.name}.k", np.ones((1, k)), low._fmxm()), 0)
    terms: dict[int, tuple[Term, object, str]] = {}
    for i in range(math.prod(batch)):
        j = int(ib[i])
        if j not in terms:
            terms[j] = _w_term(low, n, x, k, j, mask)
        term, epi, mxm = terms[j]
        if bias is not None:
            epi = E.add(epi, bias)
        low.steps.append(MmStep(out, (replace(term, x_row=int(ia[i]) * m),), epi, mxm,
                                f"{n.name} batch {i}", out_row=i * m, rows=m))
    low.exprs[n.outputs[0]] = E.Leaf(out)


def _w_term(low: Lowering, n: Node, x: str, k: int, j: int,
            mask: tuple | None) -> tuple[Term, object, str]:
    """x @ W_j (W's matrix j), its epilogue before the bias, and its MXM dtype."""
    from lpu_emu.compiler.lowering import ACC, Term
    b = n.inputs[1]
    gb = low.graph.value(b).shape
    trans = bool(n.attr("trans_b"))
    xrows = low.tensors[x].rows
    w = low.value_const(b)
    if w is not None:
        wj = np.asarray(w, dtype=np.float32).reshape(-1, *gb[-2:])[j]
        term, scale = low._const_term(x, xrows, wj, trans, f"{b}.{j}", n.inputs[0])
        if scale is None:
            return term, ACC, low.mode.mxm
        return term, E.mul(E.Ex("Cvt", (ACC,), dtype="int32", dtype2="fp32"),
                           E.Leaf(scale, "row")), low.mode.mxm
    p, mxm = low._fparts(), low._fmxm()
    src = low.leaf(b).name
    wr, wc = gb[-2], gb[-1]
    parts = low.split(E.Leaf(src), low.dims(b)[0], wc, p, mxm)
    views = tuple(low.tensor(low.fresh(f"{part}.m{j}"), wr, wc, dtype=mxm, view=(part, j * wr))
                  for part in parts)
    xs = low.split(E.Leaf(x), xrows, k, p, mxm)
    return Term(xs, views, "IWT" if trans else "IW", parts=p, x_mask=mask), ACC, mxm
