"""Every op the lowering supports, compiled alone and checked against the float64 evaluation.

Shapes stress the tiling: a tensor's columns go in chunks of 320 lanes (1, 2, 15, 16, 17 and 319
columns are one partial chunk, 320 one exact chunk, 321 a chunk and one column, 640 two chunks);
a matmul's rows go in blocks of 64 accumulators (64 is one block, 65 a block and a row, 320 and
640 several), its K and N in tiles of 320; a transpose's rows become columns. The fast core runs
every shape; the reference interpreter (10-50x slower) runs small shapes and must agree with the
fast core bit for bit. Bounds per mode: compiler_helpers.TOL.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from compiler_helpers import MODES, TOL, both_cores, check, compare, random_inputs, single

from lpu_emu.asm.assembler import assemble_text
from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.errors import UsageError

# (rows, cols): rows 1, 2, 15, 16, 17, 64, 65, 319, 320, 321, 640 and cols 1, 2, 15, 16, 17, 64,
# 319, 320, 321, 640 each appear; 1-chunk, exact-chunk, chunk+1 and 2-chunk for both.
SHAPES = [(1, 1), (2, 2), (15, 17), (16, 16), (17, 15), (64, 319), (65, 320), (319, 321),
          (320, 64), (321, 1), (640, 2), (1, 640), (2, 321), (17, 640)]
SMALL = [(2, 17), (17, 15)]  # reference-core shapes

UNARY = {  # op: input domain (None: standard normal)
    "Exp": None, "Tanh": None, "Erf": None, "Relu": None, "Sigmoid": None, "Neg": None, "Abs": None,
    "Sqrt": (0.05, 4.0), "Reciprocal": (0.25, 4.0, "signed"),
}
BINARY = ("Add", "Sub", "Mul", "Div")
FORMS = ("full", "row", "col", "scalar", "const")  # second operand's shape / kind
DIVISOR = (0.25, 4.0, "signed")


def unary_case(op: str, rows: int, cols: int, **attrs):
    g = single(op, {"x": (rows, cols)}, **attrs)
    dom = UNARY.get(op)
    return g, random_inputs(g, rows * 1000 + cols, {"x": dom} if dom else None)


def binary_case(op: str, form: str, rows: int, cols: int):
    rng = np.random.default_rng(rows * 7 + cols)
    divide = op == "Div"
    if form == "scalar":
        g = single(op, {"x": (rows, cols)}, {"c": np.float32(-1.75)})
    elif form == "const":
        c = rng.uniform(0.25, 4.0, (rows, cols)) * rng.choice((-1, 1), (rows, cols))
        g = single(op, {"x": (rows, cols)}, {"c": c.astype(np.float32)})
    else:
        shape = {"full": (rows, cols), "row": (cols,), "col": (rows, 1)}[form]
        g = single(op, {"x": (rows, cols), "z": shape})
    return g, random_inputs(g, rows + cols, {"z": DIVISOR} if divide else None)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op", [*UNARY, "Gelu", "GeluTanh"])
def test_unary_op_matches_numpy_fp32(op, shape):
    if op.startswith("Gelu"):
        g, x = unary_case("Gelu", *shape, approximate="tanh" if op == "GeluTanh" else "none")
    else:
        g, x = unary_case(op, *shape)
    check(g, x, "fp32")


@pytest.mark.parametrize("shape", SHAPES[::2], ids=str)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("op", BINARY)
def test_binary_op_matches_numpy_fp32(op, form, shape):
    check(*binary_case(op, form, *shape), "fp32")


@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("op", BINARY)
def test_binary_op_matches_numpy_in_every_mode(op, form, mode):
    """Vector math is fp32 in every mode; a column broadcast goes through the MXM (exact
    parts), so these hold to fp32's bound whatever the mode."""
    check(*binary_case(op, form, 65, 321), mode, tol=TOL["fp32"])


@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize("op", [*UNARY, "Gelu"])
def test_unary_op_is_fp32_in_every_mode(op, mode):
    check(*unary_case(op, 17, 321), mode, tol=TOL["fp32"])


# ---- matmul ----
# (rows, K, N): K and N in 1, 2, 15, 16, 17, 319, 320, 321, 640; rows across the 64-row blocks
MM_SHAPES = [(1, 1, 1), (2, 17, 15), (15, 16, 17), (16, 2, 319), (17, 320, 321),
             (64, 321, 640), (65, 640, 320), (320, 15, 2), (1, 319, 640), (129, 64, 16)]


