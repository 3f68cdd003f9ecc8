"""Helpers of the ONNX tests: one-node models built with onnx.helper, onnx's reference outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.frontends.onnx import import_model

FIXTURES = Path(__file__).parent / "fixtures"
TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
         np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.int32): TensorProto.INT32}


def model(nodes: list[Any], feeds: dict[str, np.ndarray], outputs: list[str],
          inits: dict[str, np.ndarray] | None = None, opset: int = 17,
          symbolic: bool = False) -> Any:
    """A model over `nodes`; inputs typed from `feeds` (dims symbolic if asked), outputs
    float32 of unknown shape (import_model itself does not run the checker)."""
    ins = [helper.make_tensor_value_info(
        k, TYPES[v.dtype], [f"d{i}" for i in range(v.ndim)] if symbolic else list(v.shape))
        for k, v in feeds.items()]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    m = helper.make_model(helper.make_graph(nodes, "test", ins, outs, inits),
                          opset_imports=[helper.make_opsetid("", opset)])
    return m


def checked(m: Any) -> Any:
    """The model with its output types filled in by shape inference (the checker wants them)."""
    m = onnx.shape_inference.infer_shapes(m)
    onnx.checker.check_model(m)
    return m


def reference(m: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    outs = ReferenceEvaluator(m).run(None, feeds)
    return {o.name: v for o, v in zip(m.graph.output, outs, strict=True)}


def through_ir(m: Any, feeds: dict[str, np.ndarray], **kw: Any) -> dict[str, np.ndarray]:
    graph = import_model(m, {k: v.shape for k, v in feeds.items()}, **kw)
    return evaluate(graph, feeds)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max abs error / max abs value: the issue's accuracy measure."""
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
