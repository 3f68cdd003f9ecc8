"""The lowering as a pass, before and after: a tiny graph lowers to exactly the listed steps.

Each step is rendered one line by `render` below (written here, not by the compiler):
    map OUT [rows R0+N] = EXPR                  a VXM pass (one fused Expr)
    mm.DT OUT = EPILOGUE with @acc = X @ W ...  an MXM step: parts joined by +, IWT when the
                                                stationary operand is installed transposed,
                                                Cvt.fp32.DT(X) when X is rounded in the feed
    transpose.DT OUT = (PARTS)^T                a transpose on the MXM
    reduce.max|sum OUT = EXPR over N rows       a recurrence down the rows on one ALU
Leaves: `t[row 0]` a row broadcast down the rows (a bias), `t[col]` one value per row stored
across the lanes (a mean), `t[-2]` read from 2 rows back. Names carry the lowering's counter,
so a change of order shows up here too.
"""

from __future__ import annotations

import numpy as np

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.lowering import (
    MAX_ALUS,
    MapStep,
    MmStep,
    ReduceStep,
    TransposeStep,
    lower,
)
from lpu_emu.compiler.precision import mode
from lpu_emu.compiler.target import Target


def _expr(e) -> str:
    if isinstance(e, E.Leaf):
        if e.mode == "row":
            return f"{e.name}[row {e.row}]"
        if e.mode == "col":
            return f"{e.name}[col]"
        return f"{e.name}[{e.row:+d}]" if e.row else e.name
    if isinstance(e, E.Imm):
        return f"{e.value:g}"
    args = [_expr(a) for a in e.args] + ([f"{e.imm:g}"] if e.imm is not None else [])
    name = f"Cvt.{e.dtype}.{e.dtype2}" if e.mnemonic == "Cvt" else e.mnemonic
    return f"{name}({', '.join(args)})"


def _term(t) -> str:
    x = "+".join(t.x) if t.x_cvt is None else f"Cvt.fp32.{t.x_cvt}({t.x[0]})"
    x += f" * {t.x_mask[0]}[row {t.x_mask[1]}]" if t.x_mask else ""
    w = "+".join(t.w) + (f" * {t.w_mask[0]}[row {t.w_mask[1]}]" if t.w_mask else "")
    return (f"{x} @ {w}" + (" IWT" if t.install == "IWT" else "")
            + (f" parts {t.parts}" if t.parts != 1 else ""))


def render(step) -> str:
    if isinstance(step, MapStep):
        rows = f" rows {step.row0}+{step.rows}" if step.row0 or step.rows is not None else ""
        return f"map {step.out}{rows} = {_expr(step.expr)}"
    if isinstance(step, MmStep):
        return (f"mm.{step.mxm} {step.out} = {_expr(step.epilogue)} with @acc = "
                + " + ".join(_term(t) for t in step.terms))
    if isinstance(step, TransposeStep):
        return f"transpose.{step.mxm} {step.out} = ({'+'.join(step.x)})^T"
    if isinstance(step, ReduceStep):
        return (f"reduce.{step.how} {step.out} = {_expr(step.expr)} over {step.rows} rows"
                + (f" also {step.also}" if step.also else ""))
    raise TypeError(step)


def lowered(build, dtype: str = "bf16") -> list[str]:
    b = GraphBuilder("g")
    build(b)
    return [render(s) for s in lower(b.build(), mode(dtype), Target.of("lp30")).steps]


def expect(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]


def ones(*shape) -> np.ndarray:
    return np.ones(shape, np.float32)


def test_layernorm_lowers_to_two_ones_matmuls_and_one_map():
    """Split parts of x, ones-matmul mean (x 1/8), split of the squared deviation, ones-matmul
    variance with the Rsqrt epilogue, one final map with gamma and beta."""
    got = lowered(lambda b: b.output(b.layernorm(b.input("x", (2, 8)), b.constant("g", ones(8)),
                                                 b.constant("b", ones(8))), "y"))
    assert got == expect("""
        map x_bf160_3 = Cvt.fp32.bf16(x)
        map x_bf161_4 = Cvt.fp32.bf16(Sub(x, Cvt.bf16.fp32(x_bf160_3)))
        mm.bf16 rowsum_2 = MulI(@acc, 0.125) with @acc = x_bf160_3+x_bf161_4 @ ones8_1 parts 2
        map v_bf160_6 = Cvt.fp32.bf16(Mul(Sub(x, rowsum_2[col]), Sub(x, rowsum_2[col])))
        map v_bf161_7 = Cvt.fp32.bf16(Sub(Mul(Sub(x, rowsum_2[col]), Sub(x, rowsum_2[col])), Cvt.bf16.fp32(v_bf160_6)))
        mm.bf16 rowsum_5 = Rsqrt(AddI(MulI(@acc, 0.125), 1e-05)) with @acc = v_bf160_6+v_bf161_7 @ ones8_1 parts 2
        map layernormalization_10 = Add(Mul(Mul(Sub(x, rowsum_2[col]), rowsum_5[col]), g_8[row 0]), b_9[row 0])
    """)  # noqa: E501


