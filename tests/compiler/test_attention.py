"""Attention's context by queries or by head dimensions (compiler/attention.py): the estimates
that choose, the steps each way lowers to, and both ways against numpy in every mode."""

from __future__ import annotations

import pytest
from compiler_helpers import MODES, both_cores, check, compare
from test_ops import attention_case

from lpu_emu.compiler.attention import estimates
from lpu_emu.compiler.lowering import lower
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.precision import mode
from lpu_emu.compiler.target import Target

LP30 = Target.of("lp30")


def test_estimates_of_the_bert_layer_at_seq_128():
    """By hand, bf16 (an ACC holds the pair 2 cycles, an install 20): by queries a head costs
    a transpose of P_h^T (128 rows loaded, one install, 128 ACCs: 404) and P_h through the
    masked V (the same: 404), 12 x 808 = 9,696; by dimensions a head costs 128 rows, an
    install and 32 ACCs (212), plus V^T (two column chunks of 128 rows and an install each,
    384 ACCs: 1,064) and C^T back (384 rows, two installs, 2 x 128 ACCs: 936): 4,544."""
    assert estimates(LP30, 128, 128, 384, 12, 1, 1, "bf16") == (9_696, 4_544)
    # fp32: two parts (three products), the context transposed in three exact parts
    assert estimates(LP30, 128, 128, 384, 12, 2, 3, "bf16") == (24_240, 12_568)


def test_estimates_of_a_decode_step_keep_it_by_queries():
    """One query: two ACCs a head by queries (174 each with its loads), against 32 by head
    dimensions and the two transposes of the whole of V and C."""
    assert estimates(LP30, 1, 65, 384, 12, 1, 1, "bf16") == (2_088, 3_154)


def _notes(sq: int, sk: int, d: int, heads: int, dtype: str) -> list[str]:
    g, _ = attention_case(sq, sk, d, heads)
    return [s.note for s in lower(g, mode(dtype), LP30).steps]


def test_a_long_sequence_lowers_by_head_dimensions():
    notes = _notes(64, 64, 64, 2, "bf16")
    assert notes.count("attention.node v transposed") == 1
    assert [n for n in notes if n.startswith("attention.node context")] == [
        "attention.node context h0", "attention.node context h1", "attention.node context"]
    assert not any("probs" in n for n in notes)
    # V^T is made before the softmax, while the planes would otherwise wait for it
    assert notes.index("attention.node v transposed") < notes.index("attention.node max")


def test_a_short_sequence_lowers_by_queries():
    notes = _notes(16, 16, 64, 2, "bf16")
    assert [n for n in notes if "probs" in n] == ["attention.node probs h0",
                                                  "attention.node probs h1"]
    assert notes[-1] == "attention.node context" and "attention.node v transposed" not in notes


def test_by_queries_deals_the_heads_over_two_ways_too():
    """Three heads by queries: each head's probabilities are transposed from its way's tensor
    (heads 0 and 2 from one, at rows 0 and 16; head 1 from the other), into one tensor."""
    g, _ = attention_case(16, 16, 48, 3)
    steps = [s for s in lower(g, mode("bf16"), LP30).steps
             if s.note.startswith("attention.node probs")]
    assert [(s.x_row, s.out_row) for s in steps] == [(0, 0), (0, 16), (16, 32)]
    assert steps[0].x == steps[2].x != steps[1].x and len({s.out for s in steps}) == 1


def test_fp32_transposes_each_part_of_v():
    notes = _notes(64, 64, 64, 2, "fp32")
    assert notes.count("attention.node v transposed") == 2


def test_fp8_keeps_the_context_by_queries():
    """fp8 parts are not the transposes' dtype (bf16): no exact transpose of V's parts."""
    assert "attention.node v transposed" not in _notes(64, 64, 64, 2, "fp8")


@pytest.mark.parametrize("variant", ["full", "causal", "mask"])
@pytest.mark.parametrize("dtype", MODES)
def test_by_head_dimensions_matches_numpy(dtype, variant):
    check(*attention_case(64, 64, 64, 2, variant == "causal", variant == "mask"), dtype)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_by_head_dimensions_over_several_tiles(dtype):
    """330 keys: two K tiles of P^T a head; 330 queries: two output chunks of C^T."""
    check(*attention_case(330, 330, 64, 2, causal=True), dtype)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_both_cores_agree_by_head_dimensions(dtype):
    g, x = attention_case(24, 24, 48, 3, causal=True)
    assert "attention.node v transposed" in _notes(24, 24, 48, 3, dtype)
    _, got = both_cores(g, x, dtype)
    compare(g, x, got, dtype)


def test_by_head_dimensions_deals_the_heads_over_two_ways():
    """Three heads by head dimensions: the scores of heads 0 and 2 go to one tensor (rows 0 and
    24), head 1's to another; each softmax pass reads each head where it is, and the context
    reads each head's probabilities from its way's parts."""
    g, _ = attention_case(24, 24, 48, 3, causal=True)
    steps = lower(g, mode("bf16"), LP30).steps
    scores = [(s.out, s.out_row) for s in steps if s.note.startswith("attention.node scores")]
    assert [r for _, r in scores] == [0, 0, 24]
    assert scores[0][0] == scores[2][0] != scores[1][0]
    maxima = [(s.expr.name, s.row0, s.out, s.out_row) for s in steps
              if s.note == "attention.node max"]
    assert [(x, r0, r) for x, r0, _, r in maxima] == [
        (scores[0][0], 0, 0), (scores[1][0], 0, 0), (scores[0][0], 24, 1)]
    assert maxima[0][2] == maxima[2][2] != maxima[1][2]
    contexts = [s.terms[0] for s in steps if s.note.startswith("attention.node context h")]
    assert [t.w_row for t in contexts] == [0, 0, 24]
    assert contexts[0].w == contexts[2].w != contexts[1].w


def test_the_softmax_passes_of_two_ways_run_side_by_side():
    """Two heads of 64 keys by head dimensions: each head's maximum is a recurrence on its
    own ALU over its own way's slices, so both read their first row in the kernel's first
    cycle (on one tensor the second started after the first's 64 rows)."""
    g, x = attention_case(64, 64, 64, 2)
    compiled = compile_graph(g, "lp30", "bf16")
    k = next(p.kernel for p in compiled.placed if p.kernel.name == "attention.node max")
    chains: dict[int, list] = {}
    for p in k.pipes:
        ops = [s for s in p.slots if s.mnemonic in ("MaxI", "Max")]
        if ops and any(s.mnemonic == "Read" for s in p.slots):
            chains.setdefault(ops[0].queue, []).append(p)
    assert len(chains) == 2 and all(sum(p.count for p in ps) == 64 for ps in chains.values())
    first_reads = [min(p.start + s.t for p in ps for s in p.slots if s.mnemonic == "Read")
                   for ps in chains.values()]
    assert first_reads == [0, 0]
    check(g, x, "bf16")