def matmul_case(rows: int, k: int, n: int, *, act: bool, trans: bool, bias: bool):
    rng = np.random.default_rng(rows + 3 * k + 7 * n)
    b = GraphBuilder("mm")
    x = b.input("x", (rows, k))
    wshape = (n, k) if trans else (k, n)
    w = b.input("w", wshape) if act else b.constant(
        "w", (rng.standard_normal(wshape) / math.sqrt(k)).astype(np.float32))
    c = b.constant("bias", rng.standard_normal(n).astype(np.float32)) if bias else None
    b.output(b.matmul(x, w, bias=c, transpose_b=trans), "y")
    g = b.build()
    return g, random_inputs(g, k)


MM_KINDS = [dict(act=False, trans=False, bias=True), dict(act=False, trans=True, bias=False),
            dict(act=True, trans=False, bias=False), dict(act=True, trans=True, bias=True)]


def _kind_id(kind: dict) -> str:
    return ("act" if kind["act"] else "const") + ("_T" if kind["trans"] else "") + (
        "_bias" if kind["bias"] else "")


@pytest.mark.parametrize("kind", MM_KINDS, ids=_kind_id)
@pytest.mark.parametrize("shape", MM_SHAPES, ids=str)
def test_matmul_matches_numpy_fp32(shape, kind):
    check(*matmul_case(*shape, **kind), "fp32")


@pytest.mark.parametrize("kind", MM_KINDS, ids=_kind_id)
@pytest.mark.parametrize("shape", [(2, 17, 15), (17, 320, 321), (65, 640, 320)], ids=str)
@pytest.mark.parametrize("mode", MODES[1:])
def test_matmul_matches_numpy_in_every_mode(mode, shape, kind):
    check(*matmul_case(*shape, **kind), mode)


def test_matmul_of_two_equal_row_tiles_installed_transposed_is_violation_free():
    """Regression: x @ w^T with w of 640 rows (two 320-row tiles of one chunk) loaded both
    planes from one MEM slice at once (queue-busy on MEM_W8)."""
    b = GraphBuilder("mm")
    b.output(b.matmul(b.input("x", (1, 1)), b.input("w", (640, 1)), transpose_b=True), "y")
    g = b.build()
    check(g, random_inputs(g), "bf16")


# ---- reductions: softmax, layernorm, rmsnorm ----
def softmax_case(rows: int, cols: int, mask: str | None = None, causal: bool = False):
    rng = np.random.default_rng(rows * cols)
    b = GraphBuilder("softmax")
    x = b.input("x", (rows, cols))
    m = None
    if mask == "input":
        m = b.input("m", (rows, cols))
    elif mask == "const":  # -1e4 where masked, never column 0 (a fully masked row is noise)
        mv = np.where(rng.random((rows, cols)) < 0.3, -1e4, 0.0)
        mv[:, 0] = 0.0
        m = b.constant("m", mv.astype(np.float32))
    b.output(b.softmax(x, m, causal=causal), "y")
    g = b.build()
    return g, random_inputs(g, rows + cols)


SOFTMAX_SHAPES = [(1, 1), (2, 17), (15, 16), (17, 320), (64, 321), (65, 640), (3, 319),
                  (321, 2), (640, 16), (16, 16)]
CAUSAL_SHAPES = [s for s in SOFTMAX_SHAPES if s[0] <= s[1]]  # every query sees a key


@pytest.mark.parametrize("mask", [None, "input", "const"])
@pytest.mark.parametrize("shape", SOFTMAX_SHAPES, ids=str)
def test_softmax_matches_numpy_fp32(shape, mask):
    check(*softmax_case(*shape, mask), "fp32")


@pytest.mark.parametrize("shape", CAUSAL_SHAPES, ids=str)
def test_causal_softmax_matches_numpy_fp32(shape):
    """Regression: the causal mask's -inf went through the MXM transpose (times the
    identity's zeros: NaN), so every shape but 1x1 gave NaN."""
    check(*softmax_case(*shape, causal=True), "fp32")


@pytest.mark.parametrize("case", [(None, False), ("input", False), ("const", False),
                                  (None, True)], ids=["plain", "input", "const", "causal"])
