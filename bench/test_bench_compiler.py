"""Benchmarks of the compiler and of compiled layers, as ratios to baselines of the same run.

- compile: graph -> Program for the built-in BERT layer (d=384, 12 heads, d_ff=1536, seq 128),
  against a numpy float32 forward of the same layer (the work a framework does for the math);
- run: the compiled layer emulated on the fast core (warm), against the same numpy forward;
- schedule: the program's cycles against the MXM bound (the layer's multiply-accumulates at the
  mode's peak rate on all planes), as efficiency = bound / cycles;
- what bounds the run (issue 10, point 3): the MXM floor, numpy's sgemm on one thread of as
  many 320 x 320 products as the program has ACCs (the float kernel keeps the definition's k
  order at about sgemm's speed, so no run of the program can do its MXM work much faster), and
  the time per issue the rest of the run takes, beside what a run within 2x numpy would allow.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from workloads import best, one_blas_thread, pick, timed

from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.layers import bert_encoder_layer, gpt_decoder_layer, random_weights
from lpu_emu.compiler.pipeline import Compiled, compile_graph
from lpu_emu.compiler.session import GptLayer, Session
from lpu_emu.core import fast
from lpu_emu.core.plan import OP
from lpu_emu.core.run import run
from lpu_emu.spec import default_isa

RESULTS: dict[str, dict] = {}
# the heading of RESULTS in the session's summary
SUMMARY = "lpu-emu compiler: ratios to baselines measured in this run"
COMPILED: dict[str, Compiled] = {}  # dtype -> the layer test_bert_layer compiled (reused)
SEQ = 128
# (run_vs_numpy_forward, compile_vs_numpy_forward) must stay below: 4x the medians (bf16 37 and
# 25, fp32 58 and 73; the larger of the quick and full medians)
BERT_LIMITS = {"bf16": (150, 100), "fp32": (230, 290)}

def mxm_floor(plan) -> tuple[int, float]:
    """The plan's ACC issues, and numpy's sgemm of as many 320x320 products on one BLAS thread
    (best of 5): the least time their MXM work takes on this machine."""
    n = int(np.count_nonzero(plan.issues[:, OP] & 255 == default_isa().lookup("ACC").opcode))
    rows, cols = plan.chip.p("mxm_rows"), plan.chip.p("mxm_cols")
    x = np.random.default_rng(0).standard_normal((n, int(rows))).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((int(rows), int(cols))).astype(np.float32)
    with one_blas_thread():
        return n, best(lambda: x @ w, 5)


def floor_figures(plan, t_run: float, t_numpy: float) -> dict:
    """The run split into its MXM floor and the rest, per issue, against numpy."""
    n_acc, t_mxm = mxm_floor(plan)
    rest = len(plan.issues) - n_acc
    return {"accs": n_acc, "mxm_floor_s": t_mxm, "mxm_floor_vs_numpy": t_mxm / t_numpy,
            "rest_ns_per_issue": max(t_run - t_mxm, 0.0) / rest * 1e9,
            "ns_per_issue_for_2x": max(2 * t_numpy - t_mxm, 0.0) / rest * 1e9}


def _numpy_bert(w: dict, x: np.ndarray, heads: int) -> np.ndarray:
    """The same layer in plain numpy float32 (the baseline; GELU in its tanh form, as numpy has
    no erf: the same work within a few elementwise ops)."""
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
    with one_blas_thread():  # the emulator runs on one thread
        t_numpy = best(lambda: _numpy_bert(w, x, 12), 5)
    return w, x, bert_encoder_layer(w, SEQ, 12), t_numpy


@pytest.mark.parametrize("dtype", ("bf16", "fp32"))
def test_bert_layer(benchmark, layer, dtype):
    w, x, graph, t_numpy = layer
    t0 = time.perf_counter()
    compiled = compile_graph(graph, "lp30", dtype)
    t_compile = time.perf_counter() - t0
    COMPILED[dtype] = compiled
    out = compiled.run({"x": x})["y"]  # warm
    ref = evaluate(graph, {"x": x})["y"]
    assert np.abs(out - ref).max() / np.abs(ref).max() < (1e-4 if dtype == "fp32" else 2e-2)
    t_run = timed(benchmark, lambda: compiled.run({"x": x}), pick(2, 1))
    t = compiled.target
    macs = sum(pl.kernel.stats.get("macs", 0) for pl in compiled.placed)
    rate = t.chip.mxm_macs * (t.chip.p("mxm_fp16_fraction") if compiled.mode.mxm != "int8"
                              else 1.0)
    bound = macs / rate
    RESULTS[f"bert_layer_seq{SEQ}_{dtype}"] = figures = {
        "instructions": len(compiled.program.word), "cycles": compiled.cycles,
        "compile_s": t_compile, "compile_vs_numpy_forward": t_compile / t_numpy,
        "run_s": t_run, "numpy_forward_s": t_numpy, "run_vs_numpy_forward": t_run / t_numpy,
        "mxm_bound_cycles": round(bound), "efficiency": bound / compiled.cycles,
        **floor_figures(compiled.plan, t_run, t_numpy)}
    benchmark.extra_info.update(figures)
    run_limit, compile_limit = BERT_LIMITS[dtype]
    assert t_run / t_numpy < run_limit and t_compile / t_numpy < compile_limit


def log_bytes(log) -> int:
    """The event log's size in memory: 64-byte records plus the value heap."""
    return log.events.nbytes + log.values.nbytes


