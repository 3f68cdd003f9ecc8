"""An ONNX backend (onnx.backend.base.Backend) that runs models on the emulated chip.

    import lpu_emu.onnx_backend as backend
    rep = backend.prepare(model, dtype="fp32", chip="lp30")
    (last_hidden_state,) = rep.run([input_ids, attention_mask])

`prepare` checks the model; the rep compiles (ONNX front end -> compile_graph) at its first
`run`, when the input arrays give the sizes of symbolic dimensions and the values of inputs that
fix shapes (Reshape's shape, Slice's starts, ...: onnx's node test cases feed those as inputs).
Later runs with the same sizes and the same shape-fixing values reuse the compiled program.
Every op runs on the emulated chip: there is no host fallback, so a model the compiler cannot
lower is an error, not a slow path. Outputs come back in the model's order and element types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lpu_emu.compiler.frontends.onnx import _onnx, import_model, real_inputs, static_inputs
from lpu_emu.errors import UsageError

DEVICES = ("CPU",)  # the emulator runs on the host's CPU: that is the device onnx asks about

_onnx()  # this module is the ONNX backend: without onnx, say how to install it
import onnx.backend.base as base  # noqa: E402


class LpuBackendRep(base.BackendRep):
    """A prepared model: compiles per input signature, runs on a fresh emulated chip each run."""

    def __init__(self, model: Any, dtype: str, chip: str, options: dict[str, Any]) -> None:
        self.model = model
        self.dtype = dtype
        self.chip = chip
        self.options = options
        self.input_names = [i.name for i in real_inputs(model)]
        self.static = static_inputs(model)
        self.output_names = [o.name for o in model.graph.output]
        self._compiled: dict[tuple[Any, ...], Any] = {}
        self.output_types = self._output_types()

    def run(self, inputs: Any, **kwargs: Any) -> Any:
        feeds = self._feeds(inputs)
        compiled = self.compiled(feeds)
        outs = compiled.run({k: v for k, v in feeds.items() if k not in self.static})
        values = [np.asarray(outs[o]).astype(self.output_types[o], copy=False)
                  for o in self.output_names]
        return base.namedtupledict("Outputs", self.output_names)(*values)

    def compiled(self, feeds: dict[str, np.ndarray]) -> Any:
        """The compiled program for these inputs' sizes and shape-fixing values (cached)."""
        key = tuple((k, v.shape, v.tobytes() if k in self.static else b"")
                    for k, v in sorted(feeds.items()))
        if key not in self._compiled:
            from lpu_emu.compiler import compile_graph
            graph = import_model(
                self.model, {k: v.shape for k, v in feeds.items() if k not in self.static},
                constants={k: feeds[k] for k in self.static})
            self._compiled[key] = compile_graph(graph, chip=self.chip, dtype=self.dtype,
                                                **self.options)
        return self._compiled[key]

    def _feeds(self, inputs: Any) -> dict[str, np.ndarray]:
        names = self.input_names
        if isinstance(inputs, Mapping):
            missing = [n for n in names if n not in inputs]
            if missing:
                raise UsageError(f"no value for input {missing[0]!r}",
                                 hint=f"inputs: {', '.join(names)}")
            return {n: np.asarray(inputs[n]) for n in names}
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if not isinstance(inputs, Sequence) or len(inputs) != len(names):
            count = len(inputs) if isinstance(inputs, Sequence) else 1
            raise UsageError(f"the model takes {len(names)} inputs, not {count}",
                             hint=f"inputs: {', '.join(names)}")
        return {n: np.asarray(v) for n, v in zip(names, inputs, strict=True)}

    def _output_types(self) -> dict[str, np.dtype]:
        onnx = _onnx()
        inferred = onnx.shape_inference.infer_shapes(self.model)
        known = {v.name: v.type.tensor_type.elem_type
                 for v in [*inferred.graph.value_info, *inferred.graph.output]}
        out = {}
        for name in self.output_names:
            code = known.get(name, 0) or onnx.TensorProto.FLOAT
            out[name] = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code))
        return out


class LpuBackend(base.Backend):
    """onnx.backend.base.Backend for the emulated chip."""

    @classmethod
    def is_compatible(cls, model: Any, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", dtype: str = "fp32",  # type: ignore[override]
                chip: str = "lp30", **options: Any) -> LpuBackendRep:
        onnx = _onnx()
        if not cls.supports_device(device):
            raise UsageError(f"device {device!r} is not supported",
                             hint=f"devices: {', '.join(DEVICES)}")
        if isinstance(model, bytes | str):
            from lpu_emu.compiler.frontends.onnx import model_from_bytes, read_model
            model = model_from_bytes(model) if isinstance(model, bytes) else read_model(model)
        else:
            try:
                onnx.checker.check_model(model)
            except Exception as e:  # ValidationError and C++ errors
                raise UsageError(f"invalid ONNX model: {str(e).strip().splitlines()[0]}") \
                    from None
        return LpuBackendRep(model, dtype, chip, options)

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> Any:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: Any, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[Any, tuple[int, ...]]] | None = None,
                 **kwargs: Any) -> Any:
        """One node as a model of its own (opset_version= picks the opset, default 17)."""
        onnx = _onnx()
        helper = onnx.helper
        opset = int(kwargs.pop("opset_version", 17))
        arrays = [np.asarray(v) for v in (inputs.values() if isinstance(inputs, Mapping)
                                          else inputs)]
        names = [i for i in node.input if i]
        if len(arrays) != len(names):
            raise UsageError(f"node {node.op_type} takes {len(names)} inputs, not {len(arrays)}")
        ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                             a.shape) for n, a in zip(names, arrays, strict=True)]
        outs = []
        for k, o in enumerate(node.output):
            dtype, shape = (outputs_info[k] if outputs_info else (np.float32, None))
            outs.append(helper.make_tensor_value_info(
                o, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape))
        model = helper.make_model(helper.make_graph([node], f"{node.op_type}_node", ins, outs),
                                  opset_imports=[helper.make_opsetid("", opset)])
        rep = LpuBackendRep(model, kwargs.pop("dtype", "fp32"), kwargs.pop("chip", "lp30"),
                            kwargs)
        return rep.run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper() in DEVICES


prepare = LpuBackend.prepare
run_model = LpuBackend.run_model
run_node = LpuBackend.run_node
supports_device = LpuBackend.supports_device
is_compatible = LpuBackend.is_compatible
