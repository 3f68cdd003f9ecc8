"""lpu_emu.onnx_backend's own work: input mapping, shape-fixing inputs, compiling once per input
signature, outputs in the model's order and element types. The compiler is replaced by a
recording double that evaluates the graph it is given (the chip itself: test_onnx_backend_chip)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402
from onnx_helpers import checked, model  # noqa: E402

import lpu_emu.compiler  # noqa: E402
from lpu_emu import onnx_backend  # noqa: E402
from lpu_emu.compiler.evaluate import evaluate  # noqa: E402
from lpu_emu.errors import UsageError  # noqa: E402

N = helper.make_node
X = np.arange(12, dtype=np.float32).reshape(3, 4) - 5


class Recorder:
    """Stands in for compile_graph: remembers each graph and its options."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, graph: Any, **options: Any) -> Any:
        self.calls.append((graph, options))

        class Compiled:
            def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                return {k: v.astype(np.float32) for k, v in evaluate(graph, inputs).items()}
        return Compiled()


@pytest.fixture
def compiler(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(lpu_emu.compiler, "compile_graph", rec, raising=False)
    return rec


def two_outputs() -> Any:
    m = model([N("Relu", ["x"], ["r"]), N("Equal", ["r", "zero"], ["z"])], {"x": X},
              ["z", "r"], {"zero": np.float32(0)})
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.BOOL
    return checked(m)


def test_backend_outputs_in_model_order_and_types(compiler: Recorder) -> None:
    z, r = onnx_backend.prepare(two_outputs()).run([X])
    assert z.dtype == np.bool_ and r.dtype == np.float32
    np.testing.assert_array_equal(r, np.maximum(X, 0))
    np.testing.assert_array_equal(z, X <= 0)
    assert compiler.calls[0][1] == {"chip": "lp30", "dtype": "fp32"}


def test_backend_compiles_once_per_input_sizes(compiler: Recorder) -> None:
    m = checked(model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"], symbolic=True))
    rep = onnx_backend.prepare(m, dtype="bf16", chip="lp30")
    rep.run([X])
    rep.run({"x": X + 1})
    (y,) = rep.run([np.ones((2, 2), np.float32)])
    assert [g.value("x").shape for g, _ in compiler.calls] == [(3, 4), (2, 2)]
    assert compiler.calls[0][1]["dtype"] == "bf16"
    assert y.shape == (2, 2)


def test_backend_binds_shape_fixing_inputs(compiler: Recorder) -> None:
    node = N("Reshape", ["x", "shape"], ["y"])
    (y,) = onnx_backend.run_node(node, [X, np.array([2, 6])])
    np.testing.assert_array_equal(y, X.reshape(2, 6))
    graph = compiler.calls[0][0]
    assert graph.inputs == ("x",) and [n.op for n in graph.nodes] == ["Reshape"]


def test_backend_wrong_input_count_is_an_error(compiler: Recorder) -> None:
    rep = onnx_backend.prepare(two_outputs())
    with pytest.raises(UsageError) as e:
        rep.run([X, X])
    assert e.value.message == "the model takes 1 inputs, not 2"


def test_backend_missing_named_input_is_an_error(compiler: Recorder) -> None:
    with pytest.raises(UsageError) as e:
        onnx_backend.prepare(two_outputs()).run({"y": X})
    assert e.value.message == "no value for input 'x'"


def test_backend_devices() -> None:
    assert onnx_backend.supports_device("CPU") and not onnx_backend.supports_device("CUDA")
    with pytest.raises(UsageError) as e:
        onnx_backend.prepare(two_outputs(), device="CUDA")
    assert e.value.message == "device 'CUDA' is not supported"


def test_backend_prepare_checks_the_model() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"])
    with pytest.raises(UsageError) as e:
        onnx_backend.prepare(m)
    assert e.value.message == "invalid ONNX model: Field 'shape' of 'type' is required but missing."
