"""Benchmarks of the compiler and of compiled layers, as ratios to baselines of the same run.

- compile: graph -> Program for the built-in BERT layer (d=384, 12 heads, d_ff=1536, seq 128),
  against a numpy float32 forward of the same layer (the work a framework does for the math);
- run: the compiled layer emulated on the fast core (warm), against the same numpy forward;
- schedule: the program's cycles against the MXM bound (the layer's multiply-accumulates at the
  mode's peak rate on all planes), as efficiency = bound / cycles.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from workloads import best

from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.layers import bert_encoder_layer, random_weights
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.session import GptLayer
from lpu_emu.core import fast

RESULTS: dict[str, dict] = {}
SEQ = 128



def _numpy_bert(w: dict, x: np.ndarray, heads: int) -> np.ndarray:
    """The same layer in plain numpy float32 (the baseline)."""
    f = np.float32

    def ln(v, g, b):
        m = v.mean(-1, keepdims=True)
        return (v - m) / np.sqrt(((v - m) ** 2).mean(-1, keepdims=True) + f(1e-12)) * g + b

    q, k, v = (x @ w[f"w{n}"] + w[f"b{n}"] for n in "qkv")
    seq, d = x.shape
    dh = d // heads
    ctx = np.empty_like(x)
    for h in range(heads):
        s = q[:, h * dh:(h + 1) * dh] @ k[:, h * dh:(h + 1) * dh].T / f(np.sqrt(dh))
        p = np.exp(s - s.max(-1, keepdims=True))
        ctx[:, h * dh:(h + 1) * dh] = (p / p.sum(-1, keepdims=True)) @ v[:, h * dh:(h + 1) * dh]
    h1 = ln(x + ctx @ w["wo"] + w["bo"], w["ln1_g"], w["ln1_b"])
    a = h1 @ w["w1"] + w["b1"]
    g = f(0.5) * a * (f(1) + np.tanh(f(0.7978846) * (a + f(0.044715) * a ** 3)))
    return ln(h1 + g @ w["w2"] + w["b2"], w["ln2_g"], w["ln2_b"])


@pytest.fixture(scope="module")
def layer():
    fast.warm_up()
    w = random_weights(384, 1536, 0)
    x = np.random.default_rng(1).standard_normal((SEQ, 384)).astype(np.float32)
    t_numpy = best(lambda: _numpy_bert(w, x, 12), 5)
    return w, x, bert_encoder_layer(w, SEQ, 12), t_numpy


@pytest.mark.parametrize("dtype", ("bf16", "fp32"))
def test_bert_layer(benchmark, layer, dtype):
    w, x, graph, t_numpy = layer
    t0 = time.perf_counter()
    compiled = compile_graph(graph, "lp30", dtype)
    t_compile = time.perf_counter() - t0
    out = compiled.run({"x": x})["y"]  # warm
    ref = evaluate(graph, {"x": x})["y"]
    assert np.abs(out - ref).max() / np.abs(ref).max() < (1e-4 if dtype == "fp32" else 2e-2)
    t_run = best(lambda: compiled.run({"x": x}), 2)
    benchmark.pedantic(lambda: compiled.run({"x": x}), rounds=1, iterations=1)
    t = compiled.target
    macs = sum(pl.kernel.stats.get("macs", 0) for pl in compiled.placed)
    rate = t.chip.mxm_macs * (t.chip.p("mxm_fp16_fraction") if compiled.mode.mxm != "int8"
                              else 1.0)
    bound = macs / rate
    RESULTS[f"bert_layer_seq{SEQ}_{dtype}"] = figures = {
        "instructions": len(compiled.program.word), "cycles": compiled.cycles,
        "compile_s": t_compile, "compile_vs_numpy_forward": t_compile / t_numpy,
        "run_s": t_run, "numpy_forward_s": t_numpy, "run_vs_numpy_forward": t_run / t_numpy,
        "mxm_bound_cycles": round(bound), "efficiency": bound / compiled.cycles}
    benchmark.extra_info.update(figures)


def test_gpt_decode_step(benchmark):
    """A GPT decode step (d=512, 8 heads, d_ff=2048) against a cache of 64 rows."""
    w = random_weights(512, 2048, 0)
    layer = GptLayer(w, 64, 1, 8, "lp30", "bf16")
    x = np.random.default_rng(2).standard_normal((65, 512)).astype(np.float32)
    layer.run(x[:64], x[64:])
    step = layer.decode[0]
    t_run = best(lambda: layer.run(x[:64], x[64:]), 1)
    f = np.float32
    t_numpy = best(lambda: [x[64:] @ w[n] for n in ("wq", "wk", "wv", "wo", "w1")], 5)
    RESULTS["gpt_decode_step_bf16"] = figures = {
        "decode_cycles": step.cycles, "prefill_cycles": layer.prefill.cycles,
        "prefill_plus_step_s": t_run, "numpy_step_matmuls_s": t_numpy, "dtype_check": str(f)}
    benchmark.extra_info.update(figures)


def pytest_terminal_summary_lines() -> list[str]:
    lines = ["lpu-emu compiler: ratios to baselines measured in this run"]
    for name, figures in RESULTS.items():
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in figures.items())
        lines.append(f"  {name}: {shown}")
    return lines
