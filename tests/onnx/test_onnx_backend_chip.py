"""The ONNX backend on the emulated chip (compile_graph, issue 7): the exported fixtures within
1e-4 of onnx's reference evaluator in fp32, and the official node test cases through the backend.
No op runs on the host: a case whose op the compiler cannot lower fails here."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

pytest.importorskip("onnx")

from node_cases import scoped  # noqa: E402
from onnx_helpers import FIXTURES, reference, rel_error  # noqa: E402
from test_onnx_fixtures import CASES as FIXTURE_CASES  # noqa: E402
from test_onnx_node_cases import EXCLUDED  # noqa: E402

from lpu_emu import onnx_backend  # noqa: E402
from lpu_emu.compiler.frontends.onnx import read_model  # noqa: E402
from lpu_emu.errors import LpuError  # noqa: E402

IN_SCOPE = {c.name: c for c in scoped() if c.name not in EXCLUDED}
CHIP_EXCLUDED = {  # case -> why the compiler refuses it (a fragment of its message)
    **{f"test_{c}": "Pow with a computed exponent" for c in (
        "pow", "pow_bcast_array", "pow_bcast_scalar", "pow_example", "pow_types_float32_int32",
        "pow_types_float32_int64",)},
}
NODE_CASES = {k: c for k, c in IN_SCOPE.items() if k not in CHIP_EXCLUDED}
# Each case compiles and runs a program: CI runs every SAMPLE_EVERY-th, LPU_SLOW=1 runs them all.
SAMPLE_EVERY = 6
SAMPLED = set(sorted(NODE_CASES)[::SAMPLE_EVERY])


def test_chip_node_case_counts() -> None:
    """The README's conformance figure: of the in-scope float32 node cases, how many run on
    the chip (the rest are CHIP_EXCLUDED, each refused with its reason)."""
    assert set(CHIP_EXCLUDED) <= set(IN_SCOPE)
    assert (len(IN_SCOPE), len(NODE_CASES)) == (237, 231)


@pytest.mark.parametrize("name", sorted(CHIP_EXCLUDED))
def test_chip_refuses_excluded_case(name: str) -> None:
    case = IN_SCOPE[name]
    with pytest.raises(LpuError, match=re.escape(CHIP_EXCLUDED[name])):
        onnx_backend.run_model(case.model, case.inputs)


@pytest.mark.parametrize("name", sorted(FIXTURE_CASES))
def test_chip_fixture_matches_reference_evaluator(name: str) -> None:
    make, out = FIXTURE_CASES[name]
    model = read_model(FIXTURES / f"{name}.onnx")
    rep = onnx_backend.prepare(model, dtype="fp32", chip="lp30")
    for _ in range(2):  # compiled once, run twice
        feeds = make()
        (got,) = rep.run(feeds)
        want = reference(model, feeds)[out]
        assert got.dtype == np.float32 and got.shape == want.shape
        assert rel_error(got, want) <= 1e-4
    assert len(rep._compiled) == 1


@pytest.mark.parametrize("name", sorted(NODE_CASES))
def test_chip_node_case(name: str) -> None:
    if name not in SAMPLED and not os.environ.get("LPU_SLOW"):
        pytest.skip("set LPU_SLOW=1 (CI runs a sample)")
    case = NODE_CASES[name]
    outs = onnx_backend.run_model(case.model, case.inputs)
    for (out, want), got in zip(case.outputs.items(), outs, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape, out
        np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
