"""The two torch.onnx.export fixtures (tests/onnx/fixtures/make_fixtures.py made them):
imported, fused, evaluated, and compared with onnx's reference evaluator."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx_helpers import FIXTURES, reference, rel_error  # noqa: E402

from lpu_emu.compiler.evaluate import evaluate  # noqa: E402
from lpu_emu.compiler.frontends.onnx import load_onnx, read_model  # noqa: E402

SEQ = 16
R = np.random.default_rng(11)


def bert_feeds() -> dict[str, np.ndarray]:
    mask = np.ones((1, SEQ), np.int64)
    mask[0, 11:] = 0
    return {"input_ids": R.integers(0, 100, (1, SEQ)), "attention_mask": mask}


def decoder_feeds() -> dict[str, np.ndarray]:
    return {"input_ids": R.integers(0, 100, (1, SEQ))}


CASES = {"tiny_bert": (bert_feeds, "last_hidden_state"),
         "tiny_decoder": (decoder_feeds, "logits")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_matches_reference_evaluator(name: str) -> None:
    make, out = CASES[name]
    feeds = make()
    graph = load_onnx(FIXTURES / f"{name}.onnx", {k: v.shape for k, v in feeds.items()})
    assert graph.inputs == tuple(feeds) and graph.outputs == (out,)
    want = reference(read_model(FIXTURES / f"{name}.onnx"), feeds)[out]
    got = evaluate(graph, feeds)[out]
    assert got.shape == want.shape
    assert rel_error(got, want) <= 1e-4


def test_fixture_bert_fuses_to_attention_and_layernorm() -> None:
    graph = load_onnx(FIXTURES / "tiny_bert.onnx", {"input_ids": (1, SEQ),
                                                    "attention_mask": (1, SEQ)})
    count = Counter(n.op for n in graph.nodes)
    assert (count["Attention"], count["LayerNormalization"], count["Softmax"]) == (2, 5, 0)
    att = [n for n in graph.nodes if n.op == "Attention"]
    assert all(len(n.inputs) == 4 and n.attr("num_heads") == 2 and not n.attr("causal")
               for n in att)
    assert count["Transpose"] == 0 and count["Gather"] == 1  # shape chains folded away
    assert count["Gelu"] == 2 and count["Erf"] == 0
    assert all(n.attr("approximate") == "none" for n in graph.nodes if n.op == "Gelu")


def test_fixture_decoder_fuses_causal_attention_and_written_layernorm() -> None:
    graph = load_onnx(FIXTURES / "tiny_decoder.onnx", {"input_ids": (1, SEQ)})
    count = Counter(n.op for n in graph.nodes)
    assert (count["Attention"], count["LayerNormalization"], count["ReduceMean"]) == (2, 5, 0)
    att = [n for n in graph.nodes if n.op == "Attention"]
    assert all(len(n.inputs) == 3 and n.attr("causal") == 1 for n in att)
    assert count["Gelu"] == 2 and count["Tanh"] == 0
    assert all(n.attr("approximate") == "tanh" for n in graph.nodes if n.op == "Gelu")


def test_fixture_needs_its_sequence_length() -> None:
    from lpu_emu.errors import UsageError
    with pytest.raises(UsageError) as e:
        load_onnx(FIXTURES / "tiny_decoder.onnx")
    assert e.value.message == ("input 'input_ids' has symbolic dimensions (1, seq): give its "
                               "sizes")


def test_fixture_files_are_small() -> None:
    for name in CASES:
        assert (FIXTURES / f"{name}.onnx").stat().st_size < 1 << 20
