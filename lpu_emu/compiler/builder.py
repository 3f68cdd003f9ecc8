"""GraphBuilder: the Python front end. Each method adds one node and returns its output's name.

    b = GraphBuilder("mlp")
    x = b.input("x", (16, 384))
    h = b.gelu(b.matmul(x, b.constant("w1", w1), bias=b.constant("b1", b1)))
    b.output(h, "y")
    graph = b.build()

Shapes are inferred as nodes are added (lpu_emu.compiler.shapes), so a mistake is reported at
the line that made it, naming the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lpu_emu.compiler.graph import OPS, Graph, Node, Value
from lpu_emu.compiler.shapes import infer
from lpu_emu.errors import UsageError


class GraphBuilder:
    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.values: dict[str, Value] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.nodes: list[Node] = []
        self.constants: dict[str, np.ndarray] = {}
        self._count: dict[str, int] = {}

    # ---- values ----
    def _fresh(self, base: str) -> str:
        n = self._count.get(base, 0)
        self._count[base] = n + 1
        name = base if n == 0 and base not in self.values else f"{base}_{n}"
        while name in self.values:
            n += 1
            name = f"{base}_{n}"
        return name

    def _new_value(self, name: str, shape: tuple[int, ...], dtype: str) -> str:
        if name in self.values:
            raise UsageError(f"a value named {name!r} exists already")
        if any(d <= 0 for d in shape):
            raise UsageError(f"value {name!r}: every dimension must be positive, not {shape}")
        self.values[name] = Value(name, tuple(int(d) for d in shape), dtype)
        return name

    def input(self, name: str, shape: tuple[int, ...], dtype: str = "fp32") -> str:
        self.inputs.append(self._new_value(name, shape, dtype))
        return name

    def constant(self, name: str, data: np.ndarray) -> str:
        data = np.asarray(data)
        dtype = "int64" if data.dtype.kind in "iu" else "fp32"
        self._new_value(name, data.shape, dtype)
        self.constants[name] = data.astype(np.int64 if dtype == "int64" else np.float32)
        return name

    def output(self, value: str, name: str | None = None) -> str:
        if name and name != value:
            value = self.op("Reshape", [value], name=name, shape=self.values[value].shape)
        self.outputs.append(value)
        return value

    def op(self, op: str, inputs: list[str], *, name: str | None = None, outputs: int = 1,
           **attrs: Any) -> Any:
        """Add a node of any op in OPS; returns its output name (a list if outputs > 1)."""
        if op not in OPS:
            raise UsageError(f"unknown op {op!r}", hint=f"ops: {', '.join(sorted(OPS))}")
        for i in inputs:
            if i not in self.values:
                raise UsageError(f"{op}: no value named {i!r}")
        base = name or op.lower()
        names = [name] if name and outputs == 1 else [self._fresh(base) for _ in range(outputs)]
        node = Node(op, tuple(inputs), tuple(names), tuple(sorted(attrs.items())),
                    name=self._fresh(f"{base}.node"))
        shapes = infer(node, [self.values[i].shape for i in inputs])
        dtype = "fp32" if op != "Gather" else self.values[inputs[0]].dtype
        for n, s in zip(names, shapes, strict=True):
            self._new_value(n, s, dtype)
        self.nodes.append(node)
        return names[0] if outputs == 1 else names

    def build(self) -> Graph:
        return Graph(self.name, dict(self.values), tuple(self.inputs), tuple(self.outputs),
                     tuple(self.nodes), dict(self.constants)).check()

    # ---- ops (the vocabulary; ONNX names underneath) ----
    def matmul(self, a: str, b: str, bias: str | None = None, *, transpose_a: bool = False,
               transpose_b: bool = False, name: str | None = None) -> str:
        inputs = [a, b] + ([bias] if bias else [])
        return self.op("MatMul", inputs, name=name, trans_a=int(transpose_a),
                       trans_b=int(transpose_b))

    def add(self, a: str, b: str, name: str | None = None) -> str:
        return self.op("Add", [a, b], name=name)

    def sub(self, a: str, b: str, name: str | None = None) -> str:
        return self.op("Sub", [a, b], name=name)

    def mul(self, a: str, b: str, name: str | None = None) -> str:
        return self.op("Mul", [a, b], name=name)

    def div(self, a: str, b: str, name: str | None = None) -> str:
        return self.op("Div", [a, b], name=name)

    def exp(self, x: str, name: str | None = None) -> str:
        return self.op("Exp", [x], name=name)

    def tanh(self, x: str, name: str | None = None) -> str:
        return self.op("Tanh", [x], name=name)

    def erf(self, x: str, name: str | None = None) -> str:
        return self.op("Erf", [x], name=name)

    def relu(self, x: str, name: str | None = None) -> str:
        return self.op("Relu", [x], name=name)

    def sigmoid(self, x: str, name: str | None = None) -> str:
        return self.op("Sigmoid", [x], name=name)

    def gelu(self, x: str, approximate: str = "none", name: str | None = None) -> str:
        if approximate not in ("none", "tanh"):
            raise UsageError(f"gelu: approximate must be 'none' or 'tanh', not {approximate!r}")
        return self.op("Gelu", [x], name=name, approximate=approximate)

    def softmax(self, x: str, mask: str | None = None, causal: bool = False,
                name: str | None = None) -> str:
        return self.op("Softmax", [x] + ([mask] if mask else []), name=name, causal=int(causal))

    def layernorm(self, x: str, gamma: str | None = None, beta: str | None = None,
                  epsilon: float = 1e-5, name: str | None = None) -> str:
        if beta and not gamma:
            raise UsageError("layernorm: beta needs gamma")
        inputs = [x] + [v for v in (gamma, beta) if v]
        return self.op("LayerNormalization", inputs, name=name, epsilon=float(epsilon))

    def rmsnorm(self, x: str, gamma: str | None = None, epsilon: float = 1e-6,
                name: str | None = None) -> str:
        return self.op("RMSNormalization", [x] + ([gamma] if gamma else []), name=name,
                       epsilon=float(epsilon))

    def attention(self, q: str, k: str, v: str, heads: int, mask: str | None = None,
                  causal: bool = False, scale: float = 0.0, name: str | None = None) -> str:
        return self.op("Attention", [q, k, v] + ([mask] if mask else []), name=name,
                       num_heads=int(heads), causal=int(causal), scale=float(scale))

    def transpose(self, x: str, perm: tuple[int, ...] = (), name: str | None = None) -> str:
        return self.op("Transpose", [x], name=name, perm=tuple(perm))

    def reshape(self, x: str, shape: tuple[int, ...], name: str | None = None) -> str:
        return self.op("Reshape", [x], name=name, shape=tuple(shape))

    def split(self, x: str, sizes: tuple[int, ...], axis: int = -1) -> list[str]:
        return self.op("Split", [x], outputs=len(sizes), axis=axis, split=tuple(sizes))

    def concat(self, xs: list[str], axis: int = -1, name: str | None = None) -> str:
        return self.op("Concat", list(xs), name=name, axis=axis)

    def slice(self, x: str, start: int, end: int, axis: int = -1,
              name: str | None = None) -> str:
        return self.op("Slice", [x], name=name, axis=axis, start=int(start), end=int(end))

    def gather(self, table: str, indices: str, name: str | None = None) -> str:
        return self.op("Gather", [table, indices], name=name)

    def cast(self, x: str, to: str = "fp32", name: str | None = None) -> str:
        return self.op("Cast", [x], name=name, to=to)