def test_rmsnorm_in_fp32_sums_three_exact_parts():
    got = lowered(lambda b: b.output(b.rmsnorm(b.input("x", (2, 8))), "y"), "fp32")
    assert got == expect("""
        map v_bf160_3 = Cvt.fp32.bf16(Mul(x, x))
        map v_bf161_4 = Cvt.fp32.bf16(Sub(Mul(x, x), Cvt.bf16.fp32(v_bf160_3)))
        map v_bf162_5 = Cvt.fp32.bf16(Sub(Sub(Mul(x, x), Cvt.bf16.fp32(v_bf160_3)), Cvt.bf16.fp32(v_bf161_4)))
        mm.bf16 rowsum_2 = Rsqrt(AddI(MulI(@acc, 0.125), 1e-06)) with @acc = v_bf160_3+v_bf161_4+v_bf162_5 @ ones8_1 parts 3
        map rmsnormalization_6 = Mul(x, rowsum_2[col])
    """)  # noqa: E501


def test_a_single_consumer_chain_fuses_into_one_map():
    got = lowered(lambda b: b.output(b.relu(b.exp(b.op("Neg", [b.input("x", (2, 8))]))), "y"))
    assert got == ["map relu_1 = Relu(Exp(Neg(x)))"]


def test_a_matmul_takes_its_small_consumer_into_its_epilogue():
    def build(b):
        m = b.matmul(b.input("x", (2, 8)), b.constant("w", ones(8, 4)),
                     bias=b.constant("bias", ones(4)))
        b.output(b.relu(m), "y")
    assert lowered(build) == expect("""
        map x_bf160_4 = Cvt.fp32.bf16(x)
        mm.bf16 matmul_1 = Relu(Add(@acc, bias_2[row 0])) with @acc = x_bf160_4 @ w_3
    """)


def _residual(cols: int):
    def build(b):
        m = b.matmul(b.input("x", (8, 16)), b.constant("w", ones(16, cols)),
                     bias=b.constant("b", ones(cols)))
        b.output(b.add(m, b.input("r", (8, cols))), "y")
    return build


def test_a_wide_matmul_adds_its_bias_and_residual_summed_first():
    """Two output chunks: bias + residual is one VXM pass, first in the program (its tensors
    are written by no step), and the epilogue adds the one sum."""
    assert lowered(_residual(640)) == expect("""
        map matmul_1_addend_5 = Add(b_2[row 0], r)
        map x_bf160_4 = Cvt.fp32.bf16(x)
        mm.bf16 matmul_1 = Add(@acc, matmul_1_addend_5) with @acc = x_bf160_4 @ w_3
    """)


def test_a_one_chunk_matmul_keeps_bias_and_residual_in_its_epilogue():
    assert lowered(_residual(320)) == expect("""
        map x_bf160_4 = Cvt.fp32.bf16(x)
        mm.bf16 matmul_1 = Add(Add(@acc, b_2[row 0]), r) with @acc = x_bf160_4 @ w_3
    """)


def test_a_consumer_too_big_for_the_epilogue_reads_the_materialised_matmul():
    """GELU is five ALU ops (more than the epilogue's three): the matmul writes SRAM, and the
    GELU's two reads of it at different depths become two maps (nothing waits)."""
    b_ = lambda b: b.output(b.gelu(b.matmul(b.input("x", (2, 8)),  # noqa: E731
                                            b.constant("w", ones(8, 4)))), "y")
    assert lowered(b_) == expect("""
        map x_bf160_3 = Cvt.fp32.bf16(x)
        mm.bf16 matmul_1 = @acc with @acc = x_bf160_3 @ w_2
        map stage_5 = AddI(Erf(MulI(matmul_1, 0.707107)), 1)
        map gelu_4 = MulI(Mul(stage_5, matmul_1), 0.5)
    """)


