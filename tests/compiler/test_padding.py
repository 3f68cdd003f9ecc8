"""The finite-padding pass, before and after: which conversions to the MXM dtype it fixes, how,
and that the built-in layers need none of it in the bf16-range modes (so it costs them nothing).

Steps are rendered as in test_lowering (a Distribute's map index is its last argument)."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_helpers import compare, random_inputs
from test_lowering import expect, render

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.layers import bert_encoder_layer, gpt_decoder_layer, random_weights
from lpu_emu.compiler.lowering import lower
from lpu_emu.compiler.padding import (
    P,
    U,
    X,
    Z,
    classify,
    finite_padding,
    mxm_operands,
    padding_classes,
)
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.precision import mode
from lpu_emu.compiler.target import Target

LP30 = Target.of("lp30")


def before_after(build, dtype: str) -> tuple[list[str], list[str]]:
    b = GraphBuilder("g")
    build(b)
    low = lower(b.build(), mode(dtype), LP30)
    before = [render(s) for s in low.steps]
    after = finite_padding(low, LP30)
    return before, [render(s) + (f" chunk {s.chunk}" if getattr(s, "chunk", None) is not None
                                 else "") for s in after.steps]


def test_a_reciprocal_into_a_matmul_has_its_last_chunk_padding_zeroed():
    """1/x of a zero padding is 0 * inf: the conversion of its last chunk (330 columns: 10
    real lanes) goes through an SXM Distribute that zeroes lanes 10..319; chunk 0 has no
    padding and is converted as before."""
    def build(b):
        r = b.op("Reciprocal", [b.input("x", (2, 330))])
        b.output(b.matmul(r, b.constant("w", np.ones((330, 4), np.float32))), "y")
    before, after = before_after(build, "bf16")
    assert before[2] == "map reciprocal_1_bf160_5 = Cvt.fp32.bf16(reciprocal_1)"
    assert after == expect("""
        map stage_2 = Mul(Rsqrt(Mul(x, x)), Rsqrt(Mul(x, x)))
        map reciprocal_1 = Mul(x, stage_2)
        map reciprocal_1_bf160_5 = Cvt.fp32.bf16(reciprocal_1) chunk 0
        map reciprocal_1_bf160_5 = Distribute(Cvt.fp32.bf16(reciprocal_1), 0) chunk 1
        mm.bf16 matmul_3 = @acc with @acc = reciprocal_1_bf160_5 @ w_4
    """)


@pytest.mark.parametrize("op", ["Exp", "Tanh", "Sigmoid", "Relu"])
def test_finite_padding_into_a_matmul_is_left_alone(op):
    """exp(0) = 1, sigmoid(0) = 0.5: finite, so 0 times them is 0."""
    def build(b):
        r = b.op(op, [b.input("x", (2, 8))])
        b.output(b.matmul(r, b.constant("w", np.ones((8, 4), np.float32))), "y")
    before, after = before_after(build, "fp32")
    assert after == before


def test_an_fp16_squared_deviation_is_clamped_to_fp16s_range():
    """The padding of (x - mean)^2 is mean^2: inf in fp16 from |mean| >= 256. Each part's
    conversion clamps to +-65504 first (finite: zero after the ones matrix's zero rows)."""
    before, after = before_after(lambda b: b.output(b.layernorm(b.input("x", (2, 8))), "y"),
                                 "fp16")
    assert before[3] == ("map v_fp160_6 = Cvt.fp32.fp16(Mul(Sub(x, rowsum_2[col]), "
                         "Sub(x, rowsum_2[col])))")
    assert after == expect("""
        map x_fp160_3 = Cvt.fp32.fp16(x)
        map x_fp161_4 = Cvt.fp32.fp16(Sub(x, Cvt.fp16.fp32(x_fp160_3)))
        mm.fp16 rowsum_2 = MulI(@acc, 0.125) with @acc = x_fp160_3+x_fp161_4 @ ones8_1 parts 2
        map v_fp160_6 = Cvt.fp32.fp16(MinI(MaxI(Mul(Sub(x, rowsum_2[col]), Sub(x, rowsum_2[col])), -65504), 65504))
        map v_fp161_7 = Cvt.fp32.fp16(MinI(MaxI(Sub(Mul(Sub(x, rowsum_2[col]), Sub(x, rowsum_2[col])), Cvt.fp16.fp32(v_fp160_6)), -65504), 65504))
        mm.fp16 rowsum_5 = Rsqrt(AddI(MulI(@acc, 0.125), 1e-05)) with @acc = v_fp160_6+v_fp161_7 @ ones8_1 parts 2
        map layernormalization_8 = Mul(Sub(x, rowsum_2[col]), rowsum_5[col])
    """)  # noqa: E501


def test_classes_of_padding_lanes():
    z, col = E.Leaf("z"), E.Leaf("m", "col")
    pad = {"z": Z, "s": P}
    assert classify(E.unary("Rsqrt", E.mul(z, z)), pad, LP30) == X  # rsqrt(0) = inf
    assert classify(E.unary("Rsqrt", E.Leaf("s", "row")), pad, LP30) == P  # a sum of exps
    assert classify(E.unary("Exp", z), pad, LP30) == P
    assert classify(E.mul(E.sub(z, col), E.sub(z, col)), pad, LP30) == U  # mean^2
    assert classify(E.mul(E.sub(z, col), E.Leaf("g", "row")), {**pad, "g": Z}, LP30) == Z
    assert classify(E.mul(E.unary("Rsqrt", z), z), pad, LP30) == X  # 0 * inf
    fp16 = E.Ex("Cvt", (E.mul(col, col),), dtype2="fp16")
    assert classify(fp16, pad, LP30) == X  # mean^2 past 65504
    assert classify(E.Ex("Cvt", (E.mul(col, col),), dtype2="bf16"), pad, LP30) == U
    assert classify(E.Ex("Cvt", (z,), dtype2="fp16"), pad, LP30) == Z


def test_narrow_modes_clamp_the_built_in_layers_finite_padding():
    """fp16: LayerNorm's squared deviations (two parts each) and the softmax probabilities (of
    each of the two heads' ways) are clamped; fp8: the probabilities (its reductions are bf16).
    Nothing is zeroed."""
    w = random_weights(64, 128, seed=0)
    for dtype, want in (("fp16", {"v_fp160_38", "v_fp161_39", "v_fp160_57", "v_fp161_58",
                                  "attention_scoresT_16_p_fp160_24",
                                  "attention_scoresT_17_p_fp160_25"}),
                        ("fp8", {"attention_probs_21_fp8e4m30_24"})):
        low = lower(bert_encoder_layer(w, seq=4, heads=2), mode(dtype), LP30)
        old = {id(s) for s in low.steps}
        new = [s for s in finite_padding(low, LP30).steps if id(s) not in old]
        assert {s.out for s in new} == want
        assert all("MinI" in repr(s.expr) and "Distribute" not in repr(s.expr) for s in new)


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
@pytest.mark.parametrize("layer", ["bert", "gpt"])
def test_the_built_in_layers_need_no_fix(layer, dtype):
    """Their MXM operands' padding is zero or finite within bf16's range (LayerNorm's affine
    output is zero past d; softmax probabilities are finite): the pass changes nothing."""
    w = random_weights(64, 128, seed=0)
    g = (bert_encoder_layer(w, seq=4, heads=2) if layer == "bert"
         else gpt_decoder_layer(w, seq=4, heads=2))
    low = lower(g, mode(dtype), LP30)
    steps = list(low.steps)
    assert finite_padding(low, LP30).steps == steps


def _padding_after_run(compiled, inputs) -> dict[str, np.ndarray]:
    """Every tensor's padding lanes as the fast core left them in SRAM (tensors whose last
    chunk has padding; views and striped weights left out)."""
    from lpu_emu.core.run import run
    from lpu_emu.core.state import mem_ordinal, new_machine
    from lpu_emu.numerics import from_planes, from_storage
    chip = compiled.target.chip
    machine = new_machine(chip, compiled.program)
    assert run(compiled.program, chip, inputs=compiled.inputs_for(inputs), engine="fast",
               machine=machine).ok
    out = {}
    for name, loc in compiled.locs.items():
        width = loc.chunk_cols(loc.nchunks - 1) if loc.chunks else loc.lanes
        if loc.stripes or loc.base != name or width == loc.lanes:
            continue
        ch = loc.chunks[-1]
        planes = np.stack([machine.sram[mem_ordinal(chip, s.name), ch.bank,
                                        ch.addr:ch.addr + loc.rows] for s in ch.slices], axis=1)
        values = from_storage(from_planes(planes, loc.dtype), loc.dtype)
        out[name] = np.asarray(values, dtype=np.float64)[:, width:]
    return out


def _graphs():
    w = random_weights(64, 128, seed=0)
    yield "bert-mask", bert_encoder_layer(w, seq=4, heads=2, mask=True), "bf16", {Z, P, U}
    yield "gpt", gpt_decoder_layer(w, seq=4, heads=2), "fp16", {Z, P, U}
    b = GraphBuilder("pad")
    x = b.input("x", (4, 16))
    r = b.add(b.add(b.op("Sqrt", [x]), b.div(x, b.input("z", (4, 16)))), b.input("c", (4, 16)))
    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    b.output(b.matmul(b.layernorm(r), b.constant("w", w)), "y")
    yield "sqrt-div-layernorm", b.build(), "fp16", {Z, X}


@pytest.mark.parametrize("case", list(_graphs()), ids=lambda c: c[0])
def test_padding_lanes_on_the_chip_are_in_their_class(case):
    """The analysis checked against the chip: after a run, every tensor's padding lanes are
    zero (Z), positive and finite (P) or finite (U) as classified; X only where no MXM reads
    them, and the outputs are right. Inputs are uniform in [0.5, 2), c 300 more (the fp16
    LayerNorm's rows have a mean past 256)."""
    _, g, dtype, _ = case
    inputs = random_inputs(g, 0, {n: (0.5, 2.0) for n in g.inputs})
    if "c" in inputs:
        inputs["c"] += np.float32(300.0)
    compiled = compile_graph(g, "lp30", dtype)
    compare(g, inputs, compiled.run(inputs), dtype)
    cls = padding_classes(compiled.lowered, LP30)
    fed = mxm_operands(compiled.lowered.steps)
    seen = set()
    for name, lanes in _padding_after_run(compiled, inputs).items():
        c = cls[name]
        seen.add(c)
        if c == Z:
            assert np.all(lanes == 0), name
        elif c == P:
            assert np.all(np.isfinite(lanes) & (lanes > 0)), name
        elif c == U:
            assert np.all(np.isfinite(lanes)), name
        else:
            assert name not in fed, name
        if name in fed:
            assert np.all(np.isfinite(lanes)), name
    assert seen == case[3]