@pytest.mark.parametrize("mode", MODES[1:])
def test_softmax_matches_numpy_in_every_mode(mode, case):
    check(*softmax_case(17, 321, *case), mode)


@pytest.mark.parametrize("value", [-np.inf, np.finfo(np.float32).min], ids=["-inf", "f32min"])
@pytest.mark.parametrize("mode", ["fp32", "bf16", "fp16"])
def test_softmax_with_an_input_mask_of_minus_inf(mode, value):
    """Regression: an input mask goes through the MXM transpose with the scores, and its -inf
    times the identity's zeros was NaN (float32's min, as exported BERT masks hold, rounds to
    -inf in bf16). Scores and mask are now floored to the dtype's most negative finite value
    before the transpose: exp gives 0 there exactly."""
    g, x = softmax_case(2, 8, "input")
    x["m"][:, 3] = value
    got = compile_graph(g, "lp30", mode).run(x)["y"]
    assert np.all(got[:, 3] == 0.0)
    compare(g, x, {"y": got}, mode)


@pytest.mark.parametrize("value", [-np.inf, np.finfo(np.float32).min], ids=["-inf", "f32min"])
def test_attention_with_an_input_mask_of_minus_inf(value):
    """The same for Attention's computed mask, transposed alone (keys 1 and 3 masked)."""
    g, x = attention_case(3, 5, 32, 2, mask=True)
    x["m"][:, [1, 3]] = value
    check(g, x, "fp32")


def norm_case(op: str, rows: int, cols: int, affine: bool, offset: float = 0.0):
    rng = np.random.default_rng(rows + cols)
    b = GraphBuilder(op)
    x = b.input("x", (rows, cols))
    gamma = b.constant("g", rng.uniform(0.5, 1.5, cols).astype(np.float32)) if affine else None
    if op == "layernorm":
        beta = b.constant("b", rng.standard_normal(cols).astype(np.float32)) if affine else None
        y = b.layernorm(x, gamma, beta)
    else:
        y = b.rmsnorm(x, gamma)
    b.output(y, "y")
    g = b.build()
    inputs = random_inputs(g, rows * cols)
    inputs["x"] += np.float32(offset)
    return g, inputs


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op", ["layernorm", "rmsnorm"])
def test_norm_matches_numpy_fp32(op, shape, affine):
    """A one-column LayerNorm is beta exactly (plain: zero, compared absolutely)."""
    check(*norm_case(op, *shape, affine), "fp32")


@pytest.mark.parametrize("offset", [10.0, 100.0])
def test_layernorm_of_rows_far_from_zero_keeps_fp32_accuracy(offset):
    """Regression: two bf16 parts of the mean kept 16 bits (a 321x2 LayerNorm was 9e-5 off, a
    one-column one 7e-4); mean/std of 100 is still within fp32's bound with three."""
    check(*norm_case("layernorm", 64, 384, True, offset), "fp32")


@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize("op", ["layernorm", "rmsnorm"])
def test_norm_matches_numpy_in_every_mode(op, mode):
    check(*norm_case(op, 65, 321, True), mode)


def test_layernorm_fp16_of_rows_with_mean_256():
    """Regression: the padding lanes of the squared deviation hold mean^2, which overflowed
    fp16 (inf) for |mean| >= 256, and inf times the ones matrix's zero rows was NaN in every
    row; the conversion now clamps to the dtype's finite range (compiler/padding.py)."""
    check(*norm_case("layernorm", 1, 16, False, 256.0), "fp16")


# ---- attention ----
def attention_case(sq: int, sk: int, d: int, heads: int, causal: bool = False,
                   mask: bool = False):
    b = GraphBuilder("attention")
    q, k, v = b.input("q", (sq, d)), b.input("k", (sk, d)), b.input("v", (sk, d))
    m = b.input("m", (sq, sk)) if mask else None
    b.output(b.attention(q, k, v, heads, mask=m, causal=causal), "y")
    g = b.build()
    return g, random_inputs(g, sq * 100 + sk)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("heads", range(1, 13))
def test_attention_heads_of_16_lanes(heads, causal):
    """Heads 1..12 of 16 lanes each, 3 queries against 5 keys (causal: query i sees keys
    0..i+2, as a prompt after 2 cached tokens)."""
    check(*attention_case(3, 5, 16 * heads, heads, causal), "fp32")


