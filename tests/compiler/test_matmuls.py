"""MatMul with a transposed first operand and batched MatMul (matmuls.py), compiled alone and
checked against the float64 evaluation (the bounds of compiler_helpers.TOL): numpy's batch
broadcasting, 2-D operands broadcast to every batch, constant weights per batch, and K, M, N at
the tiling's edges (1, 319, 321).
"""

from __future__ import annotations

import numpy as np
import pytest
from compiler_helpers import both_cores, check, compare, random_inputs, single

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.lowering import MmStep, TransposeStep
from lpu_emu.compiler.pipeline import compile_graph

BATCHED = [((2, 3, 4), (2, 4, 3)), ((1, 2, 3, 4), (1, 2, 4, 3)), ((3, 1, 3, 4), (1, 2, 4, 2)),
           ((1, 4), (2, 4, 1)), ((2, 319, 1), (1, 1, 321)), ((2, 1, 321), (2, 321, 319)),
           ((5, 3), (2, 3, 3, 2))]
TRANSPOSED_A = [((4, 3), (5, 4), 1), ((6, 3), (6, 4), 0), ((321, 2), (321, 319), 0),
                ((1, 1), (1, 1), 0), ((2, 321, 5), (2, 321, 7), 0), ((319, 3), (2, 319), 1)]


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
@pytest.mark.parametrize(("a", "b"), BATCHED, ids=str)
def test_batched_matmul_matches_numpy(a, b, mode):
    g = single("MatMul", {"a": a, "b": b})
    check(g, random_inputs(g, len(a) + len(b)), mode)


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
@pytest.mark.parametrize(("a", "b", "trans_b"), TRANSPOSED_A, ids=str)
def test_matmul_of_a_transposed_first_operand_matches_numpy(a, b, trans_b, mode):
    g = single("MatMul", {"a": a, "b": b}, trans_a=1, trans_b=trans_b)
    check(g, random_inputs(g, a[-1] + b[-1]), mode)


@pytest.mark.parametrize("mode", ["fp32", "fp16"])
def test_batched_matmul_of_constant_weights(mode):
    """Each batch's weights are split on the host; a 2-D x meets every batch."""
    w = np.random.default_rng(0).standard_normal((3, 4, 321)).astype(np.float32)
    for a in [(3, 2, 4), (2, 4)]:
        g = single("MatMul", {"a": a}, {"w": w})
        check(g, random_inputs(g, len(a)), mode)


def test_batched_matmul_with_trans_b_and_bias():
    """The IR's MatMul takes Gemm's attributes at any rank: x (2, 3, 5) times (2, 4, 5)^T plus
    a bias row."""
    g = single("MatMul", {"a": (2, 3, 5), "b": (2, 4, 5), "c": (4,)}, trans_b=1)
    inputs = random_inputs(g, 5)
    _, got = both_cores(g, inputs, "fp32")
    compare(g, inputs, got, "fp32")


def test_transposed_constant_first_operand_is_transposed_on_the_host():
    gb = GraphBuilder("at")
    a = gb.constant("a", np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32))
    gb.output(gb.op("MatMul", [a, gb.input("b", (4, 2))], trans_a=1), "y")
    g = gb.build()
    low = compile_graph(g, "lp30", "fp32").lowered
    assert not any(isinstance(s, TransposeStep) for s in low.steps)
    check(g, random_inputs(g, 2), "fp32")


def test_batched_matmul_steps():
    """(3, 1, 3, 4) x (1, 2, 4, 2): six products, each writing its three rows of the output;
    x streams the rows of its batch (a's index broadcast over b's axis), and the two matrices
    of b are two views."""
    g = single("MatMul", {"a": (3, 1, 3, 4), "b": (1, 2, 4, 2)})
    low = compile_graph(g, "lp30", "fp32").lowered
    mms = [s for s in low.steps if isinstance(s, MmStep)]
    assert [(s.out_row, s.rows, s.terms[0].x_row) for s in mms] == [
        (0, 3, 0), (3, 3, 0), (6, 3, 3), (9, 3, 3), (12, 3, 6), (15, 3, 6)]
    views = [low.tensors[s.terms[0].w[0]].view for s in mms]
    assert [v[1] for v in views] == [0, 4] * 3
    assert len({v[0] for v in views}) == 1
