"""Conformance: the official ONNX node test cases of the supported ops, imported and evaluated
through the IR's float64 `evaluate`, against the outputs onnx ships with them.

In scope (node_cases.in_scope): every node an op the front end supports, the tensors float32
(with bool and integer indices beside). 237 of the 261 such cases pass; the 24 others are
EXCLUDED below, each with the reason, and the importer must refuse each with that reason.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from node_cases import scoped  # noqa: E402

from lpu_emu.compiler.evaluate import evaluate  # noqa: E402
from lpu_emu.compiler.frontends.onnx import import_model, static_inputs  # noqa: E402
from lpu_emu.errors import LpuError  # noqa: E402

ZERO_SIZE = "dimension of size 0"
EMPTY = "is empty"
EXCLUDED = {  # case -> the importer's reason (a fragment of its message)
    **{f"test_{c}": ZERO_SIZE for c in (
        "reduce_l1_empty_set_expanded", "reduce_max_empty_set", "reduce_sum_empty_set",
        "reduce_sum_empty_set_non_reduced_axis_zero", "reduce_sum_square_empty_set_expanded",
        "reshape_allowzero_reordered", "split_zero_size_splits_opset13",
        "split_zero_size_splits_opset18")},
    "test_shape_start_greater_than_end": EMPTY,  # Shape of no dimensions: an empty tensor
    "test_slice_start_out_of_bounds": EMPTY,
    # rotary_dim = the head size leaves a zero-size "no rotate" part
    **{f"test_rotary_embedding{c}_expanded": EMPTY for c in (
        "_3d_input", "", "_interleaved", "_no_position_ids", "_no_position_ids_interleaved")},
    # Cast gained an attribute (round_mode) after opset 21
    **{f"test_flexattention_{c}expanded_ver26": "Cast changed after opset 21" for c in (
        "diff_head_sizes_", "", "gqa_", "prob_mod_", "scaled_", "score_mod_", "soft_cap_")},
    # integer bases: an integer result, and arithmetic on the chip is float32
    "test_pow_types_int32_float32": "arithmetic on the chip is float32",
    "test_pow_types_int64_float32": "arithmetic on the chip is float32",
}
CASES = {c.name: c for c in scoped()}


def run_case(case):  # type: ignore[no-untyped-def]
    static = static_inputs(case.model)
    feeds = {k: v for k, v in case.inputs.items() if k not in static}
    graph = import_model(case.model, {k: v.shape for k, v in feeds.items()},
                         constants={k: case.inputs[k] for k in static})
    return evaluate(graph, feeds)


def test_node_cases_counts() -> None:
    assert len(CASES) == 261
    assert set(EXCLUDED) <= set(CASES)
    assert len(CASES) - len(EXCLUDED) == 237


@pytest.mark.parametrize("name", sorted(CASES))
def test_node_case(name: str) -> None:
    case = CASES[name]
    if name in EXCLUDED:
        with pytest.raises(LpuError, match=EXCLUDED[name]):
            run_case(case)
        return
    got = run_case(case)
    for out, want in case.outputs.items():
        assert got[out].shape == want.shape
        if want.dtype == np.bool_:
            np.testing.assert_array_equal(got[out].astype(bool), want)
        else:
            np.testing.assert_allclose(got[out], want, rtol=case.rtol, atol=case.atol)