def test_a_value_with_two_consumers_is_materialised():
    def build(b):
        e = b.exp(b.input("x", (2, 8)))
        b.output(b.add(b.relu(e), b.tanh(e)), "y")
    assert lowered(build) == expect("""
        map exp_1 = Exp(x)
        map stage_3 = Tanh(exp_1)
        map add_2 = Add(Relu(exp_1), stage_3)
    """)


def test_a_graph_output_that_is_also_consumed_is_materialised_once():
    def build(b):
        r = b.relu(b.input("x", (2, 8)))
        b.output(b.exp(r))
        b.output(r)
    assert lowered(build) == ["map relu_1 = Relu(x)", "map exp_2 = Exp(relu_1)"]


def test_a_computed_softmax_mask_is_added_before_the_transpose_and_floored():
    """Before, the sum of scores and an input mask went to the MXM transpose as it was: a -inf
    in the mask met the identity's zeros (NaN). Now it is floored to the transpose dtype's
    most negative finite value (three exact bf16 parts in fp32 mode: -3.38953e+38, 0, 0)."""
    got = lowered(lambda b: b.output(b.softmax(b.input("x", (2, 8)), b.input("m", (2, 8))),
                                     "y"), "fp32")
    assert got[:4] == expect("""
        map v_bf160_2 = Cvt.fp32.bf16(MaxI(Add(x, m), -3.38953e+38))
        map v_bf161_3 = Cvt.fp32.bf16(Sub(MaxI(Add(x, m), -3.38953e+38), Cvt.bf16.fp32(v_bf160_2)))
        map v_bf162_4 = Cvt.fp32.bf16(Sub(Sub(MaxI(Add(x, m), -3.38953e+38), Cvt.bf16.fp32(v_bf160_2)), Cvt.bf16.fp32(v_bf161_3)))
        transpose.bf16 softmax_T_1 = (v_bf160_2+v_bf161_3+v_bf162_4)^T
    """)  # noqa: E501


def test_fused_chains_stay_within_max_alus():
    """Regression: the limit was checked after a node joined the chain, so twelve Negs fused
    as eleven and one; now the chain is cut before the eleventh joins."""
    def build(b):
        v = b.input("x", (2, 8))
        for _ in range(12):
            v = b.op("Neg", [v])
        b.output(v, "y")
    sizes = [E.size(s.expr)[0] for s in lower_steps(build)]
    assert sizes == [MAX_ALUS, 12 - MAX_ALUS]


def test_a_sum_of_nine_tensors_is_staged_in_passes_of_four_fp32_leaves():
    """Each read takes a stream group of its own; a pass reads at most half of one
    direction's streams (16 of 32 on lp30: four fp32 tensors). Before, all nine were one pass
    and the kernel ran out of stream groups flowing east."""
    def build(b):
        v = b.input("x0", (3, 8))
        for i in range(1, 9):
            v = b.add(v, b.input(f"x{i}", (3, 8)))
        b.output(v, "y")
    assert lowered(build) == expect("""
        map add_2_1 = Add(Add(Add(x0, x1), x2), x3)
        map add_5_2 = Add(Add(Add(add_2_1, x4), x5), x6)
        map add_7_3 = Add(Add(add_5_2, x7), x8)
    """)


def lower_steps(build, dtype: str = "bf16"):
    b = GraphBuilder("g")
    build(b)
    return lower(b.build(), mode(dtype), Target.of("lp30")).steps


def test_elementwise_forms():
    """Sigmoid through tanh, division by a scalar constant as a multiply, a column operand
    broadcast across the lanes by a ones matmul (three exact parts), a row operand as a row
    leaf."""
    def build(b):
        x = b.input("x", (2, 8))
        s = b.div(b.sigmoid(x), b.constant("four", np.float32(4.0)))
        b.output(b.mul(b.add(s, b.input("r", (8,))), b.input("c", (2, 1))), "y")
    assert lowered(build) == expect("""
        map c_bf160_3 = Cvt.fp32.bf16(c)
        map c_bf161_4 = Cvt.fp32.bf16(Sub(c, Cvt.bf16.fp32(c_bf160_3)))
        map c_bf162_5 = Cvt.fp32.bf16(Sub(Sub(c, Cvt.bf16.fp32(c_bf160_3)), Cvt.bf16.fp32(c_bf161_4)))
        mm.bf16 c_bcast_2 = @acc with @acc = c_bf160_3+c_bf161_4+c_bf162_5 @ ones_1 parts 3
        map mul_6 = Mul(Add(MulI(MulI(AddI(Tanh(MulI(x, 0.5)), 1), 0.5), 0.25), r[row 0]), c_bcast_2[col])
    """)  # noqa: E501


