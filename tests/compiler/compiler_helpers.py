"""Shared by tests/compiler: the error bound of each precision mode, random inputs, and the checks
that compile a graph, run it on a core and compare every output with the float64 evaluation.

The error measure is the issue's: max |chip - numpy| / max |numpy| over an output. Every run goes
through `Compiled.run`, which raises if the core reports any schedule violation, so every check
here is also a check that the program is violation-free.

Bounds (TOL): fp32 1e-4, bf16 and fp16 2e-2 are the issue's. int8 and fp8 are this suite's:
- int8 (weights per output column and activations per tensor, symmetric, 127 levels; int32
  accumulation; products of two activations stay bf16): 5e-2. Rounding to 127 levels is an error
  of up to 1/254 of each operand's range; measured worst case over the per-op tests 1.4e-2 (a
  matmul of standard normal data), BERT layer 1.6e-2, GPT prefill 2.4e-2 and decode 3.2e-2 (one
  token row quantized with a per-tensor scale calibrated on standard normal inputs).
- fp8 (e4m3, 3 mantissa bits, on both operands of every matmul, fp32 accumulation): 0.15. One
  rounding is a relative error of up to 2^-4, a product of two rounded operands up to ~2^-3;
  measured worst case 0.12 (4-head attention: the scores' error goes through exp), 0.07 for a
  plain matmul, BERT layer 0.045, GPT prefill and decode 0.047.
"""

from __future__ import annotations

import os

import numpy as np

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.evaluate import evaluate
from lpu_emu.compiler.graph import Graph
from lpu_emu.compiler.pipeline import Compiled, compile_graph

SLOW = os.environ.get("LPU_SLOW") == "1"
MODES = ("fp32", "bf16", "fp16", "int8", "fp8")
CHIP = "lp30"  # fp8 is an lp30 mode; tsp-v1 has its own tests
TOL = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 2e-2, "int8": 5e-2, "fp8": 0.15}


def rel_err(got: np.ndarray, ref: np.ndarray, floor: float = 0.0) -> float:
    """max |got - ref| / max(max |ref|, floor) (ref all zero and no floor: the absolute
    error)."""
    ref = np.asarray(ref, dtype=np.float64)
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, floor)
    err = float(np.abs(np.asarray(got, dtype=np.float64) - ref).max())
    return err / scale if scale > 0 else err


def random_inputs(graph: Graph, seed: int = 0, domains: dict | None = None
                  ) -> dict[str, np.ndarray]:
    """float32 inputs: standard normal, or uniform in domains[name] = (low, high); a negative
    low with a positive high... is just uniform. A domain (low, high, "signed") draws
    |x| in [low, high) with a random sign (divisors away from zero)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in graph.inputs:
        shape = graph.value(name).shape
        dom = (domains or {}).get(name)
        if dom is None:
            x = rng.standard_normal(shape)
        elif len(dom) == 3:
            x = rng.uniform(dom[0], dom[1], shape) * rng.choice((-1.0, 1.0), shape)
        else:
            x = rng.uniform(dom[0], dom[1], shape)
        out[name] = x.astype(np.float32)
    return out


def check(graph: Graph, inputs: dict[str, np.ndarray], mode: str, engine: str = "fast",
          chip: str = CHIP, tol: float | None = None) -> dict[str, float]:
    """Compile, run (violation-free), compare every output with evaluate within the mode's
    bound; return the errors."""
    got = compile_graph(graph, chip, mode).run(inputs, engine=engine)
    return compare(graph, inputs, got, mode, tol)


def compare(graph: Graph, inputs: dict[str, np.ndarray], got: dict[str, np.ndarray], mode: str,
            tol: float | None = None, floor: float = 0.0) -> dict[str, float]:
    ref = evaluate(graph, inputs)
    bound = TOL[mode] if tol is None else tol
    errs = {}
    assert set(got) == set(ref)
    for name, want in ref.items():
        assert got[name].shape == want.shape, name
        assert np.all(np.isfinite(got[name])), f"{name}: non-finite values ({mode})"
        errs[name] = rel_err(got[name], want, floor)
        assert errs[name] <= bound, f"{name}: error {errs[name]:.3g} > {bound:g} ({mode})"
    return errs


def both_cores(graph: Graph, inputs: dict[str, np.ndarray], mode: str, chip: str = CHIP,
               calibration: dict[str, np.ndarray] | None = None
               ) -> tuple[Compiled, dict[str, np.ndarray]]:
    """Run one compiled program on the fast core and on the reference interpreter; their
    outputs must be identical, bit for bit. `calibration`: int8 scales from these inputs."""
    compiled = compile_graph(graph, chip, mode, calibration=calibration)
    fast = compiled.run(inputs, engine="fast")
    ref = compiled.run(inputs, engine="reference")
    for name in fast:
        np.testing.assert_array_equal(fast[name].view(np.uint32), ref[name].view(np.uint32),
                                      err_msg=name)
    return compiled, fast


def single(op: str, shapes: dict[str, tuple[int, ...]], consts: dict | None = None,
           **attrs) -> Graph:
    """A graph of one node: inputs of the given shapes (in order), then constants."""
    b = GraphBuilder(op.lower())
    names = [b.input(n, s) for n, s in shapes.items()]
    names += [b.constant(n, v) for n, v in (consts or {}).items()]
    b.output(b.op(op, names, **attrs), "y")
    return b.build()
