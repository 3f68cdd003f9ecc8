"""Kernel builders (compiler/kernels.py): passes over other slices follow each other back to
back on other streams; a run of reductions overlaps each result's combine with the next one."""

from __future__ import annotations

import numpy as np
from compiler_helpers import check, random_inputs, single
from test_ops import attention_case

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.kernels import _placements
from lpu_emu.compiler.pipeline import compile_graph


def _kernel(graph, note: str, dtype: str = "fp32"):
    compiled = compile_graph(graph, "lp30", dtype)
    return compiled, next(p.kernel for p in compiled.placed if p.kernel.name.startswith(note))


def test_the_chunks_of_an_elementwise_pass_follow_back_to_back():
    """Exp of 8 rows x 640 columns: two chunks on other slices. The second chunk's pass takes
    other streams, so it starts 8 cycles (8 rows) after the first instead of waiting for the
    first pass's values to reach their consumers."""
    graph = single("Exp", {"x": (8, 640)})
    compiled, k = _kernel(graph, "exp")
    first, second = sorted(k.pipes, key=lambda p: p.start)
    assert second.start - first.start == 8
    target = compiled.target
    assert not set(_placements(target, first)) & set(_placements(target, second))
    check(graph, random_inputs(graph, 3), "fp32")


def test_a_reduction_starts_while_the_one_before_it_combines():
    """Two heads' softmax maxima in one kernel: the second head's recurrence runs on other
    ALUs, its first MaxI issuing before the first head's result is written."""
    graph, inputs = attention_case(16, 16, 64, 2)
    _, k = _kernel(graph, "attention.node max")

    def issues(mnemonic: str) -> list[tuple[int, int]]:
        return sorted((p.start + s.t, s.queue) for p in k.pipes for s in p.slots
                      if s.mnemonic == mnemonic)

    starts = issues("MaxI")  # each recurrence starts with the immediate form, on its ALU
    alus = {q for _, q in starts}
    assert len(alus) == 2
    second = min(t for t, q in starts if q != starts[0][1])
    assert second < issues("Write")[0][0]
    check(graph, inputs, "fp32")


def test_the_passes_of_a_matmul_follow_back_to_back():
    """x (64 x 16) @ W (16 x 16) in fp32 mode: three passes of bf16 parts, x0 W0, x1 W0, x0 W1.
    The second reads another tensor (x's second part) through the same install; taking other
    streams than the first, its first ACC issues right after the first pass's 64 ACCs (2 cycles
    each); the third waits for those and for W1's 16 rows (2 LWs of 8) and install (20)."""
    rng = np.random.default_rng(5)
    b = GraphBuilder("mm")
    x = b.input("x", (64, 16))
    b.output(b.matmul(x, b.constant("w", rng.standard_normal((16, 16)).astype(np.float32))),
             "y")
    graph = b.build()
    _, k = _kernel(graph, "matmul", "fp32")
    firsts = sorted(p.start + min(s.t for s in p.slots if s.mnemonic == "ACC")
                    for p in k.pipes if any(s.mnemonic == "ACC" for s in p.slots))
    assert [t - firsts[0] for t in firsts] == [0, 128, 128 + 128 + 2 + 20]
    check(graph, random_inputs(graph, 5), "fp32")