def test_division_by_a_computed_value_computes_it_once():
    """1/b is b * rsqrt(b*b)^2: b is materialised first, not repeated four times."""
    got = lowered(lambda b: b.output(b.div(b.input("x", (2, 8)), b.tanh("x")), "y"))
    assert got == expect("""
        map tanh_1 = Tanh(x)
        map stage_3 = Mul(Rsqrt(Mul(tanh_1, tanh_1)), Rsqrt(Mul(tanh_1, tanh_1)))
        map div_2 = Mul(x, Mul(tanh_1, stage_3))
    """)


def test_causal_softmax_lowers_to_transpose_reductions_and_transpose_back():
    """The scores go to the MXM transpose without the mask, floored to bf16's most negative
    finite value (a -inf in them would meet the identity's zeros); the mask (-inf, transposed
    on the host) is added after; max and sum run down the rows; probabilities go back."""
    got = lowered(lambda b: b.output(b.softmax(b.input("x", (2, 8)), causal=True), "y"))
    assert got == expect("""
        map v_bf160_2 = Cvt.fp32.bf16(MaxI(x, -3.38953e+38))
        transpose.bf16 softmax_T_1 = (v_bf160_2)^T
        map softmax_masked_4 = Add(softmax_T_1, softmax_node_maskT_5)
        reduce.max softmax_masked_4_max_6 = softmax_masked_4 over 8 rows
        reduce.sum softmax_masked_4_sum_7 = Exp(Sub(softmax_masked_4, softmax_masked_4_max_6[row 0])) over 8 rows also softmax_masked_4_exp_8
        map softmax_masked_4_p_9 rows 0+8 = Mul(softmax_masked_4_exp_8, Mul(Rsqrt(softmax_masked_4_sum_7[row 0]), Rsqrt(softmax_masked_4_sum_7[row 0])))
        map softmax_masked_4_p_9_bf160_11 = Cvt.fp32.bf16(softmax_masked_4_p_9)
        transpose.bf16 softmax_10 = (softmax_masked_4_p_9_bf160_11)^T
    """)  # noqa: E501


def test_matmul_of_two_activations_transposed_masks_the_padding_lanes():
    def build(b):
        b.output(b.matmul(b.sigmoid(b.input("x", (2, 8))), b.input("z", (3, 8)),
                          transpose_b=True), "y")
    assert lowered(build) == expect("""
        map sigmoid_1 = MulI(AddI(Tanh(MulI(x, 0.5)), 1), 0.5)
        map sigmoid_1_bf160_4 = Cvt.fp32.bf16(sigmoid_1)
        map z_bf160_5 = Cvt.fp32.bf16(z)
        mm.bf16 matmul_2 = @acc with @acc = sigmoid_1_bf160_4 * matmul_node_k_3[row 0] @ z_bf160_5 IWT
    """)  # noqa: E501


def test_int8_matmul_quantizes_on_the_vxm_and_scales_in_the_epilogue():
    def build(b):
        b.output(b.matmul(b.input("x", (2, 8)), b.constant("w", ones(8, 4))), "y")
    assert lowered(build, "int8") == expect("""
        map x_int8_4 = Cvt.fp32.int8(MulI(x, 1))
        mm.int8 matmul_1 = Mul(Cvt.int32.fp32(@acc), w_scale_3[row 0]) with @acc = x_int8_4 @ w_q_2
    """)  # noqa: E501


def test_concat_of_rows_is_two_moves():
    def build(b):
        b.output(b.concat([b.input("x", (2, 8)), b.input("z", (3, 8))], axis=0), "y")
    assert lowered(build) == ["map concat_1 rows 0+2 = Mov(x)",
                              "map concat_1 rows 2+3 = Mov(z[-2])"]


def test_reshape_and_cast_are_free():
    def build(b):
        b.output(b.reshape(b.cast(b.relu(b.input("x", (2, 8)))), (1, 2, 8)), "y")
    assert lowered(build) == ["map cast_1 = Relu(x)"]
