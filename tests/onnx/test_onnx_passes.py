"""The fusion passes, each before and after on a graph built with GraphBuilder: the op list the
pass leaves, and the same values through `evaluate` (float64) before and after."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.frontends.onnx_passes import (
    fold_unit_reshapes,
    fuse_attention,
    fuse_gelu,
    fuse_layernorm,
    fuse_matmul_bias,
    fuse_transposes,
    prune,
)
from lpu_emu.compiler.graph import Graph

R = np.random.default_rng(3)
S, H, DH = 6, 2, 4
D = H * DH


def ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def same_values(before: Graph, after: Graph, feeds: dict[str, np.ndarray]) -> None:
    want, got = evaluate(before, feeds), evaluate(after, feeds)
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12)


def written_layernorm(read_d_again: bool = False) -> Graph:
    b = GraphBuilder("ln")
    x = b.input("x", (S, D))
    mean = b.op("ReduceMean", [x], axes=(1,), keepdims=1)
    d = b.sub(x, mean)
    d2 = b.sub(x, mean)
    var = b.op("ReduceMean", [b.mul(d2, d2)], axes=(1,), keepdims=1)
    y = b.div(d, b.op("Sqrt", [b.add(var, b.constant("eps", np.array(1e-5)))]))
    y = b.add(b.mul(y, b.constant("g", R.random(D))), b.constant("b", R.random(D)))
    b.output(y)
    if read_d_again:
        b.output(b.relu(d2))
    return b.build()


def test_fuse_layernorm_written_chain_becomes_one_op() -> None:
    before = written_layernorm()
    after = fuse_layernorm(before)
    assert ops(before) == ["ReduceMean", "Sub", "Sub", "Mul", "ReduceMean", "Add", "Sqrt",
                           "Div", "Mul", "Add"]
    assert ops(after) == ["LayerNormalization"]
    assert after.nodes[0].inputs == ("x", "g", "b")
    assert after.nodes[0].attr("epsilon") == float(np.float32(1e-5))  # constants are float32
    same_values(before, after, {"x": R.standard_normal((S, D))})


def test_fuse_layernorm_intermediate_read_elsewhere_is_left_alone() -> None:
    before = written_layernorm(read_d_again=True)
    assert ops(fuse_layernorm(before)) == ops(before)


def exported_attention(mask: np.ndarray | None, scale_op: str = "Div") -> Graph:
    """scale_op: Div or Mul of the scores, or "sdpa": q and k^T each times sqrt(scale)."""
    b = GraphBuilder("att")
    xs = {n: b.input(n, (1, S, D)) for n in "qkv"}

    def heads(x: str, perm: tuple[int, ...]) -> str:
        return b.transpose(b.reshape(x, (1, S, H, DH)), perm)

    q, k = heads(xs["q"], (0, 2, 1, 3)), heads(xs["k"], (0, 2, 3, 1))
    if scale_op == "sdpa":
        root = b.constant("root", np.array(DH ** -0.25))
        scores = b.matmul(b.mul(q, root), b.mul(k, root))
    else:
        c = math.sqrt(DH) if scale_op == "Div" else 1 / math.sqrt(DH)
        scores = b.op(scale_op, [b.matmul(q, k), b.constant("c", np.array(c))])
    if mask is not None:
        scores = b.add(scores, b.constant("mask", mask))
    p = b.softmax(scores)
    y = b.reshape(b.transpose(b.matmul(p, heads(xs["v"], (0, 2, 1, 3))), (0, 2, 1, 3)),
                  (1, S, D))
    b.output(y, "y")
    return b.build()


def qkv() -> dict[str, np.ndarray]:
    return {n: R.standard_normal((1, S, D)) for n in "qkv"}


@pytest.mark.parametrize("scale_op", ["Div", "Mul", "sdpa"])
def test_fuse_attention_padding_mask(scale_op: str) -> None:
    mask = np.zeros((1, 1, 1, S))
    mask[..., -2:] = -10000.0
    before = exported_attention(mask, scale_op)
    after = fuse_attention(before)
    assert ops(after) == ["Reshape", "Reshape", "Reshape", "Reshape", "Attention", "Reshape",
                          "Reshape"]
    att = after.nodes[4]
    assert (att.attr("num_heads"), att.attr("causal")) == (H, 0)
    assert att.attr("scale") == pytest.approx(1 / math.sqrt(DH), rel=1e-6)  # float32 consts
    same_values(before, after, qkv())


def test_fuse_attention_causal_triangle_becomes_causal() -> None:
    tri = np.triu(np.full((S, S), -1e9), 1)
    before = exported_attention(tri)
    after = fuse_attention(before)
    att = [n for n in after.nodes if n.op == "Attention"][0]
    assert att.attr("causal") == 1 and len(att.inputs) == 3
    same_values(before, after, qkv())


def test_fuse_attention_without_mask() -> None:
    before = exported_attention(None)
    after = fuse_attention(before)
    assert ops(after).count("Attention") == 1 and "Softmax" not in ops(after)
    same_values(before, after, qkv())


def test_fuse_attention_mask_varying_per_head_is_left_alone() -> None:
    before = exported_attention(R.standard_normal((1, H, S, S)))
    assert ops(fuse_attention(before)) == ops(before)


def test_fuse_matmul_bias_constant_vector() -> None:
    b = GraphBuilder("mm")
    x = b.input("x", (S, D))
    b.output(b.add(b.constant("bias", R.random(3)), b.matmul(x, b.constant("w", R.random((D, 3))))))
    before = b.build()
    after = fuse_matmul_bias(before)
    assert ops(after) == ["MatMul"] and after.nodes[0].inputs == ("x", "w", "bias")
    same_values(before, after, {"x": R.standard_normal((S, D))})


def test_prune_drops_what_no_output_reads() -> None:
    b = GraphBuilder("p")
    x = b.input("x", (S, D))
    b.relu(b.mul(x, b.constant("unused", np.ones(D))))
    b.output(b.exp(x))
    after = prune(b.build())
    assert ops(after) == ["Exp"]
    assert set(after.constants) == set()
    assert set(after.values) == {"x", after.outputs[0]}


def written_gelu(form: str) -> Graph:
    """GELU as torch exports write it (operand orders as in the exports)."""
    b = GraphBuilder("gelu")
    x = b.input("x", (S, D))

    def c(v: float) -> str:
        return b.constant(f"c{len(b.constants)}", np.array(v))

    if form == "none":
        inner = b.add(b.erf(b.div(x, c(math.sqrt(2.0)))), c(1.0))
        b.output(b.mul(b.mul(x, inner), c(0.5)))
    elif form == "tanh":
        cube = b.mul(x, b.mul(x, x))
        t = b.tanh(b.mul(c(math.sqrt(2 / math.pi)), b.add(x, b.mul(c(0.044715), cube))))
        b.output(b.mul(c(0.5), b.mul(x, b.add(c(1.0), t))))
    else:  # a look-alike: 0.5 x (1 + tanh x)
        b.output(b.mul(c(0.5), b.mul(x, b.add(c(1.0), b.tanh(x)))))
    return b.build()


@pytest.mark.parametrize("form", ["none", "tanh"])
def test_fuse_gelu_written_forms(form: str) -> None:
    before = written_gelu(form)
    after = fuse_gelu(before)
    assert ops(after) == ["Gelu"] and after.nodes[0].attr("approximate") == form
    want = evaluate(before, {"x": np.linspace(-4, 4, S * D).reshape(S, D)})
    got = evaluate(after, {"x": np.linspace(-4, 4, S * D).reshape(S, D)})
    np.testing.assert_allclose(got[after.outputs[0]], want[before.outputs[0]], rtol=1e-6,
                               atol=1e-7)  # float32 constants: close, not equal


def test_fuse_gelu_look_alike_is_left_alone() -> None:
    before = written_gelu("other")
    assert ops(fuse_gelu(before)) == ops(before)


def test_fuse_transposes_composes_perms() -> None:
    b = GraphBuilder("t")
    x = b.input("x", (2, 3, 4, 5))
    b.output(b.transpose(b.transpose(x, (0, 2, 1, 3)), (0, 1, 3, 2)))
    before = b.build()
    after = fuse_transposes(before)
    assert ops(after) == ["Transpose"] and after.nodes[0].attr("perm") == (0, 2, 3, 1)
    same_values(before, after, {"x": R.standard_normal((2, 3, 4, 5))})


def test_fold_unit_reshapes_batch_one_transpose() -> None:
    b = GraphBuilder("u")
    x = b.input("x", (1, H, S, DH))
    t = b.transpose(b.reshape(x, (H, S, DH)), (0, 2, 1))
    b.output(b.reshape(t, (1, H, DH, S)))
    before = b.build()
    after = fold_unit_reshapes(before)
    assert ops(after) == ["Transpose"] and after.nodes[0].attr("perm") == (0, 1, 3, 2)
    same_values(before, after, {"x": R.standard_normal((1, H, S, DH))})


def test_fold_unit_reshapes_real_reshape_is_left_alone() -> None:
    b = GraphBuilder("u")
    x = b.input("x", (1, H, S, DH))
    t = b.transpose(b.reshape(x, (H * S, DH)), (1, 0))
    b.output(b.reshape(t, (1, DH, H * S)))
    before = b.build()
    assert ops(fold_unit_reshapes(before)) == ops(before)