ATTN = [(1, 1, 16, 1), (1, 17, 32, 2), (16, 16, 64, 4), (17, 17, 384, 12), (64, 64, 320, 10),
        (65, 65, 64, 1), (8, 40, 512, 8), (1, 65, 384, 12)]


@pytest.mark.parametrize("variant", ["full", "causal", "mask"])
@pytest.mark.parametrize("case", ATTN, ids=lambda c: "sq{}_sk{}_d{}_h{}".format(*c))
def test_attention_matches_numpy_fp32(case, variant):
    sq, sk, d, h = case
    if variant == "causal" and sq > sk:
        pytest.skip("a query would see no key")
    check(*attention_case(sq, sk, d, h, variant == "causal", variant == "mask"), "fp32")


@pytest.mark.parametrize("variant", ["full", "causal", "mask"])
@pytest.mark.parametrize("mode", MODES[1:])
def test_attention_matches_numpy_in_every_mode(mode, variant):
    check(*attention_case(16, 16, 64, 4, variant == "causal", variant == "mask"), mode)


def test_attention_rejects_heads_that_straddle_vectors():
    g, x = attention_case(2, 2, 3 * 48, 3)
    with pytest.raises(UsageError, match="head size 48 does not divide the 320 lanes"):
        compile_graph(g, "lp30", "fp32")


# ---- movement ----
MOVE_SHAPES = [(1, 1), (2, 17), (17, 320), (64, 321), (65, 640), (3, 319), (321, 2), (640, 16)]


@pytest.mark.parametrize("shape", MOVE_SHAPES, ids=str)
@pytest.mark.parametrize("mode", ["fp32", "bf16", "fp16"])
def test_transpose_is_exact(shape, mode):
    """Transposes run on the MXM against an identity: exact in fp32 (three bf16 parts);
    rounded to the MXM dtype once in the 16-bit modes."""
    g = single("Transpose", {"x": shape})
    x = random_inputs(g, shape[0])
    got = compile_graph(g, "lp30", mode).run(x)["y"]
    want = x["x"].T
    if mode == "fp32":
        np.testing.assert_array_equal(got, want)
    else:
        compare(g, x, {"y": got}, mode, tol=2.0 ** -8 if mode == "bf16" else 2.0 ** -11)


@pytest.mark.parametrize("shape", MOVE_SHAPES, ids=str)
def test_reshape_and_cast_keep_the_values(shape):
    b = GraphBuilder("reshape")
    x = b.input("x", shape)
    b.output(b.cast(b.reshape(b.relu(x), (1, *shape)), "fp32"), "y")
    g = b.build()
    inputs = random_inputs(g)
    got = compile_graph(g, "lp30", "fp32").run(inputs)["y"]
    np.testing.assert_array_equal(got, np.maximum(inputs["x"], 0)[None])


@pytest.mark.parametrize("shape", MOVE_SHAPES, ids=str)
def test_concat_of_rows_is_exact(shape):
    rows, cols = shape
    b = GraphBuilder("concat")
    parts = [b.input("a", (rows, cols)), b.input("b", (1, cols)), b.input("c", (3, cols))]
    b.output(b.concat(parts, axis=0), "y")
    g = b.build()
    inputs = random_inputs(g)
    got = compile_graph(g, "lp30", "fp32").run(inputs)["y"]
    np.testing.assert_array_equal(got, np.concatenate([inputs[n] for n in "abc"]))


def test_transpose_of_a_constant_is_folded_on_the_host():
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = GraphBuilder("fold")
    b.output(b.matmul(b.input("x", (2, 4)), b.transpose(b.constant("w", w))), "y")
    g = b.build()
    c = compile_graph(g, "lp30", "fp32")
    assert not [s for s in c.lowered.steps if type(s).__name__ == "TransposeStep"]
    compare(g, random_inputs(g), c.run(random_inputs(g)), "fp32")


SLICE_SHAPES = [(1, 2), (4, 17), (17, 320), (3, 321), (2, 640)]


