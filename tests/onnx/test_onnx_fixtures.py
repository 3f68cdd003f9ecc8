"""The torch.onnx.export fixtures (tests/onnx/fixtures/make_fixtures.py made them; `_dynamo`:
torch's default exporter, weights in an external file; `_sdpa`: attention through
F.scaled_dot_product_attention): imported, fused, evaluated, and compared with onnx's reference
evaluator."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx_helpers import FIXTURES, reference, rel_error  # noqa: E402

from lpu_emu.compiler.evaluate import evaluate  # noqa: E402
from lpu_emu.compiler.frontends.onnx import load_onnx, model_from_bytes, read_model  # noqa: E402
from lpu_emu.errors import LoadError  # noqa: E402

SEQ = 16
R = np.random.default_rng(11)


def bert_feeds() -> dict[str, np.ndarray]:
    mask = np.ones((1, SEQ), np.int64)
    mask[0, 11:] = 0
    return {"input_ids": R.integers(0, 100, (1, SEQ)), "attention_mask": mask}


def decoder_feeds() -> dict[str, np.ndarray]:
    return {"input_ids": R.integers(0, 100, (1, SEQ))}


CASES = {"tiny_bert": (bert_feeds, "last_hidden_state"),
         "tiny_decoder": (decoder_feeds, "logits"),
         "tiny_bert_dynamo": (bert_feeds, "last_hidden_state"),
         "tiny_decoder_dynamo": (decoder_feeds, "logits"),
         "tiny_bert_sdpa": (bert_feeds, "last_hidden_state"),
         "tiny_decoder_sdpa_dynamo": (decoder_feeds, "logits")}
BERTS = ["tiny_bert", "tiny_bert_dynamo", "tiny_bert_sdpa"]
DECODERS = ["tiny_decoder", "tiny_decoder_dynamo", "tiny_decoder_sdpa_dynamo"]


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


@pytest.mark.parametrize("name", BERTS)
def test_fixture_bert_fuses_to_attention_and_layernorm(name: str) -> None:
    graph = load_onnx(FIXTURES / f"{name}.onnx", {"input_ids": (1, SEQ),
                                                  "attention_mask": (1, SEQ)})
    count = Counter(n.op for n in graph.nodes)
    assert (count["Attention"], count["LayerNormalization"], count["Softmax"]) == (2, 5, 0)
    att = [n for n in graph.nodes if n.op == "Attention"]
    assert all(len(n.inputs) == 4 and n.attr("num_heads") == 2 and not n.attr("causal")
               for n in att)
    assert count["Transpose"] == 0 and count["Gather"] == 1  # shape chains folded away
    assert count["Gelu"] == 2 and count["Erf"] == 0
    assert all(n.attr("approximate") == "none" for n in graph.nodes if n.op == "Gelu")


@pytest.mark.parametrize("name", DECODERS)
def test_fixture_decoder_fuses_causal_attention_and_written_layernorm(name: str) -> None:
    graph = load_onnx(FIXTURES / f"{name}.onnx", {"input_ids": (1, SEQ)})
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
    files = list(FIXTURES.glob("*.onnx*"))
    assert len(files) == 9
    assert all(f.stat().st_size < 1 << 20 for f in files)


def test_fixture_without_its_external_weights_is_a_load_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    alone = tmp_path / "m.onnx"
    alone.write_bytes((FIXTURES / "tiny_bert_dynamo.onnx").read_bytes())
    with pytest.raises(LoadError) as e:
        load_onnx(alone, {"input_ids": (1, SEQ), "attention_mask": (1, SEQ)})
    assert e.value.message.startswith(f"{alone}: cannot read its external weights: ")


def test_fixture_external_weights_from_bytes_is_a_load_error() -> None:
    data = (FIXTURES / "tiny_decoder_dynamo.onnx").read_bytes()
    with pytest.raises(LoadError) as e:
        model_from_bytes(data, "dec.onnx")
    assert e.value.message == "dec.onnx: the model keeps its weights in external files"
