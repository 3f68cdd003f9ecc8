"""Concat, Slice and Transpose along any axis (movement.py), compiled alone. Moves of rows are
VXM Mov passes and moves of lanes SXM Distribute, so they are compared with numpy bit for bit;
only a swap of the last two axes crosses the MXM (an exact transpose in fp32, one bf16 part in
the 16-bit modes). Shapes reach the tiling's edges: 1, 319 and 321 lanes, 321 rows.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from compiler_helpers import both_cores, check, random_inputs, single

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.lowering import MapStep, TransposeStep
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.errors import UsageError


def run(g, inputs: dict, mode: str = "fp32") -> np.ndarray:
    return compile_graph(g, "lp30", mode).run(inputs)["y"]


def _perms(rank: int) -> list[tuple[int, ...]]:
    return list(itertools.permutations(range(rank)))


@pytest.mark.parametrize(("shape", "perm"),
                         [(s, p) for s in [(2, 3, 4), (3, 1, 5)] for p in _perms(3)] +
                         [((2, 3, 4, 5), p) for p in _perms(4)[::5]], ids=str)
def test_transpose_every_perm_is_exact_fp32(shape, perm):
    g = single("Transpose", {"x": shape}, perm=perm)
    x = random_inputs(g, len(perm))
    np.testing.assert_array_equal(run(g, x), x["x"].transpose(perm))


@pytest.mark.parametrize(("shape", "perm"), [((2, 3, 321), (1, 0, 2)), ((2, 3, 321), (2, 0, 1)),
                                             ((321, 2, 3), (2, 1, 0)), ((1, 319, 2), (0, 2, 1)),
                                             ((1, 1, 1), (2, 0, 1))], ids=str)
def test_transpose_at_the_tiling_edges_is_exact_fp32(shape, perm):
    g = single("Transpose", {"x": shape}, perm=perm)
    x = random_inputs(g, 3)
    np.testing.assert_array_equal(run(g, x), x["x"].transpose(perm))


@pytest.mark.parametrize("perm", [(1, 0, 2), (2, 1, 0)], ids=str)
def test_transpose_in_bf16_mode(perm):
    """Rows move exactly in every mode; the MXM swap rounds to one bf16 part (as softmax's)."""
    g = single("Transpose", {"x": (3, 17, 321) if perm[-1] == 2 else (3, 17, 33)}, perm=perm)
    x = random_inputs(g, 4)
    if perm[-1] == 2:
        np.testing.assert_array_equal(run(g, x, "bf16"), x["x"].transpose(perm))
    else:
        check(g, x, "bf16")


def test_transpose_of_rows_keeps_infinities():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x[1, 2, 3], x[0, 0, 0] = np.inf, -np.nan
    g = single("Transpose", {"x": (2, 3, 4)}, perm=(1, 0, 2))
    np.testing.assert_array_equal(run(g, {"x": x}), x.transpose(1, 0, 2))


def _kinds(g) -> list[tuple]:
    out = []
    for s in compile_graph(g, "lp30", "fp32").lowered.steps:
        if isinstance(s, MapStep) and s.expr.mnemonic == "Mov":
            out.append(("Mov", s.row0, s.rows))
        elif isinstance(s, TransposeStep):
            out.append(("T", s.x_row, s.x_rows, s.out_row))
    return out


def test_transpose_steps():
    """(2, 3, 4): perm (1, 0, 2) is six single rows moved; (0, 2, 1) a transpose per block of
    three rows; (2, 0, 1) swaps first and reorders the rows of (2, 4, 3) after; (1, 2, 0)
    first brings axis 0 beside the lanes (rows of (3, 2, 4)), then swaps; (2, 1, 0) does both
    and reorders the rows of (3, 4, 2) after."""
    def mov(n):
        return [("Mov", r, 1) for r in range(n)]
    x = {"x": (2, 3, 4)}
    assert _kinds(single("Transpose", x, perm=(1, 0, 2))) == mov(6)
    assert _kinds(single("Transpose", x, perm=(0, 2, 1))) == [("T", 0, 3, 0), ("T", 3, 3, 4)]
    assert _kinds(single("Transpose", x, perm=(2, 0, 1))) == [("T", 0, 3, 0), ("T", 3, 3, 4),
                                                              *mov(8)]
    swaps = [("T", 0, 2, 0), ("T", 2, 2, 4), ("T", 4, 2, 8)]
    assert _kinds(single("Transpose", x, perm=(1, 2, 0))) == mov(6) + swaps
    assert _kinds(single("Transpose", x, perm=(2, 1, 0))) == mov(6) + swaps + mov(12)


SLICES = [((20, 10, 5), 1, 0, 9, 1), ((20, 10, 5), 1, 1, 1000, 1), ((20, 10, 5), 0, 19, -21, -1),
          ((20, 10, 5), 1, 9, -11, -3), ((20, 10, 5), 2, 4, 1, -2), ((3, 700), 1, 650, 10, -7),
          ((3, 700), 1, 5, 600, 2), ((4, 3, 321), 1, 0, 3, 2), ((4, 3, 321), 2, 320, -322, -1),
          ((321, 2), 0, 1, 321, 2), ((2, 319), 1, 318, 0, -1), ((1, 1), 1, 0, 1, 1)]


@pytest.mark.parametrize(("shape", "axis", "start", "end", "step"), SLICES, ids=str)
def test_slice_of_any_axis_and_step_is_exact(shape, axis, start, end, step):
    g = single("Slice", {"x": shape}, axis=axis, start=start, end=end, step=step)
    x = random_inputs(g, len(shape) + axis)
    cut = [slice(None)] * len(shape)
    cut[axis] = slice(start, end if end >= -shape[axis] else None, step)
    want = x["x"][tuple(cut)]
    got = run(g, x)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_slice_in_fp16_mode_and_on_the_reference_core():
    g = single("Slice", {"x": (4, 3, 321)}, axis=1, start=2, end=-4, step=-2)
    x = random_inputs(g, 9)
    np.testing.assert_array_equal(run(g, x, "fp16"), x["x"][:, 2::-2])
    _, got = both_cores(g, x, "fp32")
    np.testing.assert_array_equal(got["y"], x["x"][:, 2::-2])


def test_slice_of_rows_in_one_run_is_a_view():
    """Axis 0 of (20, 10, 5) from 3 to 7 is rows 30..69: no step at all."""
    g = single("Slice", {"x": (20, 10, 5)}, axis=0, start=3, end=7, step=1)
    low = compile_graph(g, "lp30", "fp32").lowered
    assert low.steps == []
    assert low.tensors[low.outputs["y"]].view == ("x", 30)
    x = random_inputs(g, 1)
    np.testing.assert_array_equal(run(g, x), x["x"][3:7])


def test_a_view_read_before_its_storage_is_placed_after_it():
    """Exp of rows 2..4 of an input: the only step reads the view, never the input itself, so
    placement must place the input (the view's storage) first (was a KeyError)."""
    b = GraphBuilder("sliced")
    s = b.op("Slice", [b.input("x", (1, 6, 5))], axis=1, start=2, end=5, step=1)
    b.output(b.op("Exp", [s]), "y")
    g = b.build()
    check(g, random_inputs(g, 1), "fp32")


@pytest.mark.parametrize("how", ["Add", "Concat"])
def test_two_views_of_one_storage_in_one_expression(how):
    """Rows 0..1 and 2..3 of x are views of one storage: an expression reading both would read
    its slices twice a cycle (a schedule violation), so one side is copied first."""
    b = GraphBuilder("halves")
    x = b.input("x", (1, 4, 5))
    s1 = b.op("Slice", [x], axis=1, start=0, end=2, step=1)
    s2 = b.op("Slice", [x], axis=1, start=2, end=4, step=1)
    b.output(b.op(how, [s1, s2], **({"axis": 2} if how == "Concat" else {})), "y")
    g = b.build()
    x = random_inputs(g, 2)["x"]
    want = x[:, :2] + x[:, 2:] if how == "Add" else np.concatenate([x[:, :2], x[:, 2:]], 2)
    np.testing.assert_array_equal(run(g, {"x": x}), want)


CONCATS = [([(2, 2, 2), (2, 2, 2)], 0), ([(2, 2, 2), (2, 3, 2)], 1),
           ([(3, 2, 4, 5), (3, 1, 4, 5), (3, 3, 4, 5)], 1), ([(2, 3, 321), (2, 1, 321)], 1),
           ([(2, 1, 319), (2, 1, 319)], -2), ([(1, 1), (1, 1)], 0), ([(321, 1), (321, 1)], 0)]


@pytest.mark.parametrize(("shapes", "axis"), CONCATS, ids=str)
def test_concat_along_leading_axes_is_exact(shapes, axis):
    b = GraphBuilder("concat")
    xs = [b.input(f"x{i}", s) for i, s in enumerate(shapes)]
    b.output(b.op("Concat", xs, axis=axis), "y")
    g = b.build()
    inputs = random_inputs(g, len(shapes) + axis)
    want = np.concatenate([inputs[f"x{i}"] for i in range(len(shapes))], axis=axis)
    np.testing.assert_array_equal(run(g, inputs), want)
    np.testing.assert_array_equal(run(g, inputs, "bf16"), want)


def test_concat_of_interleaved_blocks_steps():
    """Axis 1 of two (2, 2, 2): four blocks of two rows, each one Mov pass."""
    b = GraphBuilder("concat")
    xs = [b.input(f"x{i}", (2, 2, 2)) for i in range(2)]
    b.output(b.op("Concat", xs, axis=1), "y")
    assert _kinds(b.build()) == [("Mov", r, 2) for r in (0, 2, 4, 6)]


RESHAPES = [((2, 3, 4), (2, 12)), ((2, 12), (2, 3, 4)), ((4,), (4, 1)),
            ((3, 4, 5), (1, 3, 4, 5, 1)), ((6, 4), (4, 6)), ((3, 7), (7, 3)),
            ((2, 3, 321), (2, 963)), ((2, 963), (6, 321)), ((4, 640), (2, 1280)),
            ((2, 1280), (4, 640)), ((1, 319), (319, 1)), ((321, 1), (1, 321)), ((1, 1), (1,)),
            ((2, 3, 4), (24,)), ((1, 24), (6, 4)), ((3, 321), (1, 963))]


@pytest.mark.parametrize(("src", "dst"), RESHAPES, ids=str)
def test_reshape_that_changes_the_last_axis_is_exact_fp32(src, dst):
    g = single("Reshape", {"x": src}, shape=dst)
    x = random_inputs(g, len(src) + len(dst))
    got = run(g, x)
    assert got.shape == dst
    np.testing.assert_array_equal(got, x["x"].reshape(dst))


@pytest.mark.parametrize(("src", "dst"), [((2, 3, 321), (2, 963)), ((2, 963), (6, 321)),
                                          ((6, 4), (4, 6)), ((3, 7), (7, 3))], ids=str)
def test_reshape_in_bf16_mode(src, dst):
    """Where one axis divides the other, rows and lanes move by Mov and Distribute: exact in
    every mode. Otherwise the rows cross the MXM as one bf16 part (as transposes do)."""
    g = single("Reshape", {"x": src}, shape=dst)
    x = random_inputs(g, 5)
    if max(src[-1], dst[-1]) % min(src[-1], dst[-1]) == 0:
        np.testing.assert_array_equal(run(g, x, "bf16"), x["x"].reshape(dst))
    else:
        check(g, x, "bf16")


def test_reshape_keeps_infinities_where_one_axis_divides_the_other():
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    x[0, 5], x[1, 0] = np.inf, -np.inf
    g = single("Reshape", {"x": (2, 12)}, shape=(2, 3, 4))
    np.testing.assert_array_equal(run(g, {"x": x}), x.reshape(2, 3, 4))
    g = single("Reshape", {"x": (2, 3, 4)}, shape=(2, 12))
    np.testing.assert_array_equal(run(g, {"x": x.reshape(2, 3, 4)}), x)


def _mov_rows(g) -> list[tuple]:
    return [(s.row0, s.rows) for s in compile_graph(g, "lp30", "fp32").lowered.steps
            if isinstance(s, MapStep) and s.expr.mnemonic == "Mov"]


def test_reshape_steps():
    """(2, 12) -> (2, 3, 4) splits lanes into rows: three lane gathers (one per piece of a
    row), then each piece's rows move to rows t, 3 + t (one Mov each); (2, 3, 4) -> (2, 12)
    gathers the rows of each offset (rows j, 3 + j) and sums the three shifted by Distribute;
    (6, 4) -> (4, 6) has rows split between two output rows: 0/1 matmuls."""
    from lpu_emu.compiler.lowering import MmStep
    g = single("Reshape", {"x": (2, 12)}, shape=(2, 3, 4))
    assert _mov_rows(g) == [(t + 3 * r, 1) for t in range(3) for r in range(2)]
    g = single("Reshape", {"x": (2, 3, 4)}, shape=(2, 12))
    low = compile_graph(g, "lp30", "fp32").lowered
    assert _mov_rows(g) == [(r, 1) for _ in range(3) for r in range(2)]
    assert len(low.lanemaps) == 3
    assert not any(isinstance(s, MmStep) for s in low.steps)
    g = single("Reshape", {"x": (6, 4)}, shape=(4, 6))
    mms = [s for s in compile_graph(g, "lp30", "fp32").lowered.steps if isinstance(s, MmStep)]
    assert len(mms) == 4  # the classes (d, t): (0, 0), (4, 0), (4, 1), (2, 0)


def test_reshape_that_needs_too_many_lane_maps_is_refused():
    """(5, 319) -> (319, 5): the five rows start at five offsets within an output row, and their
    pieces of five lanes move by 323 different shifts, a lane map each; an SXM instruction
    names one of 256."""
    g = single("Reshape", {"x": (5, 319)}, shape=(319, 5))
    with pytest.raises(UsageError, match=re.escape(
            "the program needs more than the 256 lane maps an SXM instruction can name")):
        compile_graph(g, "lp30", "fp32")
