"""The ONNX front end: a model file (e.g. from `torch.onnx.export`) -> the compiler's graph IR.

Steps, in order: parse the protobuf, `onnx.checker`, fix every input's shape (symbolic dimensions
from `--shape NAME=D0,D1`), ONNX shape inference (for the element types), then one walk over the
nodes in their (checked) topological order. A node whose inputs are all known constants is folded
right there with onnx's reference evaluator (that is how the Shape -> Gather -> Unsqueeze -> Concat
-> Reshape chains of exports disappear: `Shape` of a static shape is a constant); every other node
is imported into IR ops, one small function per ONNX op (`IMPORTERS`). The chip has static shapes
only, so operands that ONNX takes as tensors but that fix a shape (Reshape's shape, Slice's starts,
the axes of Squeeze/Unsqueeze/Reduce*, Split's sizes, Expand's shape) must be constants at import.
Pattern fusions run afterwards (onnx_passes.py). The `onnx` package is imported lazily: it is an
install extra, and the rest of lpu-emu does not need it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lpu_emu.compiler.graph import Graph, Node, Value
from lpu_emu.compiler.shapes import infer
from lpu_emu.errors import LoadError, UsageError

OPSETS = range(13, 22)  # default-domain opsets the importer knows (13 moved axes to inputs)

# Ops the importer maps onto the chip (the list). Any other op is accepted only where its
# inputs are all constants, because then it is folded away at import and never reaches the chip.
SUPPORTED = (
    "Abs", "Add", "Cast", "Concat", "Constant", "ConstantOfShape", "Div", "Equal", "Erf", "Exp",
    "Expand", "Flatten", "Gather", "Gelu", "Gemm", "Identity", "LayerNormalization", "MatMul",
    "Mul", "Neg", "Pow", "Reciprocal", "ReduceMax", "ReduceMean", "ReduceSum", "Relu", "Reshape",
    "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh",
    "Transpose", "Unsqueeze", "Where",
)

# Element types a graph value may have on the chip, ONNX TensorProto code -> IR dtype.
DTYPES = {1: "fp32", 7: "int64", 6: "int32", 9: "bool"}
DTYPE_NAMES = "FLOAT (float32), INT64, INT32, BOOL"

# (op, input position) of the operands that fix a shape: they must be constants at import; the
# backend binds graph inputs found here from the arrays it is given (node test cases feed them so).
STATIC_OPERANDS = {
    "Reshape": (1,), "Expand": (1,), "Slice": (1, 2, 3, 4), "Split": (1,), "Squeeze": (1,),
    "Unsqueeze": (1,), "ReduceMean": (1,), "ReduceSum": (1,), "ReduceMax": (1,),
    "ConstantOfShape": (0,), "Tile": (1,), "Range": (0, 1, 2),
}

# A folded constant may not hold more elements than this: a model is not allowed to make the
# importer allocate without bound (ConstantOfShape of a huge shape). 2^26 float32 = 256 MiB, far
# above any weight matrix the emulated chip's SRAM (lp30: 230 MB) could hold.
MAX_CONSTANT_ELEMENTS = 1 << 26
# Ops never folded even with constant inputs: their result is not a function of their inputs.
UNFOLDABLE = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Bernoulli", "Multinomial")

Shape = tuple[int, ...]
Importer = Callable[["_Import", Any], None]


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise UsageError("the ONNX front end needs the onnx package",
                         hint="pip install 'lpu-emu[onnx]'") from None
    return onnx


# ---- reading and checking a file ----

def parse_shapes(specs: Iterable[str]) -> dict[str, Shape]:
    """`NAME=D0,D1,...` strings (the CLI's --shape) -> {name: dims}."""
    shapes: dict[str, Shape] = {}
    for spec in specs:
        name, eq, dims = spec.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
        except ValueError:
            shape = (-1,)
        if not eq or not name or not shape or any(d <= 0 for d in shape):
            raise UsageError(f"bad --shape {spec!r}",
                             hint="NAME=D0,D1,... with positive sizes, e.g. input_ids=1,16")
        shapes[name] = shape
    return shapes


def model_from_bytes(data: bytes, where: str = "<bytes>", base_dir: str | Path | None = None
                     ) -> Any:
    """Parse and check a serialized ModelProto; anything malformed is a LoadError. Weights kept
    in external files (the dynamo exporter's default) are read from `base_dir`."""
    onnx = _onnx()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError and, on some inputs, others
        raise LoadError(f"{where}: not an ONNX model (the protobuf does not parse: "
                        f"{_first_line(e)})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise LoadError(f"{where}: not an ONNX model (it has no graph, or a graph without "
                        f"nodes)")
    _load_external_data(onnx, model, where, base_dir)
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # ValidationError, and C++ errors surfaced as others
        raise LoadError(f"{where}: invalid ONNX model: {_first_line(e)}") from None
    return model


def _load_external_data(onnx: Any, model: Any, where: str, base_dir: str | Path | None) -> None:
    from onnx import external_data_helper as ext

    tensors = [t for t in ext._get_all_tensors(model) if ext.uses_external_data(t)]
    if not tensors:
        return
    if base_dir is None:
        raise LoadError(f"{where}: the model keeps its weights in external files",
                        hint="load it from its path, beside those files")
    try:
        ext.load_external_data_for_model(model, str(base_dir))
    except Exception as e:  # a missing or short file, a path outside base_dir
        raise LoadError(f"{where}: cannot read its external weights: {_first_line(e)}") \
            from None


def read_model(path: str | Path) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    return model_from_bytes(data, str(path), Path(path).parent)


def load_onnx(path: str | Path, shapes: dict[str, Shape] | None = None) -> Graph:
    """An ONNX file -> a checked, fused Graph whose inputs and outputs keep the model's names."""
    return import_model(read_model(path), shapes or {}, name=Path(path).stem)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


# ---- the import ----

def import_model(model: Any, shapes: dict[str, Shape] | None = None, *,
                 constants: dict[str, np.ndarray] | None = None, name: str = "",
                 fuse: bool = True) -> Graph:
    """A checked ModelProto -> Graph. `constants` binds graph inputs to fixed arrays (the
    backend's static operands); `fuse` runs the pattern fusions of onnx_passes."""
    from lpu_emu.compiler.frontends import onnx_passes

    onnx = _onnx()
    opset = _opset(model)
    shapes = dict(shapes or {})
    constants = dict(constants or {})
    model = _with_static_inputs(onnx, model, shapes, constants)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                  data_prop=True)
    except Exception as e:  # InferenceError, or a C++ error for broken types
        raise LoadError(f"ONNX shape inference failed: {_first_line(e)}") from None
    imp = _Import(onnx, model, opset, shapes, constants)
    graph = imp.run(name or model.graph.name or "onnx")
    return onnx_passes.run_all(graph) if fuse else onnx_passes.prune(graph)


def _opset(model: Any) -> int:
    """The model's default-domain opset. A newer one than OPSETS is accepted when every op the
    model uses has, at that opset, the signature it had at the newest known one (the same
    inputs, outputs and attributes: later versions of these ops only added element types)."""
    version = None
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            version = entry.version
    hint = (f"opsets {OPSETS.start} to {OPSETS.stop - 1}; re-export with "
            f"torch.onnx.export(..., opset_version=17)")
    if version is None or version < OPSETS.start:
        raise UsageError(f"ONNX opset {version} is not supported", hint=hint)
    if version >= OPSETS.stop:
        for op in sorted({n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}):
            if not _same_signature(op, version, OPSETS.stop - 1):
                raise UsageError(f"ONNX opset {version} is not supported: {op} changed after "
                                 f"opset {OPSETS.stop - 1}", hint=hint)
    return version


def _same_signature(op: str, version: int, known: int) -> bool:
    defs = _onnx().defs
    try:
        new, old = defs.get_schema(op, version), defs.get_schema(op, known)
    except Exception:  # SchemaError: the op does not exist at one of the two versions
        return False
    return ([i.name for i in new.inputs] == [i.name for i in old.inputs]
            and [o.name for o in new.outputs] == [o.name for o in old.outputs]
            and set(new.attributes) == set(old.attributes))


def real_inputs(model: Any) -> list[Any]:
    """The graph inputs a caller must feed (older exports also list initializers as inputs)."""
    init = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in init]


