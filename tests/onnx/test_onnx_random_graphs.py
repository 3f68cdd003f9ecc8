"""Property test: random chains of supported ONNX ops (elementwise, movement, reductions, folded
shape arithmetic) import into the IR and evaluate to what onnx's reference evaluator computes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_helpers import model, reference, through_ir  # noqa: E402

N = helper.make_node
UNARY = ("Relu", "Tanh", "Sigmoid", "Neg", "Exp", "Abs", "Erf")


class Chain:
    """Builds a model one op at a time, tracking the current value's shape."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.value, self.shape = "x", shape

    def add(self, op: str, inputs: list[str], shape: tuple[int, ...], **attrs) -> None:
        out = f"v{len(self.nodes)}"
        self.nodes.append(N(op, [self.value, *inputs], [out], **attrs))
        self.value, self.shape = out, shape

    def const(self, data: np.ndarray) -> str:
        name = f"c{len(self.inits)}"
        self.inits[name] = data
        return name


def step(chain: Chain, draw) -> None:  # type: ignore[no-untyped-def]
    s = chain.shape
    kind = draw(st.sampled_from(["unary", "binary", "transpose", "reshape", "softmax", "reduce",
                                 "slice", "concat", "pow", "shape_chain"]))
    rank = len(s)
    if kind == "unary":
        chain.add(draw(st.sampled_from(UNARY)), [], s)
    elif kind == "binary":
        op = draw(st.sampled_from(["Add", "Sub", "Mul", "Div"]))
        bshape = tuple(d if draw(st.booleans()) else 1 for d in s)
        data = np.linspace(0.5, 1.5, int(np.prod(bshape))).astype(np.float32).reshape(bshape)
        chain.add(op, [chain.const(data)], s)
    elif kind == "transpose":
        perm = tuple(draw(st.permutations(range(rank))))
        chain.add("Transpose", [], tuple(s[p] for p in perm), perm=perm)
    elif kind == "reshape":
        size = int(np.prod(s))
        first = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
        chain.add("Reshape", [chain.const(np.array([first, -1]))], (first, size // first))
    elif kind == "softmax":
        chain.add("Softmax", [], s, axis=draw(st.integers(-rank, rank - 1)))
    elif kind == "reduce":
        axis = draw(st.integers(0, rank - 1))
        op = draw(st.sampled_from(["ReduceMean", "ReduceMax", "ReduceSum"]))
        out = tuple(1 if i == axis else d for i, d in enumerate(s))
        chain.add(op, [chain.const(np.array([axis]))], out, keepdims=1)
    elif kind == "slice":
        axis = draw(st.integers(0, rank - 1))
        if s[axis] < 2:
            return
        start = draw(st.integers(0, s[axis] - 1))
        out = tuple(s[axis] - start if i == axis else d for i, d in enumerate(s))
        chain.add("Slice", [chain.const(np.array([start])), chain.const(np.array([s[axis]])),
                            chain.const(np.array([axis]))], out)
    elif kind == "concat":
        axis = draw(st.integers(0, rank - 1))
        out = tuple(2 * d if i == axis else d for i, d in enumerate(s))
        chain.nodes.append(N("Concat", [chain.value, chain.value], [f"v{len(chain.nodes)}"],
                             axis=axis))
        chain.value, chain.shape = chain.nodes[-1].output[0], out
    elif kind == "pow":
        e = draw(st.sampled_from([1.0, 2.0, 3.0]))
        chain.add("Pow", [chain.const(np.array(e, np.float32))], s)
    else:  # Shape -> Gather -> Unsqueeze -> Concat -> Reshape, folded at import
        v = chain.value
        k = len(chain.nodes)
        chain.nodes += [N("Shape", [v], [f"s{k}"]),
                        N("Gather", [f"s{k}", chain.const(np.array(0))], [f"g{k}"]),
                        N("Unsqueeze", [f"g{k}", chain.const(np.array([0]))], [f"u{k}"]),
                        N("Concat", [f"u{k}", chain.const(np.array([-1]))], [f"t{k}"], axis=0)]
        chain.value = f"t{k}"
        chain.nodes.append(N("Reshape", [v, chain.value], [f"v{len(chain.nodes)}"]))
        chain.value = chain.nodes[-1].output[0]
        chain.shape = (s[0], int(np.prod(s[1:])) if rank > 1 else 1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_random_chain_matches_reference_evaluator(data) -> None:  # type: ignore[no-untyped-def]
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    chain = Chain(shape)
    for _ in range(data.draw(st.integers(1, 6))):
        step(chain, data.draw)
    x = np.linspace(-2, 2, int(np.prod(shape))).astype(np.float32).reshape(shape)
    m = model(chain.nodes, {"x": x}, [chain.value], chain.inits, opset=18)
    want = reference(m, {"x": x})[chain.value]
    with np.errstate(all="ignore"):  # Exp of Exp overflows float32 (as the reference does)
        got = through_ir(m, {"x": x})[chain.value].astype(np.float32)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
