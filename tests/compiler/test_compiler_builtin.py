"""The built-in layers at issue 7's sizes stay within the documented int8 and fp8 bounds
(compiler/builtin.py ERROR_BOUNDS, docs/compiler.md), on the fast core against float64 numpy."""

from __future__ import annotations

import pytest

from lpu_emu.compiler import build as B
from lpu_emu.compiler import kernels as K
from lpu_emu.compiler.builtin import BUILTINS, ERROR_BOUNDS, build, describe, layer_inputs
from lpu_emu.compiler.report import report


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int8", "fp8"])
@pytest.mark.parametrize("name, decode", [("bert-layer", False), ("gpt-layer", False),
                                          ("gpt-layer", True)])
def test_builtin_layer_within_the_mode_bound(name: str, decode: bool, dtype: str) -> None:
    built = build(name, decode=decode, dtype=dtype)
    err, scale = built.check()
    assert 0 < err <= ERROR_BOUNDS[dtype] * scale


def test_builtin_defaults_are_issue_7_sizes() -> None:
    bert = build("bert-layer", seq=2, dtype="bf16")  # weights at the default d and d_ff
    assert bert.weights["w1"].shape == (384, 1536) and bert.heads == 12
    assert (BUILTINS["bert-layer"].seq, BUILTINS["gpt-layer"].seq) == (128, 64)
    assert describe(bert) == "BERT encoder layer, d 384, 12 heads, d_ff 1536, seq 2"


def test_layer_inputs_are_seeded() -> None:
    a, b = layer_inputs(8, 3, True, 5), layer_inputs(8, 3, True, 5)
    assert a.keys() == {"x_prompt", "x_step"} and a["x_prompt"].shape == (3, 8)
    assert (a["x_prompt"] == b["x_prompt"]).all() and (a["x_step"] == b["x_step"]).all()
    assert not (layer_inputs(8, 3, False, 6)["x"] == a["x_prompt"]).all()


def test_narrow_mxm_work_takes_turns_on_both_plane_pairs(monkeypatch) -> None:
    """bf16 leaves two plane pairs; a decode step's per-head probs @ v (one output chunk, a job
    per head, each head's probabilities a tensor of its own) alternates its jobs between MXM_W0
    and MXM_E0, one pair installing while the other computes: 626 cycles against 1,147 with every
    job on MXM_W0 (the step 12,261 against 12,745), still within the bf16 bound."""
    def probs() -> tuple[int, set[str], int]:
        built = build("gpt-layer", decode=True, dtype="bf16")
        compiled = built.compiled
        chip = compiled.target.chip
        k = next(p for p in compiled.placed if p.kernel.name == "attention.node probs h")
        planes = {chip.slices[s.queue].name for pipe in k.kernel.pipes for s in pipe.slots
                  if s.mnemonic == "ACC"}
        if planes == {"MXM_W0", "MXM_E0"}:
            err, scale = built.check()
            assert err <= 2e-2 * scale
        return k.end - k.start, planes, report(compiled).cycles

    assert probs() == (626, {"MXM_W0", "MXM_E0"}, 12_261)
    monkeypatch.setattr(B, "_spread", lambda target, note, jobs, mxm, planes, width, locs:
                        K.mxm(target, note, jobs, mxm, planes[:width], locs))
    assert probs() == (1_147, {"MXM_W0"}, 12_745)