def test_bert_layer_traced(benchmark, layer):
    """The compiled layer (bf16) run with the event log on, against the same run without it:
    what tracing a compiled model costs in time, and in log bytes per issue."""
    w, x, graph, _ = layer
    compiled = COMPILED.get("bf16") or compile_graph(graph, "lp30", "bf16")
    chip, inputs = compiled.target.chip, compiled.inputs_for({"x": x})
    plain = run(compiled.program, chip, inputs=inputs, engine="fast")
    traced = run(compiled.program, chip, inputs=inputs, engine="fast", trace=True)
    assert plain.ok and traced.ok
    for name, y in compiled.outputs_from(plain.tensor).items():
        assert np.array_equal(y, compiled.outputs_from(traced.tensor)[name]), name
    rounds = pick(2, 1)
    t_plain = best(lambda: run(compiled.program, chip, inputs=inputs, engine="fast"), rounds)
    t_traced = timed(benchmark, lambda: run(compiled.program, chip, inputs=inputs, engine="fast",
                                            trace=True), rounds)
    issues, size = traced.events.meta["issues"], log_bytes(traced.events)
    RESULTS[f"bert_layer_seq{SEQ}_bf16_traced"] = figures = {
        "issues": issues, "untraced_s": t_plain, "traced_s": t_traced,
        "traced_vs_untraced": t_traced / t_plain, "events": len(traced.events),
        "log_mb": size / 1e6, "log_bytes_per_issue": size / issues}
    benchmark.extra_info.update(figures)
    assert t_traced / t_plain < 7  # 3.6x the median 1.9 (quick; full 1.1)
    assert size / issues < 1000  # no noise: 750 bytes per issue


def _numpy_gpt_decode(w: dict, x: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray,
                      heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One GPT decode step in plain numpy float32 (the baseline): LayerNorm, q/k/v, attention of
    the new token over the cache and its own row, the output projection, the residual, LayerNorm,
    the tanh-GELU FFN, the residual. Returns y and the new k and v rows."""
    f = np.float32

    def ln(v, g, b):
        m = v.mean(-1, keepdims=True)
        return (v - m) / np.sqrt(((v - m) ** 2).mean(-1, keepdims=True) + f(1e-5)) * g + b

    a = ln(x, w["ln1_g"], w["ln1_b"])
    q, k, v = (a @ w[f"w{n}"] + w[f"b{n}"] for n in "qkv")
    keys, values = np.concatenate((k_cache, k)), np.concatenate((v_cache, v))
    dh = x.shape[1] // heads
    ctx = np.empty_like(x)
    for h in range(heads):  # one query row: the causal mask hides nothing
        cols = slice(h * dh, (h + 1) * dh)
        s = q[:, cols] @ keys[:, cols].T / f(np.sqrt(dh))
        p = np.exp(s - s.max(-1, keepdims=True))
        ctx[:, cols] = (p / p.sum(-1, keepdims=True)) @ values[:, cols]
    h1 = x + ctx @ w["wo"] + w["bo"]
    u = ln(h1, w["ln2_g"], w["ln2_b"]) @ w["w1"] + w["b1"]
    g = f(0.5) * u * (f(1) + np.tanh(f(0.7978846) * (u + f(0.044715) * u ** 3)))
    return h1 + g @ w["w2"] + w["b2"], k, v


def test_gpt_decode_step(benchmark):
    """A GPT decode step (d=512, 8 heads, d_ff=2048, bf16) against a cache of 64 rows that the
    prefill left in SRAM, emulated, against a numpy float32 forward of the whole step (checked
    against the graph's reference evaluation first)."""
    w = random_weights(512, 2048, 0)
    layer = GptLayer(w, 64, 1, 8, "lp30", "bf16")
    x = np.random.default_rng(2).standard_normal((65, 512)).astype(np.float32)
    session = Session()
    cache = session.run(layer.prefill, {"x": x[:64]})
    step = layer.decode[0]
    out = session.run(step, {"x": x[64:]})  # warm
    want = _numpy_gpt_decode(w, x[64:], cache["k"], cache["v"], 8)
    ref = evaluate(gpt_decoder_layer(w, 1, 8, past=64),
                   {"x": x[64:], "k_cache": cache["k"], "v_cache": cache["v"]})
    for got, name in zip(want, ("y", "k", "v"), strict=True):  # the baseline is the step's math
        assert np.abs(got - ref[name]).max() / np.abs(ref[name]).max() < 1e-5, name
    assert np.abs(out["y"] - want[0]).max() / np.abs(want[0]).max() < 2e-2
    t_step = timed(benchmark, lambda: session.run(step, {"x": x[64:]}), pick(3, 2))
    with one_blas_thread():  # the emulator runs on one thread
        t_numpy = best(lambda: _numpy_gpt_decode(w, x[64:], cache["k"], cache["v"], 8), 9)
    RESULTS["gpt_decode_step_bf16"] = figures = {
        "decode_cycles": step.cycles, "decode_instructions": len(step.program.word),
        "prefill_cycles": layer.prefill.cycles, "step_s": t_step, "numpy_step_s": t_numpy,
        "step_vs_numpy_step": t_step / t_numpy, **floor_figures(step.plan, t_step, t_numpy)}
    benchmark.extra_info.update(figures)
    assert t_step / t_numpy < 475  # 4x the median 118 (quick; full 110)
