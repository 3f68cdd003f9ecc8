"""The feed-conversions pass, before and after: which conversions into the MXM dtype it moves
into the matmuls' feeds, which it leaves, and that the pipeline keeps the shorter schedule of
the two lowerings. Steps are rendered as in test_lowering."""

from __future__ import annotations

import numpy as np
from compiler_helpers import random_inputs
from test_lowering import expect, render

from lpu_emu.compiler import pipeline
from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.builtin import build
from lpu_emu.compiler.conversions import feed_conversions
from lpu_emu.compiler.lowering import MapStep, lower
from lpu_emu.compiler.padding import finite_padding
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.placement import Memory
from lpu_emu.compiler.precision import mode
from lpu_emu.compiler.target import Target

LP30 = Target.of("lp30")
RNG = np.random.default_rng(3)


def _graph(build_fn):
    b = GraphBuilder("g")
    build_fn(b)
    return b.build()


def before_after(build_fn, dtype: str = "bf16"):
    low = finite_padding(lower(_graph(build_fn), mode(dtype), LP30), LP30)
    after = feed_conversions(low, LP30)
    return [render(s) for s in low.steps], [render(s) for s in after.steps], low, after


def _mm(b, rows: int = 8, k: int = 16, cols: int = 8):
    w = b.constant("w", RNG.standard_normal((k, cols)).astype(np.float32))
    return b.matmul(b.input("x", (rows, k)), w)


def test_a_plain_conversion_moves_into_the_matmul_feed():
    before, after, low, moved = before_after(lambda b: b.output(_mm(b), "y"))
    assert before == expect("""
        map x_bf160_3 = Cvt.fp32.bf16(x)
        mm.bf16 matmul_1 = @acc with @acc = x_bf160_3 @ w_2
    """)
    assert after == expect("""
        mm.bf16 matmul_1 = @acc with @acc = Cvt.fp32.bf16(x) @ w_2
    """)
    assert "x_bf160_3" in low.tensors and "x_bf160_3" not in moved.tensors


def test_fp32_parts_stay_passes():
    """The first part is a plain conversion, but the second part's pass reads it."""
    _, _, low, after = before_after(lambda b: b.output(_mm(b), "y"), "fp32")
    assert after is low


def test_a_matmul_wider_than_its_planes_keeps_its_conversion():
    """Three output chunks on two bf16 plane pairs: x would stream twice, in fp32."""
    _, _, low, after = before_after(lambda b: b.output(_mm(b, cols=700), "y"))
    assert after is low
    _, _, low, after = before_after(lambda b: b.output(_mm(b, cols=640), "y"))  # two: moved
    assert after is not low


def test_a_conversion_read_by_another_step_stays():
    """x @ x^T streams x's bf16 part and installs it: read as weights, so not moved."""
    def build_fn(b):
        x = b.input("x", (8, 16))
        b.output(b.matmul(x, x, transpose_b=True), "y")
    before, after, low, moved = before_after(build_fn)
    assert any(line.startswith("map x_bf16") for line in before)
    assert moved is low


def test_a_padding_fixed_conversion_stays():
    """1/x into a matmul: finite_padding rewrites the conversion of the last chunk (an SXM
    Distribute), so it is no plain conversion."""
    def build_fn(b):
        r = b.op("Reciprocal", [b.input("x", (2, 330))])
        b.output(b.matmul(r, b.constant("w", np.ones((330, 4), np.float32))), "y")
    _, _, low, after = before_after(build_fn)
    assert after is low


def test_moved_conversions_give_the_same_products_bit_for_bit(monkeypatch):
    """One K tile, one output chunk: the same Cvt on the same values either way."""
    graph = _graph(lambda b: b.output(_mm(b, rows=70, k=300, cols=200), "y"))
    inputs = random_inputs(graph, 4)
    moved = compile_graph(graph, "lp30", "bf16")
    assert not any(isinstance(s, MapStep) for s in moved.lowered.steps)
    monkeypatch.setattr(pipeline, "feed_conversions", lambda low, target: low)
    kept = compile_graph(graph, "lp30", "bf16")
    assert [type(s).__name__ for s in kept.lowered.steps] == ["MapStep", "MmStep"]
    assert moved.cycles < kept.cycles
    a, b = moved.run(inputs)["y"], kept.run(inputs)["y"]
    assert np.array_equal(a, b)
    assert np.array_equal(a, moved.run(inputs, "reference")["y"])


def _conversions(compiled) -> list[str]:
    return [s.note for s in compiled.lowered.steps
            if isinstance(s, MapStep) and s.note.endswith("to bf16 part 0")]


def test_the_pipeline_keeps_the_shorter_lowering():
    """BERT seq 16 runs shorter with the conversions into its output projection and its FFN's
    down-projection in their feeds (11,210 cycles against 11,487; Q and K are read as
    weights, the others feed wide matmuls); the GPT decode step with them all as passes
    (12,262 against 12,384)."""
    bert = build("bert-layer", seq=16, dtype="bf16").compiled
    assert bert.cycles == 11_210
    assert _conversions(bert) == ["matmul_1 to bf16 part 0", "matmul_2_8 to bf16 part 0",
                                  "layernormalization_43 to bf16 part 0"]
    decode = build("gpt-layer", decode=True, dtype="bf16").compiled
    assert decode.cycles == 12_262
    assert "attention_40 to bf16 part 0" in _conversions(decode)
    assert "gelu_59 to bf16 part 0" in _conversions(decode)


def test_a_fork_of_memory_allocates_on_its_own():
    memory = Memory(LP30)
    first = memory.alloc("a", "fp32", 10, 320)
    fork = memory.fork()
    taken = fork.alloc("b", "fp32", 10, 320)
    assert memory.alloc("c", "fp32", 10, 320).chunks == taken.chunks  # the fork took nothing
    memory.adopt(fork)
    assert memory.free == fork.free and first.chunks != taken.chunks