@pytest.mark.parametrize("shape", SLICE_SHAPES, ids=str)
@pytest.mark.parametrize("axis", [0, 1])
def test_split_and_slice_are_exact(shape, axis):
    """Columns move between lanes on the SXM, rows are views: both exact."""
    rows, cols = shape
    n = shape[axis]
    cut = max(1, n // 3)
    b = GraphBuilder("split")
    x = b.input("x", shape)
    parts = b.split(x, (cut, n - cut), axis=axis) if n > 1 else [x]
    sl = b.slice(x, n // 2, n, axis=axis)
    for i, p in enumerate(parts):
        b.output(b.relu(p) if p == x else p, f"p{i}")
    b.output(sl, "s")
    g = b.build()
    inputs = random_inputs(g)
    got = compile_graph(g, "lp30", "fp32").run(inputs)
    want = evaluate(g, inputs)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value.astype(np.float32), err_msg=name)


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
@pytest.mark.parametrize("table", [(8, 16), (50, 321), (321, 64)], ids=str)
def test_gather_of_embedding_rows(table, mode):
    rng = np.random.default_rng(table[0])
    b = GraphBuilder("gather")
    tab = b.constant("table", rng.standard_normal(table).astype(np.float32))
    idx = b.constant("idx", rng.integers(0, table[0], 7))
    b.output(b.add(b.gather(tab, idx), b.input("x", (7, table[1]))), "y")
    g = b.build()
    check(g, random_inputs(g), mode)


@pytest.mark.parametrize("op", ["Div", "Reciprocal", "Sqrt"])
def test_matmul_of_a_reciprocal(op):
    """Regression: a padding lane of 1/x, sqrt(x) or x/y was NaN (0 * inf from rsqrt(0)), and
    the MXM multiplies every lane by a weight row (zero past K): NaN * 0 made every output NaN.
    The conversion to the MXM dtype now zeroes the padding lanes (compiler/padding.py)."""
    b = GraphBuilder("pad")
    x = b.input("x", (4, 16))
    h = b.div(x, b.input("z", (4, 16))) if op == "Div" else b.op(op, [x])
    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32) / 4
    b.output(b.matmul(h, b.constant("w", w)), "y")
    g = b.build()
    check(g, random_inputs(g, 0, {"x": (0.5, 2.0), "z": (0.5, 2.0)}), "fp32")


def test_sum_of_nine_tensors():
    """Regression: fusion bounded ALU ops but not leaves, and nine fp32 reads in one pass
    needed more stream groups than one direction has (CompileError 'no free group of 4 streams
    flowing east'); now the chain is staged in passes of at most four fp32 leaves."""
    b = GraphBuilder("sum9")
    xs = [b.input(f"x{i}", (3, 8)) for i in range(9)]
    v = xs[0]
    for x in xs[1:]:
        v = b.add(v, x)
    b.output(v, "y")
    g = b.build()
    check(g, random_inputs(g), "fp32")


# ---- the reference interpreter: small shapes, identical to the fast core ----
def _small_cases():
    for shape in SMALL:
        for op in UNARY:
            yield f"{op}{shape}", lambda op=op, s=shape: unary_case(op, *s)
        yield f"Gelu{shape}", lambda s=shape: unary_case("Gelu", *s)
        yield f"GeluTanh{shape}", lambda s=shape: unary_case("Gelu", *s, approximate="tanh")
    for op in BINARY:
        for form in FORMS:
            yield f"{op}-{form}", lambda op=op, f=form: binary_case(op, f, 2, 17)
    for kind in MM_KINDS:
        yield f"matmul-{_kind_id(kind)}", lambda k=kind: matmul_case(17, 15, 16, **k)
    yield "matmul-2x17x321", lambda: matmul_case(2, 17, 321, act=False, trans=False, bias=True)
    yield "softmax-mask", lambda: softmax_case(3, 17, "input")
    yield "softmax-causal", lambda: softmax_case(3, 17, causal=True)
    yield "layernorm", lambda: norm_case("layernorm", 3, 17, True)
    yield "rmsnorm", lambda: norm_case("rmsnorm", 3, 17, True)
    yield "attention-3h", lambda: attention_case(3, 5, 48, 3, causal=True)
    yield "attention-mask", lambda: attention_case(2, 4, 32, 2, mask=True)
    yield "transpose", lambda: (single("Transpose", {"x": (3, 17)}), None)


SMALL_CASES = dict(_small_cases())


@pytest.mark.parametrize("name", list(SMALL_CASES))
def test_reference_core_agrees_bit_for_bit_fp32(name):
    g, x = SMALL_CASES[name]()
    x = x if x is not None else random_inputs(g)
    _, got = both_cores(g, x, "fp32")
    compare(g, x, got, "fp32")


