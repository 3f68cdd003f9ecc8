"""Gathers in the one form the chip lowers: rows of a 2-D table picked by a vector of indices.

`rows_gathers(graph)` rewrites every other Gather(table, indices, axis) around one such Gather,
with ops the chip already moves data with (movement.py):

    t  = Transpose(table, (axis, the other axes))      the gathered axis first (axis 0: none)
    t2 = Reshape(t, (n, rest))                          one row per index value
    i  = Reshape(indices, (m,))                         the indices in a row
    g  = Gather(t2, i)                                  (m, rest): the lowering's one-hot matmul
    g2 = Reshape(g, (*I, *before, *after))
    y  = Transpose(g2, (before, I, after))              the indices' axes where the axis was

A Reshape or Transpose that would change nothing is left out, so an embedding lookup (a 2-D table,
a vector of indices) passes unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lpu_emu.compiler.graph import Graph, Node, Value


def rows_gathers(graph: Graph) -> Graph:
    """The graph with every Gather on the rows of a 2-D table by a 1-D vector of indices."""
    if all(n.op != "Gather" or _is_rows(graph, n) for n in graph.nodes):
        return graph
    values = dict(graph.values)
    nodes: list[Node] = []
    for n in graph.nodes:
        if n.op == "Gather" and not _is_rows(graph, n):
            nodes += _rewrite(n, values)
        else:
            nodes.append(n)
    return replace(graph, values=values, nodes=tuple(nodes)).check()


def _is_rows(graph: Graph, n: Node) -> bool:
    table, idx = (graph.value(v).shape for v in n.inputs)
    return len(table) == 2 and n.attr("axis") % 2 == 0 and len(idx) == 1


def _rewrite(n: Node, values: dict[str, Value]) -> list[Node]:
    table, idx = (values[v] for v in n.inputs)
    shape, axis = table.shape, n.attr("axis") % len(table.shape)
    before, after, ishape = shape[:axis], shape[axis + 1:], idx.shape
    rest = int(np.prod(before + after, dtype=np.int64))
    m = int(np.prod(ishape, dtype=np.int64))
    out: list[Node] = []

    def emit(op: str, x: str, shape_: tuple[int, ...], dtype: str, name: str | None = None,
             **attrs) -> str:
        name = name or f"{n.outputs[0]}.{op.lower()}{len(out)}"
        if values[x].shape == shape_ and (op == "Reshape" or attrs["perm"] == tuple(
                range(len(shape_)))):
            if name != n.outputs[0]:
                return x  # nothing to move
            op, attrs = "Reshape", {"shape": shape_}  # the output keeps its name
        values[name] = Value(name, shape_, dtype)
        out.append(Node(op, (x,), (name,), tuple(attrs.items()), f"{n.name}.{op.lower()}"))
        return name

    perm = (axis, *[k for k in range(len(shape)) if k != axis])
    t = emit("Transpose", table.name, tuple(shape[k] for k in perm), table.dtype, perm=perm)
    t2 = emit("Reshape", t, (shape[axis], rest), table.dtype, shape=(shape[axis], rest))
    i = emit("Reshape", idx.name, (m,), idx.dtype, shape=(m,))
    g = f"{n.outputs[0]}.rows"
    values[g] = Value(g, (m, rest), table.dtype)
    out.append(Node("Gather", (t2, i), (g,), (("axis", 0),), n.name))
    g2_shape = (*ishape, *before, *after)
    k = len(ishape)
    back = (*range(k, k + len(before)), *range(k), *range(k + len(before), len(g2_shape)))
    last = back == tuple(range(len(back)))  # axis 0: the Reshape gives the output
    g2 = emit("Reshape", g, g2_shape, table.dtype, n.outputs[0] if last else None,
              shape=g2_shape)
    if not last:
        emit("Transpose", g2, tuple(g2_shape[p] for p in back), table.dtype, n.outputs[0],
             perm=back)
    return out
