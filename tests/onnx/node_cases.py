"""The official ONNX node test cases (generated in memory by onnx.backend.test.case.node: the
wheel ships their generators) of the ops the front end supports, sorted into scope."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from lpu_emu.compiler.frontends.onnx import STATIC_OPERANDS, SUPPORTED, real_inputs

FLOAT, BOOL, INT32, INT64 = 1, 9, 6, 7


@dataclass(frozen=True)
class NodeCase:
    name: str
    model: Any
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    rtol: float
    atol: float


@functools.cache
def all_cases() -> tuple[Any, ...]:
    from onnx.backend.test.case import node
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(node.collect_testcases(None))


def _data_types(model: Any) -> set[int]:
    """Element types of the tensors that flow on the chip (not the shape-fixing operands)."""
    static = {node.input[p] for node in model.graph.node
              for p in STATIC_OPERANDS.get(node.op_type, ()) if p < len(node.input)}
    return {v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]
            if v.name not in static}


def in_scope(case: Any) -> bool:
    """Every node an op of SUPPORTED, every data tensor float32 (bool and int indices beside)."""
    ops = {n.op_type for n in case.model.graph.node}
    types = _data_types(case.model)
    return ops <= set(SUPPORTED) and FLOAT in types and types <= {FLOAT, BOOL, INT32, INT64}


def supported_ops_cases() -> list[Any]:
    return [c for c in all_cases() if {n.op_type for n in c.model.graph.node} <= set(SUPPORTED)]


@functools.cache
def scoped() -> tuple[NodeCase, ...]:
    out = []
    for c in all_cases():
        if not in_scope(c):
            continue
        ins, outs = c.data_sets[0]
        names = [i.name for i in real_inputs(c.model)]
        out.append(NodeCase(c.name, c.model, dict(zip(names, ins, strict=False)),
                            {o.name: v for o, v in zip(c.model.graph.output, outs, strict=True)},
                            c.rtol, c.atol))
    return tuple(sorted(out, key=lambda c: c.name))
