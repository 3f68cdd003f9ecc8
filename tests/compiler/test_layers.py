"""The built-in transformer layers at the issue's sizes against the float64 evaluation.

BERT encoder layer: d=384, 12 heads, d_ff=1536, seq 16 and 128. GPT decoder layer: d=512,
8 heads, d_ff=2048, a prompt, then decode steps against the KV cache the prefill left in SRAM
(GptLayer); the prompt's rows and each step's row are compared with one causal evaluation of the
whole sequence, so the cache is checked through the steps' outputs.

The full matrix is expensive (BERT seq 128 is ~10 s a mode, GPT 64 + 8 steps ~40 s a mode on the
fast core): CI runs BERT seq 16 in fp32 and bf16 and GPT 16 + 2 steps in fp32 (and the
reference core on a small layer); `LPU_SLOW=1 pytest -m slow` runs every mode at every size.
Measured on this 2-core machine (fast core; errors vs numpy):
    BERT seq 16:  fp32 5.2e-6, bf16 2.5e-3, fp16 3.0e-4, int8 1.6e-2, fp8 4.5e-2
    BERT seq 128: fp32 3.5e-6, bf16 2.1e-3, fp16 2.2e-4, int8 1.5e-2, fp8 3.7e-2
    GPT 64 + 8 steps: fp32 4.9e-6, int8 3.2e-2 (worst row), fp8 4.7e-2; ~8-11 s a mode
"""

from __future__ import annotations

import numpy as np
import pytest
from compiler_helpers import CHIP, MODES, SLOW, TOL, both_cores, compare, random_inputs, rel_err

from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.layers import bert_encoder_layer, gpt_decoder_layer, random_weights
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.session import GptLayer


def _bert(seq: int, mode: str) -> None:
    graph = bert_encoder_layer(random_weights(384, 1536, seed=0), seq)
    x = random_inputs(graph, seq)
    got = compile_graph(graph, CHIP, mode).run(x)
    compare(graph, x, got, mode)


def _gpt(prompt: int, steps: int, mode: str) -> None:
    weights = random_weights(512, 2048, seed=1)
    xs = np.random.default_rng(prompt).standard_normal((prompt + steps, 512)).astype(np.float32)
    want = evaluate(gpt_decoder_layer(weights, prompt + steps), {"x": xs})["y"]
    layer = GptLayer(weights, prompt, steps, heads=8, chip=CHIP, dtype=mode)
    y, outs = layer.run(xs[:prompt], xs[prompt:])
    assert y.shape == (prompt, 512) and len(outs) == steps
    errs = [rel_err(y, want[:prompt])]
    errs += [rel_err(o, want[prompt + t:prompt + t + 1]) for t, o in enumerate(outs)]
    assert all(np.isfinite(e) and e <= TOL[mode] for e in errs), (mode, errs)


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
def test_bert_layer_seq16(mode):
    _bert(16, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seq", [16, 128])
@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="set LPU_SLOW=1")
def test_bert_layer_every_mode(seq, mode):
    _bert(seq, mode)


def test_gpt_layer_prefill16_and_two_decode_steps_fp32():
    _gpt(16, 2, "fp32")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="set LPU_SLOW=1")
def test_gpt_layer_prefill64_and_eight_decode_steps(mode):
    _gpt(64, 8, mode)


def test_gpt_decode_reads_the_cache_the_prefill_left_in_sram():
    """A decode step's output depends on the cached keys and values: the same token after a
    different prompt gives a different row, and the evaluation of each full sequence agrees
    with the step."""
    weights = random_weights(64, 128, seed=3)
    layer = GptLayer(weights, 4, 1, heads=2, chip=CHIP, dtype="fp32")
    rng = np.random.default_rng(4)
    token = rng.standard_normal((1, 64)).astype(np.float32)
    rows = []
    for _ in range(2):
        prompt = rng.standard_normal((4, 64)).astype(np.float32)
        _, (row,) = layer.run(prompt, token)
        want = evaluate(gpt_decoder_layer(weights, 5, heads=2),
                        {"x": np.concatenate([prompt, token])})["y"][4:]
        assert rel_err(row, want) <= TOL["fp32"]
        rows.append(row)
    assert rel_err(rows[0], rows[1]) > 1e-2


def test_small_bert_layer_on_both_cores():
    """The reference interpreter runs a whole (small) layer and agrees bit for bit."""
    graph = bert_encoder_layer(random_weights(64, 128, seed=5), 5, heads=4)
    x = random_inputs(graph, 5)
    _, got = both_cores(graph, x, "bf16")
    compare(graph, x, got, "bf16")


def test_a_compiled_layer_runs_many_times_from_one_plan():
    """Compiled.run decodes the program once (Compiled.plan) and runs each input on a fresh
    chip: new inputs give new results, the same inputs the same bits."""
    graph = bert_encoder_layer(random_weights(64, 128, seed=6), 5, heads=4)
    compiled = compile_graph(graph, CHIP, "bf16")
    xs = [random_inputs(graph, seed) for seed in (1, 2, 1)]
    outs = [compiled.run(x)["y"] for x in xs]
    assert compiled.plan is compiled.plan
    for x, out in zip(xs, outs, strict=True):
        compare(graph, x, {"y": out}, "bf16")
    assert np.array_equal(outs[0], outs[2]) and not np.array_equal(outs[0], outs[1])
