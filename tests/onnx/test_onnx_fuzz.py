"""The loader under random, mutated and truncated bytes: a Graph or an LpuError, never another
exception (hypothesis)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

pytest.importorskip("onnx")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_helpers import model  # noqa: E402

from lpu_emu.compiler.frontends.onnx import import_model, model_from_bytes  # noqa: E402
from lpu_emu.errors import LpuError  # noqa: E402

N = helper.make_node


def small() -> bytes:
    """A checked model of four nodes (one folded) to mutate."""
    m = model([N("MatMul", ["x", "w"], ["h"]), N("Shape", ["h"], ["s"]),
               N("Reshape", ["h", "s"], ["r"]), N("Softmax", ["r"], ["y"], axis=-1)],
              {"x": np.ones((2, 3), np.float32)}, ["y"],
              {"w": np.arange(12, dtype=np.float32).reshape(3, 4)})
    for d in (2, 4):
        m.graph.output[0].type.tensor_type.shape.dim.add().dim_value = d
    return m.SerializeToString()


SMALL = small()
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def load(data: bytes) -> None:
    """What `lpu compile` does with a file's bytes; only LpuError may escape."""
    with contextlib.suppress(LpuError):
        import_model(model_from_bytes(data, "fuzz.onnx"), {})


def test_fuzz_small_model_itself_loads() -> None:
    graph = import_model(model_from_bytes(SMALL), {})
    assert [n.op for n in graph.nodes] == ["MatMul", "Reshape", "Softmax"]


@SETTINGS
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    load(data)


@SETTINGS
@given(st.integers(0, len(SMALL) - 1))
def test_fuzz_truncated(cut: int) -> None:
    load(SMALL[:cut])


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)),
                min_size=1, max_size=4))
def test_fuzz_mutated_bytes(edits: list[tuple[int, int]]) -> None:
    data = bytearray(SMALL)
    for pos, byte in edits:
        data[pos] = byte
    load(bytes(data))
