"""The example programs in programs/ and what each must compute, as numpy statements.

`lpu demo` and the tests run every example and compare its outputs with `expected`, computed
from the example's own input tensors. The statements are written independently of the core: they
are numpy's reading of what each program's header comment says it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Tensors = Callable[[str], np.ndarray]  # name -> the tensor's values after the run


def programs_dir() -> Path:
    """programs/ shipped in the wheel as lpu_emu/_programs, or the source checkout's."""
    here = Path(__file__).resolve().parent
    shipped = here / "_programs"
    return shipped if shipped.is_dir() else here.parent / "programs"


@dataclass(frozen=True)
class Example:
    name: str
    outputs: tuple[str, ...]
    expected: Callable[[Tensors], dict[str, np.ndarray]]

    @property
    def path(self) -> Path:
        return programs_dir() / f"{self.name}.lpu"


def _mxm4(t: Tensors) -> dict[str, np.ndarray]:
    out = {}
    for i, plane in enumerate(("W0", "W1", "E0", "E1")):
        w = np.zeros((320, 320), np.int64)
        for j in range(16):  # row 16g + j lives in tensor w<plane>_<j> at address g
            w[j::16] = t(f"w{plane}_{j}")
        out[f"y{i}"] = t(f"x{i}").astype(np.int64) @ w
    return out


def _vecadd(t: Tensors) -> dict[str, np.ndarray]:
    return {"z": (t("x").astype(np.int16) + t("y")).astype(np.int8)}  # int8 wraps


def _matvec(t: Tensors) -> dict[str, np.ndarray]:
    return {"y": t("x").astype(np.int64) @ t("W").astype(np.int64)}


def _gelu(t: Tensors) -> dict[str, np.ndarray]:
    x = t("x").astype(np.float32)
    f32 = np.float32
    a = x * x
    b = a * x
    d = b * f32(0.044715) + x
    e = d * f32(0.7978845608)
    f = np.tanh(e.astype(np.float64)).astype(np.float32)
    return {"y": ((f + f32(1.0)) * x) * f32(0.5)}


def _transpose(t: Tensors) -> dict[str, np.ndarray]:
    rows = np.stack([t(f"r{n}") for n in range(16)])  # [j, 16k + i]
    out = rows.reshape(16, -1, 16).transpose(2, 1, 0).reshape(16, -1)  # [i, 16k + j]
    return {f"t{i}": out[i] for i in range(16)}


def _repeat(t: Tensors) -> dict[str, np.ndarray]:
    x = t("x").astype(np.int16)
    return {"y": (np.maximum(x, 0) + 3).astype(np.int8)}


def _sync(t: Tensors) -> dict[str, np.ndarray]:
    x, y = t("x").astype(np.int64), t("y").astype(np.int64)
    return {"z": (2 * x - y).astype(np.int32)}  # int32 wraps


EXAMPLES = (
    Example("vecadd", ("z",), _vecadd),
    Example("matvec", ("y",), _matvec),
    Example("gelu", ("y",), _gelu),
    Example("transpose", tuple(f"t{i}" for i in range(16)), _transpose),
    Example("repeat", ("y",), _repeat),
    Example("sync", ("z",), _sync),
    Example("mxm4", ("y0", "y1", "y2", "y3"), _mxm4),
)


def check(example: Example, tensors: Tensors) -> list[str]:
    """Mismatches between a run's outputs and the expected values (empty: all equal, bitwise)."""
    problems = []
    for name, want in example.expected(tensors).items():
        got = tensors(name)
        want = np.asarray(want).astype(got.dtype)
        if got.shape != want.shape:
            problems.append(f"{name}: shape {got.shape}, expected {want.shape}")
        elif not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
            bad = int(np.argmax(got.reshape(-1) != want.reshape(-1)))
            problems.append(
                f"{name}: element {bad} is {got.reshape(-1)[bad]}, expected {want.reshape(-1)[bad]}"
            )
    return problems