@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize("name", ["matmul-const_bias", "matmul-act_T_bias", "softmax-causal",
                                  "layernorm", "attention-3h", "Div-col"])
def test_reference_core_agrees_bit_for_bit_in_every_mode(name, mode):
    g, x = SMALL_CASES[name]()
    _, got = both_cores(g, x, mode)
    compare(g, x, got, mode)


@pytest.mark.parametrize("mode", ["fp32", "bf16", "int8"])
def test_ops_on_tsp_v1(mode):
    """The other preset: a matmul with bias and GELU, then a LayerNorm."""
    rng = np.random.default_rng(5)
    b = GraphBuilder("tsp")
    x = b.input("x", (17, 321))
    w = b.constant("w", (rng.standard_normal((321, 40)) / 18).astype(np.float32))
    h = b.gelu(b.matmul(x, w, bias=b.constant("c", np.ones(40, np.float32))))
    b.output(b.layernorm(h), "y")
    g = b.build()
    check(g, random_inputs(g), mode, chip="tsp-v1")


@pytest.mark.parametrize("op", ["Div", "Reciprocal", "Sqrt"])
@pytest.mark.parametrize("inner", ["Tanh", "Exp", "Sigmoid"])
def test_reciprocals_of_a_computed_value(op, inner):
    """Regression: 1/b expanded b four times, so x / tanh(x) needed six large ALUs (a
    CompileError); the operand is now computed once."""
    b = GraphBuilder("recip")
    x = b.input("x", (3, 17))
    d = b.add(b.op(inner, [b.tanh(x)]), b.constant("c", np.float32(2.0)))  # in (1, 4.8)
    y = {"Div": lambda: b.div(x, d), "Reciprocal": lambda: b.op("Reciprocal", [d]),
         "Sqrt": lambda: b.op("Sqrt", [d])}[op]()
    b.output(y, "y")
    g = b.build()
    check(g, random_inputs(g), "fp32")


def test_temporaries_never_share_a_symbol_with_a_graph_output():
    """Regression: the first matmul's chip tensor 'matmul_1' and the graph output 'matmul_1'
    (the second matmul) were both program symbols 'matmul_1': the .lpu did not assemble
    ("duplicate symbol") and, with a dead matmul, the output was read from the wrong tensor."""
    b = GraphBuilder("names")
    x = b.input("x", (2, 3))
    b.matmul(x, b.constant("w0", np.ones((3, 3), np.float32)))  # dead: chip tensor matmul_1
    b.output(b.matmul(x, b.constant("w1", np.arange(6, dtype=np.float32).reshape(3, 2))))
    g = b.build()
    assert g.outputs == ("matmul_1",)
    c = compile_graph(g, "lp30", "fp32")
    text, program = c.assembly("names.lpu")
    assert assemble_text(text, "names.lpu") == program
    inputs = random_inputs(g)
    compare(g, inputs, c.run(inputs), "fp32")


@pytest.mark.parametrize("shape", [(16, 1), (16, 16), (64, 64)], ids=str)
@pytest.mark.parametrize("mode", ["fp32", "bf16"])
def test_self_attention_of_one_computed_tensor(shape, mode):
    """Regression: with q = k = v one tensor, the scores kernel read its slices for the
    weights (IWT) and for the stream at once (queue-busy on MEM_W9)."""
    b = GraphBuilder("self")
    t = b.tanh(b.input("x", shape))
    b.output(b.attention(t, t, t, 1), "y")
    g = b.build()
    check(g, random_inputs(g), mode)


@pytest.mark.parametrize("shape", [(1, 1), (4, 17), (3, 321)], ids=str)
@pytest.mark.parametrize("mode", ["fp32", "bf16", "int8"])
def test_matmul_transposed_of_values_with_nonzero_padding(shape, mode):
    """Regression: tanh(s) @ s^T with s = sigmoid(x) summed over all 320 lanes, the padding
    lanes (tanh(0.5) * 0.5 each) included: 74.0 instead of 0.31 for a 1x1."""
    b = GraphBuilder("pad")
    s = b.sigmoid(b.input("x", shape))
    b.output(b.matmul(b.tanh(s), s, transpose_b=True), "y")
    g = b.build()
    check(g, random_inputs(g), mode)
