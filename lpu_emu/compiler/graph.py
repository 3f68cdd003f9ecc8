"""The compiler's graph IR: small frozen dataclasses, checked once when a Graph is built.

A Graph is a list of Nodes in topological order over named Values. Every Value has a static
shape (the chip has no dynamic shapes) and a dtype; constants (weights) carry their numpy data.
Ops use ONNX's names where ONNX has the op (MatMul, Add, Softmax, LayerNormalization, ...), so the
ONNX front end and the builder meet on one vocabulary; `OPS` lists every op with its arity and
attributes, and `Graph.check` rejects anything else with the op's name and the allowed list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lpu_emu.errors import UsageError

DTYPES = ("fp32", "int64", "int32", "bool")  # int64: indices, as ONNX; bool: Equal, masks


@dataclass(frozen=True)
class OpDef:
    """An op's signature: input counts and attribute defaults."""

    min_inputs: int
    max_inputs: int
    attrs: dict[str, Any] = field(default_factory=dict)


# ONNX names and ONNX attribute defaults where ONNX has the op; the rest are compiler ops that
# front ends produce by fusing patterns (Attention, Gelu's tanh form, RMSNormalization).
OPS: dict[str, OpDef] = {
    "MatMul": OpDef(2, 3, {"trans_a": 0, "trans_b": 0}),  # optional third input: bias
    "Add": OpDef(2, 2), "Sub": OpDef(2, 2), "Mul": OpDef(2, 2), "Div": OpDef(2, 2),
    "Exp": OpDef(1, 1), "Tanh": OpDef(1, 1), "Erf": OpDef(1, 1), "Relu": OpDef(1, 1),
    "Sigmoid": OpDef(1, 1), "Neg": OpDef(1, 1), "Sqrt": OpDef(1, 1), "Reciprocal": OpDef(1, 1),
    "Gelu": OpDef(1, 1, {"approximate": "none"}),
    "Softmax": OpDef(1, 2, {"axis": -1, "causal": 0}),  # optional second input: additive mask
    "LayerNormalization": OpDef(1, 3, {"epsilon": 1e-5}),
    "RMSNormalization": OpDef(1, 2, {"epsilon": 1e-6}),
    "Attention": OpDef(3, 4, {"num_heads": 1, "causal": 0, "scale": 0.0}),
    "Transpose": OpDef(1, 1, {"perm": ()}),
    "Reshape": OpDef(1, 1, {"shape": ()}),
    "Split": OpDef(1, 1, {"axis": -1, "split": ()}),
    "Concat": OpDef(1, 64, {"axis": -1}),
    "Slice": OpDef(1, 1, {"axis": -1, "start": 0, "end": 0, "step": 1}),
    "Gather": OpDef(2, 2, {"axis": 0}),  # np.take(table, indices, axis): an embedding lookup
    "Cast": OpDef(1, 1, {"to": "fp32"}),
    # added for the ONNX front end (ONNX names and defaults; axes as an attribute, as opset 13)
    "Pow": OpDef(2, 2), "Abs": OpDef(1, 1),
    "ReduceMean": OpDef(1, 1, {"axes": (), "keepdims": 1}),  # axes (): every axis
    "ReduceSum": OpDef(1, 1, {"axes": (), "keepdims": 1}),
    "ReduceMax": OpDef(1, 1, {"axes": (), "keepdims": 1}),
    "Equal": OpDef(2, 2),  # a bool result
    "Where": OpDef(3, 3),  # condition, x, y
    "Expand": OpDef(1, 1, {"shape": ()}),  # broadcast to `shape` (the output shape)
}


@dataclass(frozen=True)
class Value:
    name: str
    shape: tuple[int, ...]
    dtype: str = "fp32"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    name: str = ""

    def attr(self, key: str) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return OPS[self.op].attrs[key]


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    values: dict[str, Value]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: tuple[Node, ...]
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    def value(self, name: str) -> Value:
        return self.values[name]

    def producer(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {v: [] for v in self.values}
        for n in self.nodes:
            for i in n.inputs:
                out[i].append(n)
        return out

    def check(self) -> Graph:
        """Every op known, arities and attributes valid, values defined before use."""
        defined = set(self.inputs) | set(self.constants)
        for n in self.nodes:
            opdef = OPS.get(n.op)
            if opdef is None:
                raise UsageError(f"node {n.name!r}: unknown op {n.op!r}",
                                 hint=f"ops: {', '.join(sorted(OPS))}")
            if not opdef.min_inputs <= len(n.inputs) <= opdef.max_inputs:
                raise UsageError(f"node {n.name!r} ({n.op}) takes {opdef.min_inputs}.."
                                 f"{opdef.max_inputs} inputs, not {len(n.inputs)}")
            for k, _ in n.attrs:
                if k not in opdef.attrs:
                    raise UsageError(f"node {n.name!r} ({n.op}): unknown attribute {k!r}",
                                     hint=f"attributes: {', '.join(opdef.attrs) or '(none)'}")
            for i in n.inputs:
                if i not in defined:
                    raise UsageError(f"node {n.name!r} ({n.op}) reads {i!r} before it is defined")
            defined.update(n.outputs)
        for o in self.outputs:
            if o not in defined:
                raise UsageError(f"graph output {o!r} is never computed")
        return self

    def __str__(self) -> str:
        from lpu_emu.compiler.printer import graph_text
        return graph_text(self)