def static_inputs(model: Any) -> list[str]:
    """Graph inputs that feed a shape-fixing operand (STATIC_OPERANDS): a caller binds them to
    their arrays (`import_model(constants=...)`), since the chip's shapes are fixed."""
    names = {i.name for i in real_inputs(model)}
    found: list[str] = []
    for node in model.graph.node:
        for pos in STATIC_OPERANDS.get(node.op_type, ()):
            if pos < len(node.input) and node.input[pos] in names and \
                    node.input[pos] not in found:
                found.append(node.input[pos])
    return found


def _with_static_inputs(onnx: Any, model: Any, shapes: dict[str, Shape],
                        constants: dict[str, np.ndarray]) -> Any:
    """A copy of the model whose inputs all have fixed sizes, bound inputs as initializers."""
    inputs = {i.name: i for i in real_inputs(model)}
    for name in list(shapes) + list(constants):
        if name not in inputs:
            raise UsageError(f"the model has no input named {name!r}",
                             hint=f"inputs: {', '.join(inputs) or '(none)'}")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for name, arr in constants.items():
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(arr), name))
    for inp in model.graph.input:
        if inp.name not in inputs or inp.name in constants:
            continue
        given = shapes.get(inp.name)
        if not inp.type.tensor_type.HasField("shape"):  # rank unknown: the sizes say it
            if given is None:
                raise UsageError(f"input {inp.name!r} has no shape: give its sizes",
                                 hint=f"--shape {inp.name}=D0,D1,...")
            for g in given:
                inp.type.tensor_type.shape.dim.add().dim_value = g
            continue
        dims = inp.type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in dims]
        if given is None:
            symbolic = [d for d in declared if not isinstance(d, int) or d <= 0]
            if symbolic:
                raise UsageError(f"input {inp.name!r} has symbolic dimensions "
                                 f"({', '.join(map(str, declared))}): give its sizes",
                                 hint=f"--shape {inp.name}=D0,D1,... ({len(declared)} sizes)")
            continue
        if len(given) != len(declared) or any(isinstance(d, int) and d > 0 and d != g
                                              for d, g in zip(declared, given, strict=True)):
            raise UsageError(f"--shape {inp.name}={','.join(map(str, given))} does not fit the "
                             f"model's ({', '.join(map(str, declared))})")
        for d, g in zip(dims, given, strict=True):
            d.Clear()
            d.dim_value = g
    return model


