"""Shape inference: one small function per op, shared by the builder and the front ends."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lpu_emu.compiler.graph import Node
from lpu_emu.errors import UsageError

Shapes = list[tuple[int, ...]]


def _fail(node: Node, message: str) -> UsageError:
    return UsageError(f"node {node.name!r} ({node.op}): {message}")


def broadcast(node: Node, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(a, b))
    except ValueError:
        raise _fail(node, f"shapes {a} and {b} do not broadcast") from None


def _elementwise(node: Node, shapes: Shapes) -> Shapes:
    out = shapes[0]
    for s in shapes[1:]:
        out = broadcast(node, out, s)
    return [out]


def _matmul(node: Node, shapes: Shapes) -> Shapes:
    a, b = list(shapes[0]), list(shapes[1])
    if len(a) < 2 or len(b) < 2:
        raise _fail(node, f"operands need 2 or more dimensions, not {tuple(a)} and {tuple(b)}")
    if node.attr("trans_a"):
        a[-1], a[-2] = a[-2], a[-1]
    if node.attr("trans_b"):
        b[-1], b[-2] = b[-2], b[-1]
    if a[-1] != b[-2]:
        raise _fail(node, f"inner dimensions differ: {tuple(a)} x {tuple(b)}")
    batch = broadcast(node, tuple(a[:-2]), tuple(b[:-2]))
    out = (*batch, a[-2], b[-1])
    if len(shapes) == 3:
        broadcast(node, out, shapes[2])
    return [out]


def _same(node: Node, shapes: Shapes) -> Shapes:
    return [shapes[0]]


def _attention(node: Node, shapes: Shapes) -> Shapes:
    q, k, v = shapes[:3]
    heads = node.attr("num_heads")
    if len(q) != 2 or k != v or len(k) != 2 or q[1] != k[1] or q[1] % heads:
        raise _fail(node, f"q {q}, k {k}, v {v} are not (seq, d) with d divisible by "
                          f"{heads} heads")
    return [q]


def _transpose(node: Node, shapes: Shapes) -> Shapes:
    s = shapes[0]
    perm = tuple(node.attr("perm")) or tuple(reversed(range(len(s))))
    if sorted(perm) != list(range(len(s))):
        raise _fail(node, f"perm {perm} is not a permutation of {len(s)} axes")
    return [tuple(s[p] for p in perm)]


def _reshape(node: Node, shapes: Shapes) -> Shapes:
    s, target = shapes[0], list(node.attr("shape"))
    size = int(np.prod(s, dtype=np.int64))
    for i, d in enumerate(target):
        if d == 0:
            target[i] = s[i]
    if target.count(-1) == 1:
        rest = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        target[target.index(-1)] = size // rest if rest else 0
    if int(np.prod(target, dtype=np.int64)) != size:
        raise _fail(node, f"cannot reshape {s} to {tuple(node.attr('shape'))}")
    return [tuple(int(d) for d in target)]


def _axis(node: Node, rank: int) -> int:
    axis = node.attr("axis")
    if not -rank <= axis < rank:
        raise _fail(node, f"axis {axis} out of range for rank {rank}")
    return axis % rank


def _split(node: Node, shapes: Shapes) -> Shapes:
    s = shapes[0]
    axis = _axis(node, len(s))
    sizes = list(node.attr("split")) or [s[axis] // len(node.outputs)] * len(node.outputs)
    if sum(sizes) != s[axis] or len(sizes) != len(node.outputs):
        raise _fail(node, f"split {sizes} does not cut axis {axis} of {s} into "
                          f"{len(node.outputs)} parts")
    return [tuple(d if i != axis else n for i, d in enumerate(s)) for n in sizes]


def _concat(node: Node, shapes: Shapes) -> Shapes:
    axis = _axis(node, len(shapes[0]))
    for s in shapes[1:]:
        if len(s) != len(shapes[0]) or any(a != b for i, (a, b) in
                                           enumerate(zip(s, shapes[0], strict=True))
                                           if i != axis):
            raise _fail(node, f"shapes {shapes} differ outside axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [tuple(out)]


def _slice(node: Node, shapes: Shapes) -> Shapes:
    s = list(shapes[0])
    axis = _axis(node, len(s))
    start, end, step = node.attr("start"), node.attr("end"), node.attr("step")
    if step == 0:
        raise _fail(node, "step 0")
    n = len(range(*slice(start, end, step).indices(s[axis])))
    if n <= 0:
        raise _fail(node, f"slice {start}:{end} of axis {axis} ({s[axis]}) is empty")
    s[axis] = n
    return [tuple(s)]


def _gather(node: Node, shapes: Shapes) -> Shapes:
    table, idx = shapes
    if not table:
        raise _fail(node, "the table must have 1 or more dimensions")
    axis = _axis(node, len(table))
    return [(*table[:axis], *idx, *table[axis + 1:])]


def _reduce(node: Node, shapes: Shapes) -> Shapes:
    s = shapes[0]
    axes = {a % len(s) for a in node.attr("axes")} if node.attr("axes") else set(range(len(s)))
    if any(not -len(s) <= a < len(s) for a in node.attr("axes")):
        raise _fail(node, f"axes {node.attr('axes')} out of range for rank {len(s)}")
    if node.attr("keepdims"):
        return [tuple(1 if i in axes else d for i, d in enumerate(s))]
    return [tuple(d for i, d in enumerate(s) if i not in axes)]


def _expand(node: Node, shapes: Shapes) -> Shapes:
    out = broadcast(node, shapes[0], tuple(node.attr("shape")))
    if out != tuple(node.attr("shape")):
        raise _fail(node, f"{shapes[0]} expands to {out}, not to {node.attr('shape')}")
    return [out]


INFER: dict[str, Callable[[Node, Shapes], Shapes]] = {
    "MatMul": _matmul, "Add": _elementwise, "Sub": _elementwise, "Mul": _elementwise,
    "Div": _elementwise, "Exp": _same, "Tanh": _same, "Erf": _same, "Relu": _same,
    "Sigmoid": _same, "Neg": _same, "Sqrt": _same, "Reciprocal": _same, "Gelu": _same,
    "Softmax": _same, "LayerNormalization": _same, "RMSNormalization": _same,
    "Attention": _attention, "Transpose": _transpose, "Reshape": _reshape, "Split": _split,
    "Concat": _concat, "Slice": _slice, "Gather": _gather, "Cast": _same,
    "Pow": _elementwise, "Abs": _same, "ReduceMean": _reduce, "ReduceSum": _reduce,
    "ReduceMax": _reduce, "Equal": _elementwise, "Where": _elementwise, "Expand": _expand,
}


def infer(node: Node, shapes: Shapes) -> Shapes:
    return INFER[node.op](node, shapes)
