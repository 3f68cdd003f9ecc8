"""The ONNX importer's own paths (rewrites the node cases do not reach) against onnx's reference
evaluator, and its errors, word for word."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402
from onnx_helpers import FIXTURES, model, reference, through_ir  # noqa: E402

from lpu_emu.compiler.frontends.onnx import (  # noqa: E402
    SUPPORTED,
    import_model,
    load_onnx,
    parse_shapes,
)
from lpu_emu.errors import LoadError, UsageError  # noqa: E402

R = np.random.default_rng(7)
X = R.standard_normal((3, 4)).astype(np.float32)
P = (R.random((3, 4)) + 0.5).astype(np.float32)
N = helper.make_node


def f32(*shape: int) -> np.ndarray:
    return R.standard_normal(shape).astype(np.float32)


# name -> (nodes, feeds, initializers, expected IR ops after import)
PATHS = {
    "pow_2_is_mul": ([N("Pow", ["x", "c"], ["y"])], {"x": X}, {"c": np.float32(2)}, ["Mul"]),
    "pow_3_is_two_muls": ([N("Pow", ["x", "c"], ["y"])], {"x": X}, {"c": np.float32(3)},
                          ["Mul", "Mul"]),
    "pow_half_is_sqrt": ([N("Pow", ["x", "c"], ["y"])], {"x": P}, {"c": np.float32(0.5)},
                         ["Sqrt"]),
    "pow_minus_1_is_reciprocal": ([N("Pow", ["x", "c"], ["y"])], {"x": P},
                                  {"c": np.float32(-1)}, ["Reciprocal"]),
    "pow_minus_half": ([N("Pow", ["x", "c"], ["y"])], {"x": P}, {"c": np.float32(-0.5)},
                       ["Sqrt", "Reciprocal"]),
    "pow_1_is_a_copy": ([N("Pow", ["x", "c"], ["y"])], {"x": X}, {"c": np.float32(1)},
                        ["Reshape"]),
    "pow_general": ([N("Pow", ["x", "c"], ["y"])], {"x": P}, {"c": np.float32(1.7)}, ["Pow"]),
    "gemm_const_c_beta": ([N("Gemm", ["a", "b", "c"], ["y"], beta=0.5, transB=1)],
                          {"a": f32(3, 5)}, {"b": f32(4, 5), "c": f32(4)}, ["MatMul"]),
    "gemm_alpha_input_c": ([N("Gemm", ["a", "b", "c"], ["y"], alpha=2.0, beta=3.0,
                              transA=1)], {"a": f32(5, 3), "c": f32(3, 4)}, {"b": f32(5, 4)},
                           ["Mul", "MatMul", "Mul", "Add"]),
    "softmax_axis_0": ([N("Softmax", ["x"], ["y"], axis=0)], {"x": X}, {},
                       ["Transpose", "Softmax", "Transpose"]),
    "layernorm_two_axes": ([N("LayerNormalization", ["x", "g", "b"], ["y"], axis=1)],
                           {"x": f32(2, 3, 4)}, {"g": f32(3, 4), "b": f32(4)},
                           ["Reshape", "Reshape", "Expand", "Reshape", "LayerNormalization",
                            "Reshape"]),
    "gather_scalar_index_is_a_slice": ([N("Gather", ["x", "i"], ["y"], axis=1)], {"x": X},
                                       {"i": np.int64(-1)}, ["Slice", "Reshape"]),
    "gather_embedding": ([N("Gather", ["t", "i"], ["y"])], {"i": np.array([[2, 0, 2]])},
                         {"t": f32(3, 4)}, ["Gather"]),
    "slice_negative_step": ([N("Slice", ["x", "s", "e", "a", "t"], ["y"])], {"x": f32(4, 6)},
                            {"s": np.array([-1, 1]), "e": np.array([-100, 5]),
                             "a": np.array([0, 1]), "t": np.array([-1, 2])},
                            ["Slice", "Slice"]),
    "slice_everything_is_a_copy": ([N("Slice", ["x", "s", "e"], ["y"])], {"x": X},
                                   {"s": np.array([0]), "e": np.array([99])}, ["Reshape"]),
    "expand": ([N("Expand", ["x", "s"], ["y"])], {"x": f32(3, 1)},
               {"s": np.array([2, 1, 4])}, ["Expand"]),
    "where_equal_cast": ([N("Equal", ["x", "z"], ["m"]), N("Cast", ["m"], ["mf"], to=1),
                          N("Where", ["m", "x", "mf"], ["y"])],
                         {"x": np.array([[0, 1.5], [2, 0]], np.float32)},
                         {"z": np.float32(0)}, ["Equal", "Cast", "Where"]),
    "split_num_outputs_uneven": ([N("Split", ["x"], ["y", "y2"], axis=1, num_outputs=2),
                                  N("Add", ["y", "y"], "z")], {"x": f32(2, 5)}, {},
                                 ["Split", "Add"]),
    "matmul_vector_operands": ([N("MatMul", ["v", "m"], ["t"]), N("MatMul", ["t", "w"], ["y"])],
                               {"v": f32(4)}, {"m": f32(4, 3), "w": f32(3)},
                               ["Reshape", "MatMul", "Reshape", "Reshape", "Reshape",
                                "MatMul", "Reshape"]),
    "shape_chain_folds": ([N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["n"]),
                           N("Unsqueeze", ["n", "zero1"], ["n1"]),
                           N("Concat", ["n1", "minus1"], ["t"], axis=0),
                           N("Reshape", ["x", "t"], ["y"])],
                          {"x": f32(2, 3, 4)}, {"zero": np.int64(0), "zero1": np.array([0]),
                                                "minus1": np.array([-1])}, ["Reshape"]),
    "squeeze_unsqueeze_flatten": ([N("Unsqueeze", ["x", "a"], ["u"]),
                                   N("Squeeze", ["u"], ["s"]),
                                   N("Flatten", ["s"], ["y"], axis=-1)], {"x": X},
                                  {"a": np.array([0, 3])}, ["Reshape", "Reshape", "Reshape"]),
    "identity_output": ([N("Relu", ["x"], ["r"]), N("Identity", ["r"], ["y"])], {"x": X}, {},
                        ["Relu", "Reshape"]),
    "reduce_axes_input_opset18": ([N("ReduceMax", ["x", "a"], ["y"], keepdims=0)],
                                  {"x": f32(2, 3, 4)}, {"a": np.array([-1, 0])},
                                  ["ReduceMax"]),
    "folded_output": ([N("ConstantOfShape", ["s"], ["y"])], {"x": X},
                      {"s": np.array([2, 2])}, ["Reshape"]),
}


@pytest.mark.parametrize("name", sorted(PATHS))
def test_import_path_matches_reference_evaluator(name: str) -> None:
    nodes, feeds, inits, ops = PATHS[name]
    outputs = ["z"] if name.startswith("split") else ["y"]
    m = model(nodes, feeds, outputs, inits, opset=18)
    graph = import_model(m, {k: v.shape for k, v in feeds.items()}, fuse=False)
    assert [n.op for n in graph.nodes] == ops
    got = through_ir(m, feeds)
    for out, want in reference(m, feeds).items():
        assert got[out].shape == want.shape
        np.testing.assert_allclose(got[out], want, rtol=1e-6, atol=1e-6)


def test_import_symbolic_dims_take_the_given_shape() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"], symbolic=True)
    graph = import_model(m, {"x": (5, 2)})
    assert graph.value("y").shape == (5, 2)


def test_import_symbolic_dims_without_shape_is_an_error() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"], symbolic=True)
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == "input 'x' has symbolic dimensions (d0, d1): give its sizes"
    assert e.value.hint == "--shape x=D0,D1,... (2 sizes)"


def test_import_shape_of_wrong_rank_is_an_error() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"])
    with pytest.raises(UsageError) as e:
        import_model(m, {"x": (3, 5)})
    assert e.value.message == "--shape x=3,5 does not fit the model's (3, 4)"


def test_import_shape_of_unknown_input_is_an_error() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"])
    with pytest.raises(UsageError) as e:
        import_model(m, {"ids": (3, 4)})
    assert e.value.message == "the model has no input named 'ids'"
    assert e.value.hint == "inputs: x"


def test_import_unsupported_op_names_op_node_and_list() -> None:
    m = model([N("Relu", ["x"], ["r"]), N("Sin", ["r"], ["y"], name="sin_1")], {"x": X}, ["y"])
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == "node 'sin_1': op 'Sin' is not supported"
    assert e.value.hint == "supported ops: " + ", ".join(SUPPORTED)


def test_import_unsupported_op_on_constants_is_folded() -> None:
    m = model([N("Sin", ["c"], ["s"]), N("Add", ["x", "s"], ["y"])], {"x": X}, ["y"],
              {"c": np.float32(0.5)})
    np.testing.assert_allclose(through_ir(m, {"x": X})["y"], X + np.sin(np.float32(0.5)),
                               rtol=1e-6)


def test_import_unsupported_attribute_names_it() -> None:
    m = model([N("Softmax", ["x"], ["y"], name="sm")], {"x": X}, ["y"])
    m.graph.node[0].attribute.append(helper.make_attribute("bogus", 1))
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == "node 'sm' (Softmax): attribute 'bogus' is not supported"
    assert e.value.hint == "attributes of Softmax: axis"


def test_import_reshape_shape_from_data_is_an_error() -> None:
    m = model([N("Cast", ["x"], ["s"], to=TensorProto.INT64),
               N("Reshape", ["x", "s"], ["y"], name="r")], {"x": np.ones(2, np.float32)}, ["y"])
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == ("node 'r' (Reshape): shape ('s') must be a constant: the chip "
                               "has static shapes")


def test_import_old_opset_is_an_error() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"], opset=12)
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == "ONNX opset 12 is not supported"


def test_import_float64_input_is_an_error() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"])
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == "input 'x': element type DOUBLE is not supported on the chip"


def test_import_huge_constant_of_shape_is_refused() -> None:
    m = model([N("ConstantOfShape", ["s"], ["c"], name="big"), N("Add", ["x", "c"], ["y"])],
              {"x": np.ones((1, 1), np.float32)}, ["y"], {"s": np.array([1 << 20, 1 << 20])})
    with pytest.raises(UsageError, match=r"node 'big' \(ConstantOfShape\): would make a "
                                         r"constant of 1099511627776 elements"):
        import_model(m, {})


def test_parse_shapes_reads_names_and_sizes() -> None:
    assert parse_shapes(["input_ids=1,16", "m=3"]) == {"input_ids": (1, 16), "m": (3,)}


@pytest.mark.parametrize("spec", ["x", "x=", "=3", "x=1,a", "x=0,2", "x=-1"])
def test_parse_shapes_bad_spec_is_an_error(spec: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_shapes([spec])
    assert e.value.message == f"bad --shape {spec!r}"


def test_load_missing_file_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as e:
        load_onnx(tmp_path / "none.onnx")
    assert e.value.message == f"cannot read {tmp_path / 'none.onnx'}: No such file or directory"


def test_load_truncated_file_is_a_load_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cut.onnx"
    path.write_bytes((FIXTURES / "tiny_bert.onnx").read_bytes()[:1000])
    with pytest.raises(LoadError) as e:
        load_onnx(path)
    assert e.value.message == (f"{path}: not an ONNX model (the protobuf does not parse: Error "
                               f"parsing message with type 'onnx.ModelProto': Wire format was "
                               f"corrupt)")


def test_load_text_file_is_a_load_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.onnx"
    path.write_text("hello")
    with pytest.raises(LoadError, match=r"not an ONNX model"):
        load_onnx(path)


def test_import_without_onnx_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    with pytest.raises(UsageError) as e:
        load_onnx(FIXTURES / "tiny_bert.onnx")
    assert e.value.message == "the ONNX front end needs the onnx package"
    assert e.value.hint == "pip install 'lpu-emu[onnx]'"


@pytest.mark.parametrize("op, inits", [
    ("Tile", {"t": np.ones((4, 4), np.float32), "r": np.array([1 << 12, 1 << 12])}),
    ("Range", {"a": np.float32(0), "b": np.float32(1e12), "d": np.float32(1)}),
])
def test_import_huge_folded_result_is_refused(op: str, inits: dict) -> None:
    m = model([N(op, list(inits), ["c"], name="big"), N("Relu", ["x"], ["y"])],
              {"x": X}, ["y"], inits)
    with pytest.raises(UsageError, match=rf"error: node 'big' \({op}\): would make a constant "):
        import_model(m, {})


def test_import_input_of_unknown_rank_takes_the_given_shape() -> None:
    m = model([N("Relu", ["x"], ["y"])], {"x": X}, ["y"])
    m.graph.input[0].type.tensor_type.ClearField("shape")
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == "input 'x' has no shape: give its sizes"
    assert import_model(m, {"x": (2, 5)}).value("y").shape == (2, 5)


def test_import_constant_of_shape_from_data_is_an_error() -> None:
    m = model([N("Cast", ["x"], ["s"], to=TensorProto.INT64),
               N("ConstantOfShape", ["s"], ["y"], name="c")], {"x": np.ones(2, np.float32)},
              ["y"])
    with pytest.raises(UsageError) as e:
        import_model(m, {})
    assert e.value.message == ("node 'c' (ConstantOfShape): shape ('s') must be a constant: the "
                               "chip has static shapes")