class _Import:
    """One walk over the model's nodes, folding constants and emitting IR nodes."""

    def __init__(self, onnx: Any, model: Any, opset: int, shapes: dict[str, Shape],
                 constants: dict[str, np.ndarray]) -> None:
        self.onnx = onnx
        self.model = model
        self.opset = opset
        self.consts: dict[str, np.ndarray] = {}  # ONNX name -> folded value
        self.values: dict[str, Value] = {}  # IR values
        self.ir_consts: dict[str, np.ndarray] = {}
        self.nodes: list[Node] = []
        self.alias: dict[str, str] = {}  # ONNX name -> IR value computing it (Identity)
        self.elem: dict[str, int] = {}  # ONNX element types after shape inference
        self.node: Any = None  # the ONNX node being imported (for messages and names)
        self._taken: set[str] = set()
        g = model.graph
        for vi in [*g.input, *g.value_info, *g.output]:
            self.elem[vi.name] = vi.type.tensor_type.elem_type
            self._taken.add(vi.name)
        for n in g.node:
            self._taken.update(n.output)
        for t in g.initializer:
            self.consts[t.name] = self._checked(onnx.numpy_helper.to_array(t), t.name)
        self.inputs: list[str] = []
        for inp in real_inputs(model):
            dims = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
            dtype = self.dtype_of(inp.name, what=f"input {inp.name!r}")
            if any(d <= 0 for d in dims):
                raise UsageError(f"input {inp.name!r} has a dimension of size 0: {dims}",
                                 hint="the chip computes on tensors of positive sizes")
            self.values[inp.name] = Value(inp.name, dims, dtype)
            self.inputs.append(inp.name)

    # ---- names, shapes, dtypes ----
    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self._taken or name in self.values:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def dtype_of(self, name: str, what: str = "") -> str:
        code = self.elem.get(name, 0)
        if code not in DTYPES:
            label = self.onnx.TensorProto.DataType.Name(code) if code else "unknown"
            raise UsageError(f"{what or self.where()}: element type {label} is not supported "
                             f"on the chip", hint=f"types: {DTYPE_NAMES}")
        return DTYPES[code]

    def shape(self, name: str) -> Shape:
        name = self.alias.get(name, name)
        if name in self.values:
            return self.values[name].shape
        return tuple(self.consts[name].shape)

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def ir(self, name: str) -> str:
        """The IR value for an ONNX value, making a folded constant an IR constant on demand."""
        name = self.alias.get(name, name)
        if name in self.values:
            return name
        arr = self.consts[name]
        kind = arr.dtype.kind
        dtype = "bool" if kind == "b" else "int64" if kind in "iu" else "fp32"
        if kind not in "biuf":
            raise UsageError(f"{self.where()}: constant {name!r} of type {arr.dtype} is not "
                             f"supported on the chip", hint=f"types: {DTYPE_NAMES}")
        cast = {"bool": np.bool_, "int64": np.int64, "fp32": np.float32}[dtype]
        if any(d <= 0 for d in arr.shape):
            raise UsageError(f"{self.where()}: constant {name!r} is empty {arr.shape}",
                             hint="the chip computes on tensors of positive sizes")
        self.ir_consts[name] = arr.astype(cast)
        self.values[name] = Value(name, tuple(arr.shape), dtype)
        return name

    def where(self) -> str:
        n = self.node
        return f"node {n.name!r} ({n.op_type})" if n is not None else "model"

    def fail(self, message: str, hint: str | None = None) -> UsageError:
        return UsageError(f"{self.where()}: {message}", hint=hint)

    def _checked(self, arr: np.ndarray, name: str) -> np.ndarray:
        if arr.size > MAX_CONSTANT_ELEMENTS:
            raise UsageError(f"constant {name!r} has {arr.size} elements, more than the "
                             f"{MAX_CONSTANT_ELEMENTS} the importer holds")
        return arr

    # ---- emitting IR ----
    def emit(self, op: str, inputs: list[str], out: str | None = None, dtype: str = "",
             **attrs: Any) -> str:
        """Add one IR node on IR value names; returns its output's name."""
        out = out or self.fresh(f"{self.node.output[0] or self.node.op_type}/{op.lower()}")
        self._taken.add(out)
        return self.emit_multi(op, inputs, [out], dtype, **attrs)[0]

    def emit_multi(self, op: str, inputs: list[str], outs: list[str], dtype: str = "",
                   **attrs: Any) -> list[str]:
        base = self.node.name or self.node.output[0] or self.node.op_type
        node = Node(op, tuple(inputs), tuple(outs), tuple(sorted(attrs.items())),
                    name=self.fresh(f"{base}#{len(self.nodes)}"))
        try:
            shapes = infer(node, [self.values[i].shape for i in inputs])
        except UsageError as e:  # the message names the IR node; ours names the ONNX one
            raise self.fail(e.message.split("): ", 1)[-1]) from None
        dtype = dtype or self.values[inputs[0]].dtype
        for o, s in zip(outs, shapes, strict=True):
            if any(d <= 0 for d in s):
                raise self.fail(f"output {o!r} is empty {s}",
                                hint="the chip computes on tensors of positive sizes")
            self.values[o] = Value(o, tuple(int(d) for d in s), dtype)
        self.nodes.append(node)
        return outs

    def out_dtype(self, k: int = 0) -> str:
        return self.dtype_of(self.node.output[k])

    # ---- the walk ----
    def run(self, name: str) -> Graph:
        for node in self.model.graph.node:
            self.node = node
            if node.domain not in ("", "ai.onnx"):
                raise UsageError(f"node {node.name!r}: op {node.op_type!r} of domain "
                                 f"{node.domain!r} is not supported",
                                 hint=f"supported ops (default domain): {', '.join(SUPPORTED)}")
            if self._foldable(node):
                self._fold(node)
                continue
            importer = IMPORTERS.get(node.op_type)
            if importer is None:
                raise UsageError(f"node {node.name!r}: op {node.op_type!r} is not supported",
                                 hint=f"supported ops: {', '.join(SUPPORTED)}")
            importer(self, node)
        self.node = None
        return self._finish(name)

    def _foldable(self, node: Any) -> bool:
        if node.op_type in UNFOLDABLE:
            return False
        if node.op_type in ("Shape", "Size"):
            return True  # every shape is static
        return all(i in self.consts for i in node.input if i)

    def _fold(self, node: Any) -> None:
        attrs = _attrs(self.onnx, node)
        if node.op_type in ("Shape", "Size"):
            dims = np.array(self.shape(node.input[0]), dtype=np.int64)
            n = len(dims)
            start = attrs.get("start", 0)
            end = attrs.get("end", n)
            value = dims[slice(start, end)] if node.op_type == "Shape" else np.int64(dims.prod())
            self.consts[node.output[0]] = np.asarray(value, dtype=np.int64)
            return
        feeds = {i: self.consts[i] for i in node.input if i}
        size = _folded_size(node.op_type, feeds, [i for i in node.input])
        if size > MAX_CONSTANT_ELEMENTS:
            raise self.fail(f"would make a constant of {size:.0f} elements, more than the "
                            f"{MAX_CONSTANT_ELEMENTS} the importer holds")
        try:
            from onnx.reference import ReferenceEvaluator
            outs = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception as e:  # the reference evaluator's errors have no common base
            raise self.fail(f"constant folding failed: {_first_line(e)}") from None
        for o, v in zip(node.output, outs, strict=False):
            if o:
                self.consts[o] = self._checked(np.asarray(v), o)

    def _finish(self, name: str) -> Graph:
        outputs = []
        for out in self.model.graph.output:
            o = out.name
            self.node = _Named(o)
            if o in self.consts and o not in self.values:  # a folded output: copied out
                self.consts[self.fresh(f"{o}/const")] = self.consts.pop(o)
                self.alias[o] = next(reversed(self.consts))
            src = self.ir(o) if o in self.alias else o
            if src != o:
                self.emit("Reshape", [src], o, shape=self.values[src].shape)
            self.node = None
            outputs.append(o)
        return Graph(name, dict(self.values), tuple(self.inputs), tuple(outputs),
                     tuple(self.nodes), dict(self.ir_consts)).check()


