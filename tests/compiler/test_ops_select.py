"""Pow, Where and Expand (the elementwise ops the ONNX front end brings), compiled alone and
checked against the float64 evaluation at the tiling's edge shapes (1, 319 and 321 columns, 321
rows). Where and Expand only move values, so they are compared bit for bit.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from compiler_helpers import check, random_inputs, single

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.errors import UsageError

SHAPES = [(1, 1), (2, 319), (17, 321), (321, 2)]
EXPONENTS = [2.0, 3.0, 4.0, 7.0, -1.0, -2.0, -3.0, 0.5, 1.5, 2.5, -0.5, -1.5]


def pow_case(shape: tuple[int, ...], c: float):
    g = single("Pow", {"x": shape}, {"e": np.float32(c)})
    dom = (0.5, 2.0, "signed") if float(c).is_integer() else (0.25, 4.0)
    return g, random_inputs(g, len(shape) + int(4 * c) + 40, {"x": dom})


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("c", EXPONENTS)
def test_pow_of_a_constant_exponent_matches_numpy_fp32(c, shape):
    """Whole exponents take signed bases (odd powers keep the sign); halves positive ones."""
    check(*pow_case(shape, c), "fp32")


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
@pytest.mark.parametrize("c", [3.0, -2.0, 1.5])
def test_pow_is_fp32_in_16_bit_modes(c, mode):
    """No matmul: the VXM's fp32 arithmetic in every mode."""
    check(*pow_case((17, 321), c), mode, tol=1e-4)


def test_pow_of_exponent_zero_is_one_even_for_nan():
    g = single("Pow", {"x": (2, 3)}, {"e": np.float32(0.0)})
    x = np.full((2, 3), np.nan, dtype=np.float32)
    np.testing.assert_array_equal(compile_graph(g, "lp30", "fp32").run({"x": x})["y"],
                                  np.ones((2, 3), np.float32))


@pytest.mark.parametrize(("consts", "message"), [
    ({}, "Pow with a computed exponent (e) is not lowered: x ** y is exp(y * log x), and the "
         "VXM has Exp but no Log"),
    ({"e": np.float32(1.25)}, "Pow with exponent 1.25 is not lowered"),
    ({"e": np.array([2.0, 3.0], np.float32)}, "Pow with an exponent that varies by element"),
    ({"e": np.full((2, 3, 2), 2.0, np.float32)},
     "Pow whose exponent broadcasts x (3, 2) to (2, 3, 2) is not lowered"),
])
def test_pow_refuses_what_needs_a_log(consts, message):
    shapes = {"x": (3, 2)} if consts else {"x": (3, 2), "e": (3, 2)}
    g = single("Pow", shapes, consts)
    with pytest.raises(UsageError, match=re.escape(message)):
        compile_graph(g, "lp30", "fp32")


def where_case(shape: tuple[int, int], cond: str, other: str, seed: int = 0):
    """Where(c, x, y): c an input of 0/1 (full, a row or a column) or a constant; y an input or
    the constant -inf (a mask)."""
    rng = np.random.default_rng(seed + shape[0] + shape[1])
    rows, cols = shape
    cshape = {"full": shape, "row": (cols,), "col": (rows, 1), "const": shape}[cond]
    cv = rng.integers(0, 2, cshape).astype(bool)
    b = GraphBuilder("where")
    c = b.constant("c", cv) if cond == "const" else b.input("c", cshape, "bool")
    x = b.input("x", shape)
    y = b.constant("m", np.float32(-np.inf)) if other == "-inf" else b.input("z", shape)
    b.output(b.op("Where", [c, x, y]), "y")
    inputs = {"x": rng.standard_normal(shape).astype(np.float32)}
    if cond != "const":
        inputs["c"] = cv.astype(np.float32)
    if other != "-inf":
        inputs["z"] = rng.standard_normal(shape).astype(np.float32)
    want = np.where(cv, inputs["x"], inputs.get("z", np.float32(-np.inf)))
    return b.build(), inputs, want


@pytest.mark.parametrize("other", ["input", "-inf"])
@pytest.mark.parametrize("cond", ["full", "row", "col", "const"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_where_selects_exactly(shape, cond, other):
    g, inputs, want = where_case(shape, cond, other)
    got = compile_graph(g, "lp30", "fp32").run(inputs)["y"]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_where_selects_exactly_in_16_bit_modes(mode):
    g, inputs, want = where_case((17, 321), "full", "-inf")
    np.testing.assert_array_equal(compile_graph(g, "lp30", mode).run(inputs)["y"], want)


EXPANDS = [((1, 321), (17, 321)), ((321, 1), (321, 2)), ((1, 1), (2, 319)), ((3, 1, 5), (3, 4, 5)),
           ((4, 1), (2, 4, 321)), ((2, 1, 1), (2, 3, 1)), ((1,), (321, 1))]


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
@pytest.mark.parametrize(("src", "dst"), EXPANDS, ids=str)
def test_expand_repeats_exactly(src, dst, mode):
    """fp32: bit for bit (rows repeated by exact 0/1 matmuls); bf16: rounded once on the MXM
    (a 0/1 matmul of parts of the mode's width), within the mode's bound."""
    g = single("Expand", {"x": src}, shape=dst)
    inputs = random_inputs(g, len(src) + dst[-1])
    if mode == "fp32":
        got = compile_graph(g, "lp30", mode).run(inputs)["y"]
        np.testing.assert_array_equal(got, np.broadcast_to(inputs["x"], dst))
    else:
        check(g, inputs, mode)


def test_expand_of_a_constant_is_folded_on_the_host():
    b = GraphBuilder("expand")
    x = b.input("x", (3, 4))
    b.output(b.op("Add", [x, b.op("Expand", [b.constant("w", np.arange(4.0))], shape=(3, 4))]),
             "y")
    g = b.build()
    c = compile_graph(g, "lp30", "fp32")
    assert [type(s).__name__ for s in c.lowered.steps] == ["MapStep"]
    inputs = random_inputs(g)
    np.testing.assert_array_equal(c.run(inputs)["y"],
                                  inputs["x"] + np.arange(4.0, dtype=np.float32))
