"""The graph's meaning: a float64 numpy evaluation of every op, one short function each.

This is the reference the compiled programs are checked against (and what the ONNX front end is
checked against onnx's own reference evaluator with). It never touches the chip.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lpu_emu.compiler.graph import Graph, Node
from lpu_emu.errors import UsageError

Array = np.ndarray
_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: Array, approximate: str = "none") -> Array:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def softmax(x: Array, mask: Array | None = None, causal: bool = False) -> Array:
    if mask is not None:
        x = x + mask
    if causal:
        rows, cols = x.shape[-2:]
        # row i sees keys 0 .. i + (cols - rows): a prompt of `rows` tokens after cols - rows cached
        keep = np.arange(cols)[None, :] <= np.arange(rows)[:, None] + (cols - rows)
        x = np.where(keep, x, -np.inf)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(x: Array, gamma: Array | None, beta: Array | None, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1.0 if gamma is None else gamma) + (0.0 if beta is None else beta)


def rmsnorm(x: Array, gamma: Array | None, eps: float) -> Array:
    y = x / np.sqrt((x**2).mean(axis=-1, keepdims=True) + eps)
    return y * (1.0 if gamma is None else gamma)


def attention(q: Array, k: Array, v: Array, mask: Array | None, heads: int, causal: bool,
              scale: float) -> Array:
    seq, d = q.shape
    dh = d // heads
    scale = scale or 1.0 / math.sqrt(dh)
    out = np.empty((seq, d))
    for h in range(heads):
        cols = slice(h * dh, (h + 1) * dh)
        p = softmax(q[:, cols] @ k[:, cols].T * scale, mask, causal)
        out[:, cols] = p @ v[:, cols]
    return out


def _matmul(node: Node, x: list[Array]) -> Array:
    a = np.swapaxes(x[0], -1, -2) if node.attr("trans_a") else x[0]
    b = np.swapaxes(x[1], -1, -2) if node.attr("trans_b") else x[1]
    return a @ b + (x[2] if len(x) == 3 else 0.0)


def _split(node: Node, x: list[Array]) -> list[Array]:
    axis = node.attr("axis")
    sizes = list(node.attr("split")) or [x[0].shape[axis] // len(node.outputs)] * len(
        node.outputs)
    return np.split(x[0], np.cumsum(sizes)[:-1], axis=axis)


def _gather(node: Node, x: list[Array]) -> Array:
    table, idx = x
    idx = idx.astype(np.int64)
    axis = node.attr("axis")
    rows = table.shape[axis]
    if idx.size and (idx.min() < -rows or idx.max() >= rows):
        raise UsageError(f"node {node.name!r} (Gather): an index is outside the table's "
                         f"{rows} rows")
    return np.take(table, idx, axis=axis)


def _slice(node: Node, x: list[Array]) -> Array:
    index = [slice(None)] * x[0].ndim
    index[node.attr("axis")] = slice(node.attr("start"), node.attr("end"), node.attr("step"))
    return x[0][tuple(index)]


def _softmax(node: Node, x: list[Array]) -> Array:
    return softmax(x[0], x[1] if len(x) > 1 else None, bool(node.attr("causal")))


def _cast(node: Node, x: list[Array]) -> Array:
    if node.attr("to") == "bool":
        return x[0] != 0
    return x[0].astype(np.float64 if node.attr("to").startswith("fp") else np.int64)


def _reduce(fn: Callable[..., Array]) -> Callable[[Node, list[Array]], Array]:
    def run(node: Node, x: list[Array]) -> Array:
        axes = tuple(node.attr("axes")) or None
        return fn(x[0], axis=axes, keepdims=bool(node.attr("keepdims")))
    return run


EVAL: dict[str, Callable[[Node, list[Array]], Array | list[Array]]] = {
    "MatMul": _matmul,
    "Add": lambda n, x: x[0] + x[1],
    "Sub": lambda n, x: x[0] - x[1],
    "Mul": lambda n, x: x[0] * x[1],
    "Div": lambda n, x: x[0] / x[1],
    "Exp": lambda n, x: np.exp(x[0]),
    "Tanh": lambda n, x: np.tanh(x[0]),
    "Erf": lambda n, x: _erf(x[0]),
    "Relu": lambda n, x: np.maximum(x[0], 0.0),
    "Sigmoid": lambda n, x: 1.0 / (1.0 + np.exp(-x[0])),
    "Neg": lambda n, x: -x[0],
    "Sqrt": lambda n, x: np.sqrt(x[0]),
    "Reciprocal": lambda n, x: 1.0 / x[0],
    "Gelu": lambda n, x: gelu(x[0], n.attr("approximate")),
    "Softmax": _softmax,
    "LayerNormalization": lambda n, x: layernorm(x[0], *(x[1:] + [None, None])[:2],
                                                 n.attr("epsilon")),
    "RMSNormalization": lambda n, x: rmsnorm(x[0], (x[1:] + [None])[0], n.attr("epsilon")),
    "Attention": lambda n, x: attention(x[0], x[1], x[2], x[3] if len(x) > 3 else None,
                                        n.attr("num_heads"), bool(n.attr("causal")),
                                        n.attr("scale")),
    "Transpose": lambda n, x: np.transpose(x[0], tuple(n.attr("perm")) or None),
    "Reshape": lambda n, x: x[0].reshape(n.attr("shape")),
    "Split": _split,
    "Concat": lambda n, x: np.concatenate(x, axis=n.attr("axis")),
    "Slice": _slice,
    "Gather": _gather,
    "Cast": _cast,
    "Pow": lambda n, x: np.power(x[0], x[1]),
    "Abs": lambda n, x: np.abs(x[0]),
    "ReduceMean": _reduce(np.mean), "ReduceSum": _reduce(np.sum), "ReduceMax": _reduce(np.max),
    "Equal": lambda n, x: x[0] == x[1],
    "Where": lambda n, x: np.where(x[0].astype(bool), x[1], x[2]),
    "Expand": lambda n, x: np.broadcast_to(x[0], tuple(n.attr("shape"))).copy(),
}


def evaluate(graph: Graph, inputs: dict[str, Array]) -> dict[str, Array]:
    """The graph's outputs for these inputs, in float64 (indices as int64)."""
    env: dict[str, Array] = {k: np.asarray(v, dtype=np.float64)
                             for k, v in graph.constants.items()}
    for name in graph.inputs:
        if name not in inputs:
            raise UsageError(f"no value for graph input {name!r}",
                             hint=f"inputs: {', '.join(graph.inputs)}")
        v = graph.value(name)
        arr = np.asarray(inputs[name])
        if tuple(arr.shape) != v.shape:
            raise UsageError(f"input {name!r} has shape {tuple(arr.shape)}, the graph wants "
                             f"{v.shape}")
        env[name] = arr.astype(np.int64 if v.dtype.startswith("int") else np.float64)
    for node in graph.nodes:
        result = EVAL[node.op](node, [env[i] for i in node.inputs])
        results = result if isinstance(result, list) else [result]
        env.update(zip(node.outputs, results, strict=True))
    return {o: env[o] for o in graph.outputs}