def _folded_size(op: str, feeds: dict[str, np.ndarray], inputs: list[str]) -> float:
    """The element count of a folded result, for the ops whose result size is set by an
    operand's values rather than its size (checked before they allocate); 0 for the rest."""
    def operand(pos: int) -> np.ndarray:
        return feeds[inputs[pos]].astype(np.float64).reshape(-1)

    if op == "ConstantOfShape" and inputs:
        return float(np.prod(np.maximum(operand(0), 1)))
    if op == "Expand" and len(inputs) > 1:
        return float(np.prod(np.maximum(operand(1), 1))) * feeds[inputs[0]].size
    if op == "Tile" and len(inputs) > 1:
        return float(np.prod(np.maximum(operand(1), 1))) * feeds[inputs[0]].size
    if op == "Range" and len(inputs) == 3:
        start, limit, delta = (float(operand(k)[0]) for k in range(3))
        return abs((limit - start) / delta) if delta else 0.0
    return 0.0


class _Named:
    """Stands in for an ONNX node when the importer adds a node of its own (output copies)."""

    def __init__(self, output: str) -> None:
        self.name = f"output {output}"
        self.op_type = "Identity"
        self.output = [output]


def _attrs(onnx: Any, node: Any) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


# ---- one importer per ONNX op ----

