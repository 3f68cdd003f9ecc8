"""Kernel builders (compiler/kernels.py): passes over other slices follow each other back to
back on other streams; a run of reductions overlaps each result's combine with the next one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from compiler_helpers import both_cores, check, compare, random_inputs, single
from test_ops import attention_case

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.dataflow import CompileError, Slot, Streams
from lpu_emu.compiler.kernel import Pipe
from lpu_emu.compiler.kernels import _check_period, after, placements
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.target import Target
from lpu_emu.spec.encoding import stream_code

LP30 = Target.of("lp30")
WEST = stream_code(0, True)  # the direction bit of a stream code


def _kernel(graph, note: str, dtype: str = "fp32"):
    compiled = compile_graph(graph, "lp30", dtype)
    return compiled, next(p.kernel for p in compiled.placed if p.kernel.name.startswith(note))


def test_the_chunks_of_an_elementwise_pass_run_side_by_side():
    """Exp of 8 rows x 640 columns: two chunks on other slices. The second chunk's pass takes
    other streams and another ALU, so its first Read issues with the first pass's (both read
    row 0 at the kernel's first cycle) instead of 8 cycles (8 rows) after it, as it did on
    the same ALU, or after the first pass's values reached their consumers, on its streams."""
    graph = single("Exp", {"x": (8, 640)})
    compiled, k = _kernel(graph, "exp")
    first, second = sorted(k.pipes, key=lambda p: p.start)
    assert first.first() == second.first() == 0
    exp = [next(s for s in p.slots if s.mnemonic == "Exp") for p in (first, second)]
    assert exp[0].queue != exp[1].queue
    assert first.start + exp[0].t == second.start + exp[1].t - 4  # the second's slices: 4 hops
    target = compiled.target
    assert not set(placements(target, first)) & set(placements(target, second))
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


