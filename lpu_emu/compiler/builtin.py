"""The built-in layers of `lpu compile --builtin` and `lpu demo`: a BERT encoder layer and a GPT
decoder layer (prefill, or one decode step against a KV cache in SRAM) with seeded random weights,
compiled, and checked against the float64 numpy reference.

The defaults are issue 7's sizes: BERT d=384, 12 heads, d_ff=1536, seq 128; GPT d=512, 8 heads,
d_ff=2048, seq 64. `ERROR_BOUNDS` is the accuracy each precision mode is held to (max abs error /
max abs value of the outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.layers import bert_encoder_layer, gpt_decoder_layer, random_weights
from lpu_emu.compiler.pipeline import Compiled, compile_graph
from lpu_emu.compiler.precision import MODES
from lpu_emu.compiler.session import GptLayer, Session
from lpu_emu.compiler.target import Target
from lpu_emu.errors import UsageError


@dataclass(frozen=True)
class Defaults:
    d_model: int
    heads: int
    d_ff: int
    seq: int


BUILTINS = {
    "bert-layer": Defaults(d_model=384, heads=12, d_ff=1536, seq=128),
    "gpt-layer": Defaults(d_model=512, heads=8, d_ff=2048, seq=64),
}
# what `lpu demo` compiles: issue 7's BERT layer at seq 128 in bf16; measured (docs/design.md
# section 16), it adds ~2 s to the demo, seq 16 would save only ~0.2 s of that
DEMO = {"name": "bert-layer", "seq": 128, "dtype": "bf16"}
# max abs error / max abs value against float64 numpy (issue 7: fp32 1e-4, bf16/fp16 2e-2;
# int8 and fp8: the errors measured on the built-in layers with margin, docs/compiler.md)
ERROR_BOUNDS = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 2e-2, "int8": 5e-2, "fp8": 1e-1}


def check_choice(option: str, value: str, allowed) -> str:
    """`value` if it is one of `allowed`, else a UsageError naming the option and the values."""
    allowed = list(allowed)
    if value not in allowed:
        raise UsageError(f"{option} {value!r} is not one of: {', '.join(allowed)}")
    return value


@dataclass
class Built:
    """A built-in layer compiled: the program to report (`compiled`) and how to check it."""

    name: str
    compiled: Compiled
    weights: dict[str, np.ndarray]
    seq: int
    heads: int
    decode: bool
    seed: int
    layer: GptLayer | None = None

    def inputs(self) -> dict[str, np.ndarray]:
        """Seeded standard normal activations: the layer's input (for decode: the prompt's and
        the new token's)."""
        d = self.weights["wq"].shape[0]
        return layer_inputs(d, self.seq, self.decode, self.seed)

    def check(self, engine: str = "fast") -> tuple[float, float]:
        """Run on a core and compare with numpy: (max abs error, max abs value) of `y`."""
        inputs = self.inputs()
        if self.decode:
            assert self.layer is not None
            _, steps = self.layer.run(inputs["x_prompt"], inputs["x_step"], Session(engine))
            got = steps[0]
            prefill = evaluate(gpt_decoder_layer(self.weights, self.seq, self.heads),
                               {"x": inputs["x_prompt"]})
            want = evaluate(gpt_decoder_layer(self.weights, 1, self.heads, past=self.seq),
                            {"x": inputs["x_step"], "k_cache": prefill["k"],
                             "v_cache": prefill["v"]})["y"]
        else:
            got = self.compiled.run(inputs, engine)["y"]
            want = evaluate(self.compiled.graph, inputs)["y"]
        return float(np.abs(got - want).max()), float(np.abs(want).max())


def layer_inputs(d: int, seq: int, decode: bool, seed: int) -> dict[str, np.ndarray]:
    """The inputs `--run` checks with: standard normal, seed + 1 (the weights take seed)."""
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((seq, d)).astype(np.float32)
    if not decode:
        return {"x": x}
    return {"x_prompt": x, "x_step": rng.standard_normal((1, d)).astype(np.float32)}


def _check_fits(target: Target, d: int, d_ff: int, seq: int) -> None:
    """Refuse a layer whose weights alone (one byte each, the smallest MXM dtype) or whose
    input (four bytes a value) exceed the chip's SRAM, before allocating anything."""
    weights = 4 * d * d + 2 * d * d_ff
    sram = target.chip.sram_bytes
    if weights > sram or 4 * seq * d > sram:
        raise UsageError(f"a layer of d_model {d}, d_ff {d_ff} and seq {seq} does not fit in "
                         f"{target.chip.name}'s SRAM ({sram:,} bytes)")


def build(name: str, *, seq: int | None = None, decode: bool = False, heads: int | None = None,
          d_model: int | None = None, d_ff: int | None = None, dtype: str = "fp32",
          chip: str | None = None, seed: int = 0) -> Built:
    """Compile a built-in layer (None: the layer's default)."""
    check_choice("--builtin", name, BUILTINS)
    check_choice("--dtype", dtype, MODES)
    if decode and name != "gpt-layer":
        raise UsageError("--decode is a gpt-layer option (a decode step against a KV cache)")
    base = BUILTINS[name]
    seq = base.seq if seq is None else seq
    heads = base.heads if heads is None else heads
    d = base.d_model if d_model is None else d_model
    d_ff = base.d_ff if d_ff is None else d_ff
    for option, value in (("--seq", seq), ("--heads", heads), ("--d-model", d),
                          ("--d-ff", d_ff)):
        if value < 1:
            raise UsageError(f"{option} must be at least 1, not {value}")
    if d % heads:
        raise UsageError(f"--d-model {d} is not a multiple of --heads {heads}")
    _check_fits(Target.of(chip), d, d_ff, seq)
    weights = random_weights(d, d_ff, seed)
    # int8 activation scales are calibrated on the very inputs --run checks with, so the check
    # measures the compiled arithmetic, not how well other inputs predict these ones' ranges
    calibration = layer_inputs(d, seq, False, seed) if dtype == "int8" else None
    if name == "bert-layer":
        compiled = compile_graph(bert_encoder_layer(weights, seq, heads), chip, dtype,
                                 calibration=calibration)
        return Built(name, compiled, weights, seq, heads, False, seed)
    if not decode:
        compiled = compile_graph(gpt_decoder_layer(weights, seq, heads), chip, dtype,
                                 calibration=calibration)
        return Built(name, compiled, weights, seq, heads, False, seed)
    layer = GptLayer(weights, seq, 1, heads, chip, dtype)
    return Built(name, layer.decode[0], weights, seq, heads, True, seed, layer)


def within(error: tuple[float, float], dtype: str) -> bool:
    """max abs error <= the mode's bound x max abs value."""
    return error[0] <= ERROR_BOUNDS[dtype] * error[1]


def describe(built: Built) -> str:
    """`BERT encoder layer, d 384, 12 heads, d_ff 1536, seq 16` (weights: random, `built.seed`)."""
    d, d_ff = built.weights["w1"].shape
    what = {"bert-layer": "BERT encoder layer", "gpt-layer": "GPT decoder layer"}[built.name]
    tokens = f"decode step, cache {built.seq}" if built.decode else f"seq {built.seq}"
    return f"{what}, d {d}, {built.heads} heads, d_ff {d_ff}, {tokens}"