def _accept(imp: _Import, node: Any, allowed: tuple[str, ...] = ()) -> dict[str, Any]:
    attrs = _attrs(imp.onnx, node)
    for key in attrs:
        if key not in allowed:
            raise imp.fail(f"attribute {key!r} is not supported",
                           hint=f"attributes of {node.op_type}: {', '.join(allowed) or '(none)'}")
    return attrs


def _static(imp: _Import, node: Any, pos: int, what: str) -> np.ndarray | None:
    """A shape-fixing operand: absent (None) or a constant; anything else is an error."""
    if pos >= len(node.input) or not node.input[pos]:
        return None
    value = imp.const(node.input[pos])
    if value is None:
        raise imp.fail(f"{what} ({node.input[pos]!r}) must be a constant: the chip has static "
                       f"shapes", hint="it may be computed from shapes and initializers, "
                                       "which are folded at import")
    return value


def _float_in(imp: _Import, node: Any, names: Iterable[str]) -> list[str]:
    """IR names for inputs of an arithmetic op: float32 only (integer math is folded)."""
    out = []
    for n in names:
        v = imp.ir(n)
        if imp.values[v].dtype != "fp32":
            raise imp.fail(f"input {n!r} is {imp.values[v].dtype}: arithmetic on the chip is "
                           f"float32", hint="integer arithmetic is supported where it can be "
                                            "folded (constant inputs)")
        out.append(v)
    return out


def _alias(imp: _Import, onnx_name: str, ir_name: str) -> None:
    imp.alias[onnx_name] = imp.alias.get(ir_name, ir_name)


