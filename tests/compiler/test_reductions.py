"""ReduceSum, ReduceMean and ReduceMax, and broadcasting over rows, compiled alone and checked
against the float64 evaluation (the bounds of compiler_helpers.TOL).

The last axis is the lanes: its rows of 1, 319 and 321 columns are one partial chunk and a chunk
plus a column; a column kept (keepdims 1) stays repeated across the lanes, a column not kept
moves into the lanes (321 rows become one row of two chunks). Leading axes are the rows: each
set of axes of a 3-D value, kept or not, among them axis 0, whose reduced rows interleave.
"""

from __future__ import annotations

import numpy as np
import pytest
from compiler_helpers import check, random_inputs, single

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.lowering import MapStep, ReduceStep
from lpu_emu.compiler.pipeline import compile_graph

REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax")
LAST_SHAPES = [(1, 1), (2, 319), (17, 321), (319, 2), (321, 17), (1, 640)]
LEAD_AXES = [(0,), (1,), (0, 1), (1, 2), (0, 2), (0, 1, 2), ()]


def reduce_case(op: str, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: int):
    g = single(op, {"x": shape}, axes=axes, keepdims=keepdims)
    return g, random_inputs(g, sum(shape) + len(axes))


@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("shape", LAST_SHAPES, ids=str)
@pytest.mark.parametrize("op", REDUCE)
def test_reduce_over_the_last_axis_matches_numpy_fp32(op, shape, keepdims):
    check(*reduce_case(op, shape, (-1,), keepdims), "fp32")


@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("axes", LEAD_AXES, ids=str)
@pytest.mark.parametrize("op", REDUCE)
def test_reduce_over_leading_axes_matches_numpy_fp32(op, axes, keepdims):
    """(3, 4, 5): the rows (3, 4) reduced by one, both or no axis, with or without the
    lanes; axes () is every axis (ONNX's default)."""
    check(*reduce_case(op, (3, 4, 5), axes, keepdims), "fp32")


@pytest.mark.parametrize("shape", [(1, 319, 2), (2, 1, 321), (321, 1, 1)], ids=str)
@pytest.mark.parametrize("op", REDUCE)
def test_reduce_of_long_and_unit_axes_matches_numpy_fp32(op, shape):
    check(*reduce_case(op, shape, (0, 1), 1), "fp32")
    check(*reduce_case(op, shape, (1, 2), 0), "fp32")


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
@pytest.mark.parametrize("op", REDUCE)
def test_reduce_matches_numpy_in_16_bit_modes(op, mode):
    check(*reduce_case(op, (3, 17, 321), (1, 2), 0), mode)
    check(*reduce_case(op, (3, 17, 321), (0,), 1), mode)


def _steps(op: str, shape: tuple[int, ...], axes: tuple[int, ...]) -> list[tuple]:
    g, _ = reduce_case(op, shape, axes, 1)
    out = []
    for s in compile_graph(g, "lp30", "fp32").lowered.steps:
        if isinstance(s, ReduceStep):
            out.append(("reduce", s.rows, s.row0, s.out_row))
        elif isinstance(s, MapStep):
            out.append((s.expr.mnemonic, s.row0, s.rows))
        else:
            out.append(type(s).__name__)
    return out


def test_reduce_max_over_rows_runs_on_the_vxm():
    """(3, 4, 5): axis 1 is four consecutive rows per output (one recurrence each); axes 0 and
    1 together are one run of twelve; axis 0 interleaves, so blocks of four rows are folded in
    by passes (a copy, then two Max); the last axis transposes, reduces, transposes back."""
    assert _steps("ReduceMax", (3, 4, 5), (1,)) == [("reduce", 4, 4 * o, o) for o in range(3)]
    assert _steps("ReduceMax", (3, 4, 5), (0, 1)) == [("reduce", 12, 0, 0)]
    assert _steps("ReduceMax", (3, 4, 5), (0,)) == [("Mov", 0, 4), ("Max", 0, 4),
                                                    ("Max", 0, 4)]
    assert [s for s in _steps("ReduceMax", (3, 4, 5), (2,)) if not isinstance(s, tuple) or
            s[0] == "reduce"] == ["TransposeStep", ("reduce", 5, 0, 0), "TransposeStep"]


@pytest.mark.parametrize("axes", [(0,), (1,), (0, 1)], ids=str)
def test_reduce_max_over_rows_keeps_infinities(axes):
    x = np.random.default_rng(5).standard_normal((3, 4, 5)).astype(np.float32)
    x[0, 1, 2], x[2, 3, :] = np.inf, -np.inf
    g, _ = reduce_case("ReduceMax", (3, 4, 5), axes, 0)
    got = compile_graph(g, "lp30", "fp32").run({"x": x})["y"]
    np.testing.assert_array_equal(got, x.max(axis=axes))


@pytest.mark.xfail(strict=True, reason="a max over the last axis transposes on the MXM (as "
                   "softmax does): -inf times the identity's zeros is NaN in every output")
def test_reduce_max_over_the_last_axis_of_minus_inf():
    x = np.zeros((2, 3), dtype=np.float32)
    x[0, 1] = -np.inf
    g, _ = reduce_case("ReduceMax", (2, 3), (1,), 1)
    got = compile_graph(g, "lp30", "fp32").run({"x": x})["y"]
    np.testing.assert_array_equal(got, x.max(axis=1, keepdims=True))


def test_reduce_of_a_value_then_a_sum_of_the_reductions():
    """A mean and a max (each a column repeated across the lanes or not) meet x again by
    broadcasting: (x - mean) / max over rows of 321."""
    b = GraphBuilder("centred")
    x = b.input("x", (4, 321))
    mean = b.op("ReduceMean", [x], axes=(1,), keepdims=1)
    top = b.op("ReduceMax", [x], axes=(1,), keepdims=1)
    b.output(b.op("Add", [b.op("Sub", [x, mean]), top]), "y")
    g = b.build()
    check(g, random_inputs(g, 3), "fp32")


@pytest.mark.parametrize("src", [(2, 1, 1), (1, 4, 1), (3, 1, 5), (4, 5), (3, 4, 1)], ids=str)
@pytest.mark.parametrize("mode", ["fp32", "bf16"])
def test_binary_op_broadcasts_rows(src, mode):
    """x (3 or 2, 4, 5) + z: z's rows repeated by a 0/1 matrix on the MXM, a column across
    the lanes."""
    dst = (2, 4, 5) if src[0] == 2 else (3, 4, 5)
    g = single("Add", {"x": dst, "z": src})
    inputs = random_inputs(g, 7)
    if mode == "fp32":
        got = compile_graph(g, "lp30", mode).run(inputs)["y"]
        np.testing.assert_array_equal(got, inputs["x"] + inputs["z"])
    else:
        check(g, inputs, mode)
