"""Ready-made transformer layers as graphs: a BERT encoder layer and a GPT decoder layer.

Both take numpy weights (`bert_weights` / `gpt_weights` make random ones with the usual
scales); a weight matrix is (in_features, out_features), applied as x @ W + b.
BERT is post-LN: h = LN(x + Attn(x)); y = LN(h + FFN(h)), GELU (erf) in the FFN.
GPT is pre-LN and causal: h = x + Attn(LN(x)); y = h + FFN(LN(h)), GELU (tanh form).
The GPT decoder has a prefill form (a prompt of `seq` tokens; outputs the layer's output and the
prompt's keys and values, which become the KV cache) and a decode form (one token against a
cache of `past` rows; outputs the layer's output and the new key and value rows).
"""

from __future__ import annotations

import numpy as np

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.graph import Graph
from lpu_emu.errors import UsageError

Weights = dict[str, np.ndarray]
NAMES = ("wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "ln1_g", "ln1_b", "w1", "b1", "w2",
         "b2", "ln2_g", "ln2_b")


def random_weights(d: int, d_ff: int, seed: int = 0) -> Weights:
    """Weights of one layer: N(0, 1/fan_in) matrices, small biases, LayerNorm near identity."""
    rng = np.random.default_rng(seed)

    def mat(i: int, o: int) -> np.ndarray:
        return (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)

    def vec(n: int, scale: float = 0.02, mean: float = 0.0) -> np.ndarray:
        return (mean + scale * rng.standard_normal(n)).astype(np.float32)

    return {"wq": mat(d, d), "bq": vec(d), "wk": mat(d, d), "bk": vec(d), "wv": mat(d, d),
            "bv": vec(d), "wo": mat(d, d), "bo": vec(d), "ln1_g": vec(d, 0.1, 1.0),
            "ln1_b": vec(d), "w1": mat(d, d_ff), "b1": vec(d_ff), "w2": mat(d_ff, d),
            "b2": vec(d), "ln2_g": vec(d, 0.1, 1.0), "ln2_b": vec(d)}


def _check(weights: Weights, heads: int) -> tuple[int, int]:
    missing = [n for n in NAMES if n not in weights]
    if missing:
        raise UsageError(f"layer weights lack {', '.join(missing)}",
                         hint=f"weights: {', '.join(NAMES)}")
    d, d_ff = weights["w1"].shape
    if d % heads:
        raise UsageError(f"d_model {d} is not a multiple of {heads} heads")
    return d, d_ff


class _Layer:
    def __init__(self, b: GraphBuilder, weights: Weights) -> None:
        self.b, self.w = b, weights
        self.c = {n: b.constant(n, weights[n]) for n in NAMES}

    def linear(self, x: str, w: str, bias: str, name: str | None = None) -> str:
        return self.b.matmul(x, self.c[w], bias=self.c[bias], name=name)

    def ln(self, x: str, which: str, eps: float) -> str:
        return self.b.layernorm(x, self.c[f"{which}_g"], self.c[f"{which}_b"], eps)

    def ffn(self, x: str, approximate: str) -> str:
        h = self.b.gelu(self.linear(x, "w1", "b1"), approximate)
        return self.linear(h, "w2", "b2")


def bert_encoder_layer(weights: Weights, seq: int, heads: int = 12, *, mask: bool = False,
                       eps: float = 1e-12) -> Graph:
    """One BERT encoder layer on `seq` tokens; `mask` adds an additive attention mask input
    (seq, seq)."""
    d, _ = _check(weights, heads)
    b = GraphBuilder("bert_layer")
    x = b.input("x", (seq, d))
    m = b.input("mask", (seq, seq)) if mask else None
    L = _Layer(b, weights)
    q, k, v = (L.linear(x, f"w{n}", f"b{n}") for n in "qkv")
    a = L.linear(b.attention(q, k, v, heads, mask=m), "wo", "bo")
    h = L.ln(b.add(x, a), "ln1", eps)
    y = L.ln(b.add(h, L.ffn(h, "none")), "ln2", eps)
    b.output(y, "y")
    return b.build()


def gpt_decoder_layer(weights: Weights, seq: int, heads: int = 8, *, past: int = 0,
                      eps: float = 1e-5) -> Graph:
    """One GPT decoder layer: prefill of `seq` tokens (past = 0), or decode of `seq` new tokens
    against a cache of `past` rows (inputs k_cache, v_cache). Outputs y and the new rows k, v."""
    d, _ = _check(weights, heads)
    b = GraphBuilder("gpt_layer" if not past else "gpt_decode")
    x = b.input("x", (seq, d))
    L = _Layer(b, weights)
    a = L.ln(x, "ln1", eps)
    q, k, v = (L.linear(a, f"w{n}", f"b{n}", name=n if n != "q" else None) for n in "qkv")
    keys, values = k, v
    if past:
        keys = b.concat([b.input("k_cache", (past, d)), k], axis=0)
        values = b.concat([b.input("v_cache", (past, d)), v], axis=0)
    att = L.linear(b.attention(q, keys, values, heads, causal=True), "wo", "bo")
    h = b.add(x, att)
    y = b.add(h, L.ffn(L.ln(h, "ln2", eps), "tanh"))
    b.output(y, "y")
    b.output(k)
    b.output(v)
    return b.build()