def _unary(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    imp.emit(node.op_type, _float_in(imp, node, node.input[:1]), node.output[0])


def _binary(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    imp.emit(node.op_type, _float_in(imp, node, node.input[:2]), node.output[0])


def _equal(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    imp.emit("Equal", [imp.ir(i) for i in node.input[:2]], node.output[0], dtype="bool")


def _where(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    imp.emit("Where", [imp.ir(i) for i in node.input[:3]], node.output[0],
             dtype=imp.out_dtype())


def _pow(imp: _Import, node: Any) -> None:
    """x ** c with a constant exponent becomes the ops the chip has (Mul, Sqrt, Reciprocal)."""
    _accept(imp, node)
    x, e = node.input[:2]
    exp = imp.const(e)
    out = node.output[0]
    xs = imp.shape(x)
    if exp is not None and exp.size and np.all(exp == exp.flat[0]) and \
            np.broadcast_shapes(xs, exp.shape) == xs:
        c = float(exp.flat[0])
        (xv,) = _float_in(imp, node, [x])
        if c == 1.0:
            _alias(imp, out, xv)
            return
        if c == 2.0:
            imp.emit("Mul", [xv, xv], out)
            return
        if c == 3.0:
            imp.emit("Mul", [imp.emit("Mul", [xv, xv]), xv], out)
            return
        if c == 0.5:
            imp.emit("Sqrt", [xv], out)
            return
        if c == -1.0:
            imp.emit("Reciprocal", [xv], out)
            return
        if c == -0.5:
            imp.emit("Reciprocal", [imp.emit("Sqrt", [xv])], out)
            return
    (xv,) = _float_in(imp, node, [x])
    ev = imp.ir(e)
    if imp.values[ev].dtype != "fp32":  # an integer exponent: the chip's Pow is float32
        ev = imp.emit("Cast", [ev], dtype="fp32", to="fp32")
    imp.emit("Pow", [xv, ev], out)


def _matmul(imp: _Import, node: Any) -> None:
    """ONNX MatMul is numpy's: 1-D operands get a unit axis, removed again afterwards."""
    _accept(imp, node)
    a, b = _float_in(imp, node, node.input[:2])
    sa, sb = imp.values[a].shape, imp.values[b].shape
    if len(sa) >= 2 and len(sb) >= 2:
        imp.emit("MatMul", [a, b], node.output[0])
        return
    if len(sa) == 1:
        a = imp.emit("Reshape", [a], shape=(1, sa[0]))
    if len(sb) == 1:
        b = imp.emit("Reshape", [b], shape=(sb[0], 1))
    full = imp.values[imp.emit("MatMul", [a, b])]
    shape = list(full.shape)
    if len(sb) == 1:
        shape.pop(-1)
    if len(sa) == 1:
        shape.pop(-1 if len(sb) == 1 else -2)
    imp.emit("Reshape", [full.name], node.output[0], shape=tuple(shape))


def _gemm(imp: _Import, node: Any) -> None:
    """alpha * A' B' + beta * C: a MatMul with bias, scales folded into constants where they
    can be, else a Mul."""
    attrs = _accept(imp, node, ("alpha", "beta", "transA", "transB"))
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    a, b = _float_in(imp, node, node.input[:2])
    trans = {"trans_a": int(attrs.get("transA", 0)), "trans_b": int(attrs.get("transB", 0))}
    c_name = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    bias = None
    if c_name and beta != 0.0:
        c = imp.const(c_name)
        if c is not None:
            if beta != 1.0:
                c_name = imp.fresh(f"{c_name}*beta")
                imp.consts[c_name] = (c * beta).astype(c.dtype)
            (bias,) = _float_in(imp, node, [c_name])
        else:
            (bias,) = _float_in(imp, node, [c_name])
            if beta != 1.0:
                bias = imp.emit("Mul", [bias, _scalar(imp, beta)])
    out = node.output[0]
    if alpha == 1.0:
        imp.emit("MatMul", [a, b] + ([bias] if bias else []), out, **trans)
        return
    prod = imp.emit("Mul", [imp.emit("MatMul", [a, b], **trans), _scalar(imp, alpha)],
                    None if bias else out)
    if bias:
        imp.emit("Add", [prod, bias], out)


def _scalar(imp: _Import, value: float) -> str:
    name = imp.fresh(f"{imp.node.output[0]}/const")
    imp.consts[name] = np.array(value, dtype=np.float32)
    return imp.ir(name)


def _softmax(imp: _Import, node: Any) -> None:
    """The IR's Softmax works on the last axis; another axis is moved there and back."""
    attrs = _accept(imp, node, ("axis",))
    (x,) = _float_in(imp, node, node.input[:1])
    rank = len(imp.values[x].shape)
    axis = _axis(imp, attrs.get("axis", -1), rank)
    if axis == rank - 1:
        imp.emit("Softmax", [x], node.output[0])
        return
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    moved = imp.emit("Softmax", [imp.emit("Transpose", [x], perm=tuple(perm))])
    imp.emit("Transpose", [moved], node.output[0], perm=tuple(perm))


def _axis(imp: _Import, axis: int, rank: int) -> int:
    if not -max(rank, 1) <= axis < max(rank, 1):
        raise imp.fail(f"axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def _layernorm(imp: _Import, node: Any) -> None:
    """LayerNormalization over the trailing axes from `axis`; more than one is flattened."""
    attrs = _accept(imp, node, ("axis", "epsilon", "stash_type"))
    x, *params = _float_in(imp, node, [i for i in node.input[:3] if i])
    shape = imp.values[x].shape
    axis = _axis(imp, attrs.get("axis", -1), len(shape))
    eps = float(attrs.get("epsilon", 1e-5))
    if any(node.output[1:]):
        _layernorm_stats(imp, node, x, params, axis, eps)
        return
    if axis == len(shape) - 1:
        imp.emit("LayerNormalization", [x, *params], node.output[0], epsilon=eps)
        return
    inner = math.prod(shape[axis:])
    flat = imp.emit("Reshape", [x], shape=(*shape[:axis], inner))
    flat_params = []
    for p in params:
        ps = imp.values[p].shape
        full = imp.emit("Expand", [p], shape=shape[axis:]) if ps != shape[axis:] else p
        flat_params.append(imp.emit("Reshape", [full], shape=(inner,)))
    y = imp.emit("LayerNormalization", [flat, *flat_params], epsilon=eps)
    imp.emit("Reshape", [y], node.output[0], shape=shape)


def _layernorm_stats(imp: _Import, node: Any, x: str, params: list[str], axis: int,
                     eps: float) -> None:
    """LayerNormalization whose Mean and InvStdDev outputs are read: written out in IR ops."""
    axes = tuple(range(axis, len(imp.values[x].shape)))
    outs = list(node.output) + ["", ""]
    mean = imp.emit("ReduceMean", [x], outs[1] or None, axes=axes, keepdims=1)
    d = imp.emit("Sub", [x, mean])
    var = imp.emit("ReduceMean", [imp.emit("Mul", [d, d])], axes=axes, keepdims=1)
    inv = imp.emit("Reciprocal", [imp.emit("Sqrt", [imp.emit("Add", [var, _scalar(imp, eps)])])],
                   outs[2] or None)
    y = imp.emit("Mul", [d, inv], None if len(params) > 1 else outs[0])
    if params:
        y = imp.emit("Mul", [y, params[0]], None if len(params) > 1 else outs[0])
    if len(params) > 1:
        imp.emit("Add", [y, params[1]], outs[0])


def _reduce(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("axes", "keepdims", "noop_with_empty_axes"))
    (x,) = _float_in(imp, node, node.input[:1])
    rank = len(imp.values[x].shape)
    axes = attrs.get("axes")
    if axes is None:
        given = _static(imp, node, 1, "axes")
        axes = [] if given is None else given.tolist()
    if not axes and attrs.get("noop_with_empty_axes", 0):
        _alias(imp, node.output[0], x)
        return
    axes = sorted({_axis(imp, int(a), rank) for a in axes})
    imp.emit(node.op_type, [x], node.output[0], axes=tuple(axes),
             keepdims=int(attrs.get("keepdims", 1)))


def _reshape_to(imp: _Import, node: Any, shape: Iterable[int]) -> None:
    imp.emit("Reshape", [imp.ir(node.input[0])], node.output[0],
             shape=tuple(int(d) for d in shape))


def _reshape(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("allowzero",))
    target = [int(d) for d in _static(imp, node, 1, "shape")]
    src = imp.shape(node.input[0])
    if not attrs.get("allowzero", 0):
        target = [src[i] if d == 0 and i < len(src) else d for i, d in enumerate(target)]
    if target.count(-1) > 1 or any(d < -1 for d in target):
        raise imp.fail(f"shape {target} is not a valid Reshape target")
    if -1 in target:
        rest = math.prod(d for d in target if d != -1)
        target[target.index(-1)] = math.prod(src) // rest if rest else 0
    if math.prod(target) != math.prod(src):
        raise imp.fail(f"cannot reshape {src} to {tuple(target)}")
    _reshape_to(imp, node, target)


def _flatten(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("axis",))
    src = imp.shape(node.input[0])
    axis = attrs.get("axis", 1)
    if not -len(src) <= axis <= len(src):
        raise imp.fail(f"axis {axis} is out of range for rank {len(src)}")
    axis += len(src) if axis < 0 else 0
    _reshape_to(imp, node, (math.prod(src[:axis]), math.prod(src[axis:])))


def _squeeze(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    src = imp.shape(node.input[0])
    given = _static(imp, node, 1, "axes")
    axes = ({_axis(imp, int(a), len(src)) for a in given.tolist()} if given is not None
            else {i for i, d in enumerate(src) if d == 1})
    if any(src[a] != 1 for a in axes):
        raise imp.fail(f"cannot squeeze axes {sorted(axes)} of {src}: not of size 1")
    _reshape_to(imp, node, [d for i, d in enumerate(src) if i not in axes])


def _unsqueeze(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    src = imp.shape(node.input[0])
    rank = len(src) + len(_static(imp, node, 1, "axes"))
    axes = {_axis(imp, int(a), rank) for a in _static(imp, node, 1, "axes").tolist()}
    it = iter(src)
    _reshape_to(imp, node, [1 if i in axes else next(it) for i in range(rank)])


def _identity(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    _alias(imp, node.output[0], imp.ir(node.input[0]))


def _transpose(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("perm",))
    x = imp.ir(node.input[0])
    perm = tuple(attrs.get("perm", ())) or tuple(reversed(range(len(imp.values[x].shape))))
    imp.emit("Transpose", [x], node.output[0], perm=tuple(int(p) for p in perm))


def _concat(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("axis",))
    xs = [imp.ir(i) for i in node.input if i and math.prod(imp.shape(i)) > 0]
    axis = _axis(imp, attrs["axis"], len(imp.values[xs[0]].shape))
    imp.emit("Concat", xs, node.output[0], axis=axis)


def _split(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("axis", "num_outputs"))
    x = imp.ir(node.input[0])
    shape = imp.values[x].shape
    axis = _axis(imp, attrs.get("axis", 0), len(shape))
    given = _static(imp, node, 1, "split")
    n = len(node.output)
    if given is not None:
        sizes = [int(s) for s in given]
    elif "num_outputs" in attrs:
        chunk = -(-shape[axis] // attrs["num_outputs"])  # opset 18: the last chunk is smaller
        sizes = [min(chunk, shape[axis] - k * chunk) for k in range(attrs["num_outputs"])]
    else:
        sizes = [shape[axis] // n] * n
    if len(sizes) != n or sum(sizes) != shape[axis]:
        raise imp.fail(f"split {sizes} does not cut axis {axis} ({shape[axis]}) into {n} parts")
    outs = [o or imp.fresh(f"{node.output[0]}/unused") for o in node.output]
    imp.emit_multi("Split", [x], outs, axis=axis, split=tuple(sizes))


def _slice(imp: _Import, node: Any) -> None:
    """One IR Slice per sliced axis (start, end, step normalized as numpy does; ONNX clamps the
    same way)."""
    _accept(imp, node)
    x = imp.ir(node.input[0])
    shape = imp.values[x].shape
    starts = _static(imp, node, 1, "starts")
    ends = _static(imp, node, 2, "ends")
    axes = _static(imp, node, 3, "axes")
    steps = _static(imp, node, 4, "steps")
    axes = list(range(len(starts))) if axes is None else axes.tolist()
    steps = [1] * len(starts) if steps is None else steps.tolist()
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise imp.fail("starts, ends, axes and steps differ in length")
    cuts = []
    for s, e, a, st in zip(starts.tolist(), ends.tolist(), axes, steps, strict=True):
        a = _axis(imp, int(a), len(shape))
        if st == 0:
            raise imp.fail("a step of 0")
        start, end, step = slice(int(s), int(e), int(st)).indices(shape[a])
        if step < 0 and end < 0:
            end = -shape[a] - 1  # numpy's "before index 0" when walking backwards
        if (start, end, step) != slice(None).indices(shape[a]):
            cuts.append((a, start, end, step))
    if not cuts:
        _alias(imp, node.output[0], x)
        return
    for k, (a, start, end, step) in enumerate(cuts):
        last = k == len(cuts) - 1
        x = imp.emit("Slice", [x], node.output[0] if last else None, axis=a, start=start,
                     end=end, step=step)


def _gather(imp: _Import, node: Any) -> None:
    """Embedding lookup (the IR's Gather); a constant scalar index is a Slice and a Reshape."""
    attrs = _accept(imp, node, ("axis",))
    data, idx_name = imp.ir(node.input[0]), node.input[1]
    shape = imp.values[data].shape
    axis = _axis(imp, attrs.get("axis", 0), len(shape))
    idx = imp.const(idx_name)
    if idx is not None and idx.ndim == 0:
        i = int(idx) % shape[axis] if -shape[axis] <= int(idx) < shape[axis] else None
        if i is None:
            raise imp.fail(f"index {int(idx)} is outside axis {axis} ({shape[axis]})")
        part = imp.emit("Slice", [data], axis=axis, start=i, end=i + 1, step=1)
        imp.emit("Reshape", [part], node.output[0],
                 shape=tuple(d for k, d in enumerate(shape) if k != axis))
        return
    ind = imp.ir(idx_name)
    if imp.values[ind].dtype not in ("int64", "int32"):
        raise imp.fail(f"indices {idx_name!r} must be integers")
    imp.emit("Gather", [data, ind], node.output[0], axis=axis)


_CAST_TO = {1: "fp32", 7: "int64", 6: "int32", 9: "bool"}


def _cast(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("to", "saturate"))
    to = attrs["to"]
    if to not in _CAST_TO:
        raise imp.fail(f"attribute to={imp.onnx.TensorProto.DataType.Name(to)} is not "
                       f"supported", hint=f"to: {DTYPE_NAMES}")
    x = imp.ir(node.input[0])
    if imp.values[x].dtype == _CAST_TO[to]:
        _alias(imp, node.output[0], x)
        return
    imp.emit("Cast", [x], node.output[0], dtype=_CAST_TO[to], to=_CAST_TO[to])


def _expand(imp: _Import, node: Any) -> None:
    _accept(imp, node)
    x = imp.ir(node.input[0])
    target = _static(imp, node, 1, "shape")
    src = imp.values[x].shape
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(src, tuple(int(d) for d in target)))
    except ValueError:
        raise imp.fail(f"{src} does not expand to {tuple(target.tolist())}") from None
    if out == src:
        _alias(imp, node.output[0], x)
        return
    imp.emit("Expand", [x], node.output[0], shape=out)


def _gelu(imp: _Import, node: Any) -> None:
    attrs = _accept(imp, node, ("approximate",))
    approx = attrs.get("approximate", "none")
    if approx not in ("none", "tanh"):
        raise imp.fail(f"attribute approximate={approx!r} is not supported",
                       hint="approximate: none, tanh")
    imp.emit("Gelu", _float_in(imp, node, node.input[:1]), node.output[0], approximate=approx)


def _constant_of_shape(imp: _Import, node: Any) -> None:
    """Reached only when its shape operand is not a constant (else it was folded)."""
    _static(imp, node, 0, "shape")


IMPORTERS: dict[str, Importer] = {
    **{op: _unary for op in ("Abs", "Erf", "Exp", "Neg", "Reciprocal", "Relu", "Sigmoid",
                             "Sqrt", "Tanh")},
    **{op: _binary for op in ("Add", "Sub", "Mul", "Div")},
    "Pow": _pow, "Equal": _equal, "Where": _where, "MatMul": _matmul, "Gemm": _gemm,
    "Softmax": _softmax, "LayerNormalization": _layernorm,
    "ReduceMean": _reduce, "ReduceSum": _reduce, "ReduceMax": _reduce,
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Identity": _identity, "Transpose": _transpose, "Concat": _concat, "Split": _split,
    "Slice": _slice, "Gather": _gather, "Cast": _cast, "Expand": _expand, "Gelu": _gelu,
    "ConstantOfShape": _constant_of_shape,
}
