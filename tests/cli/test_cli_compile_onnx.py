"""`lpu compile MODEL.onnx`: an exported model compiles unedited, its input and output names are
the program's tensor names, and `lpu run --input/--output` on the written program gives what
onnx's reference evaluator gives (issue 8, point 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

FIXTURES = Path(__file__).resolve().parents[1] / "onnx" / "fixtures"
BERT = FIXTURES / "tiny_bert.onnx"
SHAPES = ["--shape", "input_ids=1,16", "--shape", "attention_mask=1,16"]


def _inputs(tmp_path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    mask = np.ones((1, 16), np.int64)
    mask[0, 11:] = 0  # five padding tokens
    feeds = {"input_ids": rng.integers(0, 100, (1, 16)).astype(np.int64),
             "attention_mask": mask}
    for name, value in feeds.items():
        np.save(tmp_path / f"{name}.npy", value)
    return feeds


def test_compile_model_then_run_matches_the_reference_evaluator(lpu, tmp_path: Path) -> None:
    from onnx.reference import ReferenceEvaluator
    program = tmp_path / "bert.lpu"
    r = lpu("compile", str(BERT), *SHAPES, "-o", str(program))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("tiny_bert.lpu on lp30, fp32: ")
    assert r.stdout.splitlines()[-1] == f"wrote {program}"
    text = program.read_text(encoding="utf-8")
    assert ".tensor input_ids, fp32, (1, 16), " in text
    assert ".tensor last_hidden_state, fp32, (1, 16, 64), " in text  # the model's own shape
    feeds = _inputs(tmp_path)
    out = tmp_path / "hidden.npy"
    r = lpu("run", str(program), "--input", f"input_ids={tmp_path / 'input_ids.npy'}",
            "--input", f"attention_mask={tmp_path / 'attention_mask.npy'}",
            "--output", f"last_hidden_state={out}")
    assert r.exit_code == 0, r.stderr
    got = np.load(out)
    (want,) = ReferenceEvaluator(str(BERT)).run(None, feeds)
    assert got.shape == want.shape == (1, 16, 64)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_compile_model_json_report(lpu) -> None:
    r = lpu("compile", str(FIXTURES / "tiny_decoder.onnx"), "--shape", "input_ids=1,8",
            "--dtype", "bf16", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    from lpu_emu.compiler import compile_graph
    from lpu_emu.compiler.frontends.onnx import load_onnx
    want = compile_graph(load_onnx(FIXTURES / "tiny_decoder.onnx", {"input_ids": (1, 8)}),
                         "lp30", "bf16", name="tiny_decoder")
    assert (doc["name"], doc["chip"], doc["mode"]) == ("tiny_decoder.lpu", "lp30", "bf16")
    from lpu_emu.compiler.report import report
    assert (doc["cycles"], doc["instructions"]) == (report(want).cycles, len(want.program.word))
    assert doc["roofline"]["bound"] <= doc["cycles"]


@pytest.mark.parametrize("args, message", [
    ([str(BERT), "--builtin", "bert-layer"],
     "error: give a model file (MODEL.onnx) or --builtin LAYER, not both"),
    ([str(BERT), *SHAPES, "--seq", "16"],
     "error: --seq is an option of --builtin layers, not of a model file"),
    ([str(BERT), *SHAPES, "--run"],
     "error: --run is an option of --builtin layers, not of a model file"),
    (["--builtin", "bert-layer", "--shape", "x=1,2"],
     "error: --shape is an option of model files, not of --builtin layers"),
    ([str(BERT)], "error: input 'input_ids' has symbolic dimensions (1, seq): give its sizes"),
    ([str(BERT), "--shape", "input_ids=1,0"], "error: bad --shape 'input_ids=1,0'"),
    ([str(BERT), *SHAPES, "--dtype", "fp64"],
     "error: --dtype 'fp64' is not one of: fp32, bf16, fp16, int8, fp8"),
    ([str(FIXTURES / "make_fixtures.py")], "error: "),
])
def test_compile_model_bad_options_are_usage_errors(lpu, args: list[str], message: str) -> None:
    r = lpu("compile", *args)
    assert r.exit_code == 2, r.stdout
    assert r.stdout == ""
    assert r.stderr.splitlines()[0].startswith(message)