def _matmul(rows: int, k: int, cols: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("mm")
    x = b.input("x", (rows, k))
    w = b.constant("w", rng.standard_normal((k, cols)).astype(np.float32))
    b.output(b.matmul(x, w), "y")
    return b.build()


def _acc_planes(pipe) -> set[int]:
    return {s.queue for s in pipe.slots if s.mnemonic == "ACC"}


def test_a_narrow_matmul_splits_its_k_tiles_over_two_planes():
    """x (128 x 640) @ W (640 x 16), bf16: one output chunk, two K tiles, two row blocks. Split,
    MXM_W0 takes one tile and MXM_E0 the other, each installed once for both blocks; a pipe a
    block feeds both chunks of x at once (rounded to bf16 on the way, conversions.py), and its
    epilogue adds the two accumulators (822 cycles against 882 on one plane at a time: the
    test of `_or_split` keeping the shorter)."""
    graph = _matmul(128, 640, 16)
    compiled, k = _kernel(graph, "matmul", "bf16")
    names = {s.index: s.name for s in compiled.target.chip.slices}
    feeds = [p for p in k.pipes if len(_acc_planes(p)) == 2]
    assert len(feeds) == 2
    assert {names[q] for p in feeds for q in _acc_planes(p)} == {"MXM_W0", "MXM_E0"}
    assert all(any(s.mnemonic == "Add" for s in p.slots) for p in feeds)
    assert sum(s.mnemonic == "IW" for p in k.pipes for s in p.slots) == 2
    assert k.length(compiled.target) == 822
    check(graph, random_inputs(graph, 7), "bf16")


def test_a_split_reads_a_row_both_planes_take_once():
    """fp32 mode, x (128 x 384) @ W (384 x 16): six passes a block (three part products a K
    tile), by weights half on each plane, so one pair a block takes x's first part of the
    second K tile on both planes: one Read (two byte planes), a Mov each way. Two reads of one
    slice would collide every other cycle: a queue-busy the core caught in BERT seq 16."""
    graph = _matmul(128, 384, 16)
    _, k = _kernel(graph, "matmul", "fp32")
    feeds = [p for p in k.pipes if len(_acc_planes(p)) == 2]
    assert len(feeds) == 6
    shared = [p for p in feeds if sum(s.mnemonic == "Read" for s in p.slots) == 2]
    assert len(shared) == 2
    assert all(sum(s.mnemonic == "Mov" for s in p.slots) >= 2 for p in shared)
    check(graph, random_inputs(graph, 7), "fp32")


def test_a_pipe_that_would_issue_twice_on_a_queue_is_refused():
    read = Slot(5, "Read", "bf16", (("src", (0, 0)), ("dst", 64)), 0, "mem", 1)
    later = Slot(5, "Read", "bf16", (("src", (0, 1)), ("dst", 66)), 2, "mem", 1)
    with pytest.raises(CompileError, match="two issues on queue 5 a pipe period apart"):
        _check_period(LP30, Pipe([read, later], 4, period=2))
    _check_period(LP30, Pipe([read, replace(later, t=1)], 4, period=2))


def test_a_wide_matmul_with_bias_and_residual_matches_numpy_on_both_cores():
    """The epilogue adds one precomputed sum (Lowering.emit_mm); both cores, bit for bit."""
    rng = np.random.default_rng(9)
    b = GraphBuilder("residual")
    m = b.matmul(b.input("x", (8, 16)),
                 b.constant("w", rng.standard_normal((16, 640)).astype(np.float32)),
                 bias=b.constant("b", rng.standard_normal(640).astype(np.float32)))
    b.output(b.add(m, b.input("r", (8, 640))), "y")
    graph = b.build()
    inputs = random_inputs(graph, 9)
    for dtype in ("fp32", "bf16"):
        _, got = both_cores(graph, inputs, dtype)
        compare(graph, inputs, got, dtype)


def test_a_reductions_feedback_flows_away_from_its_output():
    """The chains' feedback (f) and the combine's second group (g) are read at the VXM where
    they are placed, so they take streams flowing away from the output, leaving the output's
    direction to the next reduction's data; the result (h) flows to the output's slices."""
    graph, inputs = attention_case(64, 64, 64, 2)
    compiled, k = _kernel(graph, "attention.node max", "bf16")
    vxm = compiled.target.vxm_position
    tails = [p for p in k.pipes if any(s.mnemonic == "Mov" for s in p.slots)]
    assert len(tails) == 2
    for p in tails:
        ops = {s.mnemonic: dict(s.operands) for s in p.slots if s.mnemonic in ("Mov", "Max")}
        out = next(s for s in p.slots if s.mnemonic == "Write")
        west = compiled.target.chip.slices[out.queue].position < vxm
        f, g, h = ops["Mov"]["x"], ops["Mov"]["z"], ops["Max"]["z"]
        assert [bool(c & WEST) for c in (f, g, h)] == [not west, not west, west]
    check(graph, inputs, "bf16")


def test_a_pipe_from_other_places_waits_only_for_the_values_on_its_streams():
    """Pipe A reads a row of MEM_W77 (position 3) onto stream 0 east, a Mov at the VXM
    (position 81) takes it 78 hops later, and another Mov issues at cycle 200 on other streams.
    Pipe B reads MEM_W70 (position 10) onto the same stream: it may place there once A's value
    has been read (cycle 79), not only after A's last issue (200)."""
    s0, s1, s2, s3 = (stream_code(i, False) for i in range(4))
    read = Slot(5, "Read", "int8", (("src", (0, 0)), ("dst", s0)), 0, "mem", 1)
    a = Pipe([read, Slot(83, "Mov", "int8", (("x", s0), ("z", s1)), 79),
              Slot(84, "Mov", "int8", (("x", s2), ("z", s3)), 200)], 1)
    b = Pipe([Slot(12, "Read", "int8", (("src", (0, 0)), ("dst", s0)), 0, "mem", 1)], 1)
    assert after(LP30, [a], b) == 79  # its value lands at 80, after A's read at 79


def test_streams_hand_out_avoided_groups_last():
    """`avoid` (the pass before's streams) is handed out only once nothing else is free, group
    by group; `blocked` never."""
    s = Streams(0, 12, blocked={False: {8, 9, 10, 11}, True: set()},
                avoid={False: {0, 1, 2, 3}, True: set()})
    assert [s.take(False, 4), s.take(False, 4)] == [4, 0]
    with pytest.raises(CompileError, match="no free group of 4 streams flowing east"):
        s.take(False, 4)
    top = Streams(0, 12, from_top=True, avoid={False: set(), True: {8, 9, 10, 11}})
    assert [top.take(True, 4), top.take(True, 4), top.take(True, 4)] == [4, 0, 8]


def test_a_matmuls_feeds_take_other_alus_than_the_feed_before():
    """x (128 x 384) @ W + b in bf16: two row blocks of two K tiles, each tile's pass fed on
    VXM ALUs (x rounded to bf16 on its way, the bias added in the last pass's epilogue); each
    feed takes other ALUs than the feed before it, so it need not wait for that one's
    conversions and epilogue to leave them."""
    rng = np.random.default_rng(5)
    b = GraphBuilder("mm")
    x = b.input("x", (128, 384))
    y = b.matmul(x, b.constant("w", rng.standard_normal((384, 320)).astype(np.float32)))
    b.output(b.add(y, b.constant("b", rng.standard_normal(320).astype(np.float32))), "y")
    graph = b.build()
    compiled, k = _kernel(graph, "matmul", "bf16")
    vxm = {a.index for a in compiled.target.vxm_alus}
    feeds = sorted((p for p in k.pipes if any(s.mnemonic == "ACC" for s in p.slots)),
                   key=lambda p: p.start)
    alus = [{s.queue for s in p.slots if s.queue in vxm} for p in feeds]
    assert len(alus) == 4 and all(alus)
    assert all(not a & b for a, b in zip(alus, alus[1:], strict=False))
    check(graph, {"x": rng.standard_normal((128, 384)).astype(np.float32)}, "bf16")


def test_reductions_on_one_alu_follow_each_other_back_to_back():
    """Four heads' maxima over 64 keys, two ways: heads 0 and 2 share an ALU, as do 1 and 3.
    On each ALU the second recurrence's first op issues the cycle after the first's combine
    (132 ops in 132 cycles: 64 + 64 rows and each combine's Mov and Max), not once its result
    has been written as well."""
    graph, inputs = attention_case(64, 64, 64, 4)
    _, k = _kernel(graph, "attention.node max", "bf16")
    ops: dict[int, list[int]] = {}
    for p in k.pipes:
        for s in p.slots:
            if s.mnemonic in ("MaxI", "Max", "Mov"):
                ops.setdefault(s.queue, []).extend(p.start + s.t + i * p.period
                                                   for i in range(p.count))
    assert len(ops) == 2
    for cycles in ops.values():
        assert sorted(cycles) == list(range(min(cycles), min(cycles) + 132))
    check(graph, inputs, "bf16")
