"""Tensors, their data and lane maps: from directives to placed tensors and SRAM segments.

Layout (design.md section 4): a tensor of dtype d and shape (..., k) has n = prod(shape[:-1])
vectors of width(d) byte planes. In one slice, vector i plane p sits at ADDR + i*width + p; spread
over a range of width(d) MEM slices (in the order written, `MEM_W0..MEM_W3` = W0, W1, W2, W3),
plane p of vector i sits in the p-th slice at ADDR + i. Data becomes one Segment per slice of the
tensor, that slice's vectors in address order; `.hex` is those segments' bytes concatenated in
slice order (exactly what the disassembler writes).

Chosen details: float `.values` round to the dtype like C (overflow gives inf, or NaN for
fp8e4m3) while integer values outside the dtype's range are errors; a `.npy` for an integer
tensor must hold integers; whitespace inside `.hex` strings is ignored and several strings
concatenate.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpu_emu.asm.diag import Where, did_you_mean, error
from lpu_emu.asm.expr import Expr, FloatValue, Value, float_bits
from lpu_emu.asm.floats import f32_bits_to_float, int_to_f32_bits
from lpu_emu.asm.operands import Context, PlacedTensor, check_bank_addr, ctx_lookup
from lpu_emu.files import FileRefused, load_npy, npy_header, within
from lpu_emu.numerics import to_planes
from lpu_emu.program import Segment
from lpu_emu.spec import DType

INT_RANGES = {"int8": (-(1 << 7), (1 << 7) - 1), "int32": (-(1 << 31), (1 << 31) - 1)}


@dataclass
class TensorDecl:
    name: str
    name_where: Where
    dtype: DType
    shape: list[Expr]
    first: tuple[str, Where]
    last: tuple[str, Where] | None
    range_where: Where
    bank: Expr
    addr: Expr


@dataclass
class DataDecl:
    kind: str  # "values" | "npy" | "hex"
    name: str
    name_where: Where
    where: Where  # the directive
    values: list[Value] = field(default_factory=list)
    path: str = ""
    directory: Path = Path(".")
    strings: list[tuple[str, Where]] = field(default_factory=list)


@dataclass
class LaneMapDecl:
    name: str
    where: Where
    entries: list[Expr]


def place_tensor(ctx: Context, decl: TensorDecl, placed: list[PlacedTensor]) -> PlacedTensor:
    """Check a .tensor against the preset and the tensors before it; return its placement."""
    chip = ctx.chip
    shape = []
    for e in decl.shape:
        v = ctx.eval(e)
        if v < 1:
            raise error(e.where, f"a tensor dimension must be at least 1, got {v}")
        shape.append(v)
    if shape[-1] > chip.lanes:
        raise error(decl.shape[-1].where, f"the last dimension ({shape[-1]}) exceeds the "
                    f"{chip.lanes} lanes of {chip.name}",
                    "the last dimension runs across the lanes; reshape so it is at most "
                    f"{chip.lanes}")
    slices = _slices(ctx, decl)
    width = decl.dtype.width
    bank, addr = ctx.eval(decl.bank), ctx.eval(decl.addr)
    check_bank_addr(ctx, bank, addr, decl.bank.where, decl.addr.where)
    n = math.prod(shape[:-1])
    extent = n if len(slices) > 1 else n * width
    addrs = int(chip.p("mem_addresses_per_bank"))
    if addr + extent > addrs:
        raise error(decl.name_where, f"tensor '{decl.name}' does not fit in bank {bank}: it needs "
                    f"{extent} addresses from {addr}, past the last address {addrs - 1}")
    for p in placed:
        common = [s for s in slices if s in p.slices]
        if p.bank == bank and common and addr < p.addr + p.extent and p.addr < addr + extent:
            raise error(decl.name_where, f"tensor '{decl.name}' overlaps tensor '{p.name}' in "
                        f"{common[0]} bank {bank}: addresses {addr}..{addr + extent - 1} and "
                        f"{p.addr}..{p.addr + p.extent - 1}", f"'{p.name}' is defined at {p.where}")
    return PlacedTensor(decl.name, decl.dtype, tuple(shape), slices, bank, addr, extent,
                        decl.name_where)


def _slice(ctx: Context, name: str, where: Where, tensor: str):
    chip = ctx.chip
    s = next((s for s in chip.slices if s.name == name.upper()), None)
    if s is None:
        mems = [m.name for m in chip.mem_slices]
        raise error(where, f"unknown MEM slice '{name}' on {chip.name}",
                    did_you_mean(name, mems, fold_case=True))
    if s.kind != "MEM":
        raise error(where, f"tensor '{tensor}' must be placed in MEM slices; {s.name} is a "
                    f"{s.kind} queue")
    return s


def _slices(ctx: Context, decl: TensorDecl) -> tuple[str, ...]:
    first = _slice(ctx, decl.first[0], decl.first[1], decl.name)
    if decl.last is None:
        return (first.name,)
    last = _slice(ctx, decl.last[0], decl.last[1], decl.name)
    step = 1 if last.index >= first.index else -1
    names = []
    for i in range(first.index, last.index + step, step):
        s = ctx.chip.slices[i]
        if s.kind != "MEM":
            raise error(decl.range_where, f"the range {first.name}..{last.name} crosses {s.name}, "
                        "which is not a MEM slice")
        names.append(s.name)
    width = decl.dtype.width
    if len(names) != width:
        raise error(decl.range_where, f"a spread {decl.dtype.name} tensor needs {width} MEM "
                    f"slice(s), one per byte plane; {first.name}..{last.name} has {len(names)}",
                    f"or place it in one slice: {first.name}")
    return tuple(names)


def lanemap_values(ctx: Context, decl: LaneMapDecl) -> tuple[int, ...]:
    lanes = ctx.chip.lanes
    if len(decl.entries) > lanes:
        raise error(decl.entries[lanes].where, f"lane map '{decl.name}' has {len(decl.entries)} "
                    f"entries; {ctx.chip.name} has {lanes} lanes")
    values = []
    for e in decl.entries:
        v = ctx.eval(e)
        if not -1 <= v < lanes:
            raise error(e.where, f"lane {v} is out of range: {ctx.chip.name} has {lanes} lanes "
                        f"(0..{lanes - 1}, or -1 for a zero lane)")
        values.append(v)
    return tuple(values + [-1] * (lanes - len(values)))


def tensor_segments(ctx: Context, t: PlacedTensor, data: DataDecl) -> list[Segment]:
    """The SRAM segments holding a tensor's data (one per slice of the tensor)."""
    lanes = ctx.chip.lanes
    n = math.prod(t.shape[:-1])
    if data.kind == "hex":
        image = _hex_image(t, data, n * t.dtype.width * lanes, lanes)
        if len(t.slices) == 1:
            chunks = [image]
        else:
            size = n * lanes
            chunks = [image[p * size : (p + 1) * size] for p in range(len(t.slices))]
    else:
        values = (_values(ctx, t, data) if data.kind == "values"
                  else _npy(t, data, getattr(ctx, "sandbox", None)))
        with np.errstate(over="ignore", invalid="ignore"):  # float overflow rounds to inf/NaN
            planes = to_planes(values.reshape(n, t.shape[-1]), t.dtype.name, lanes)
        if len(t.slices) == 1:
            chunks = [planes.tobytes()]
        else:
            chunks = [planes[:, p, :].tobytes() for p in range(len(t.slices))]
    return [Segment(s, t.bank, t.addr, chunk) for s, chunk in zip(t.slices, chunks, strict=True)]


def _values(ctx: Context, t: PlacedTensor, data: DataDecl) -> np.ndarray:
    count = math.prod(t.shape)
    if len(data.values) > count:
        raise error(data.values[count].where, f"too many values for tensor '{t.name}': it has "
                    f"{count} elements")
    dtype = t.dtype
    if dtype.kind == "int":
        lo, hi = INT_RANGES[dtype.name]
        out = np.zeros(count, dtype=np.int64)
        for k, v in enumerate(data.values):
            if isinstance(v, FloatValue):
                raise error(v.where, f"tensor '{t.name}' is {dtype.name}: its values must be "
                            "integers")
            x = ctx.eval(v)
            if not lo <= x <= hi:
                raise error(v.where, f"value {x} is out of range for {dtype.name} ({lo}..{hi})")
            out[k] = x
        return out
    lookup = ctx_lookup(ctx)
    if dtype.name == "fp32":  # exact fp32 bits, rounded once from the decimal
        bits = np.zeros(count, dtype=np.uint32)
        for k, v in enumerate(data.values):
            if isinstance(v, FloatValue):
                bits[k] = float_bits(v, lookup)
            else:
                bits[k] = int_to_f32_bits(ctx.eval(v))
        return bits.view(np.float32)
    out = np.zeros(count, dtype=np.float64)
    for k, v in enumerate(data.values):
        if not isinstance(v, FloatValue):
            out[k] = float(ctx.eval(v))
        elif v.kind == "literal":
            out[k] = -float(str(v.payload)) if v.negate else float(str(v.payload))
        else:
            out[k] = f32_bits_to_float(float_bits(v, lookup))
    return out


def _npy(t: PlacedTensor, data: DataDecl, sandbox: Path | None) -> np.ndarray:
    """A .npy's values for tensor t: its header checked (shape, dtype, size) before loading."""
    w = data.strings[0][1] if data.strings else data.where
    path = Path(data.path) if Path(data.path).is_absolute() else data.directory / data.path
    if sandbox is not None and not within(path, sandbox):
        raise error(w, f"'{data.path}' is outside the sandbox {sandbox}",
                    "--sandbox confines .include and .npy files to the program's directory tree")
    try:
        shape, dtype = npy_header(path)
    except FileRefused as exc:
        reason = str(exc)
        if reason.startswith("it is not a .npy file"):
            raise error(w, f"'{data.path}' {reason.removeprefix('it ')}") from None
        raise error(w, f"cannot load '{data.path}': {reason}") from None
    if dtype.kind not in "iuf":
        raise error(w, f"'{data.path}' holds {dtype} data; a tensor needs integers or floats")
    if shape != t.shape:
        raise error(w, f"'{data.path}' has shape {_shape(shape)}; tensor '{t.name}' is "
                    f"{_shape(t.shape)}")
    try:
        arr = load_npy(path)
    except FileRefused as exc:
        raise error(w, f"cannot load '{data.path}': {exc}") from None
    if t.dtype.kind == "int":
        if arr.dtype.kind == "f":
            raise error(w, f"'{data.path}' holds {arr.dtype} values; tensor '{t.name}' is "
                        f"{t.dtype.name}")
        lo, hi = INT_RANGES[t.dtype.name]
        if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
            bad = int(arr.min()) if int(arr.min()) < lo else int(arr.max())
            raise error(w, f"'{data.path}' holds {bad}, out of range for {t.dtype.name} "
                        f"({lo}..{hi})")
        return arr.astype(np.int64).reshape(-1)
    return arr.astype(np.float64 if arr.dtype.kind != "f" else arr.dtype).reshape(-1)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _hex_image(t: PlacedTensor, data: DataDecl, expected: int, lanes: int) -> bytes:
    digits = []
    for text, where in data.strings:
        clean = re.sub(r"\s+", "", text)
        bad = re.search(r"[^0-9A-Fa-f]", clean)
        if bad:
            raise error(where, f"invalid hex digit '{bad.group()}' in .hex data")
        digits.append(clean)
    joined = "".join(digits)
    if len(joined) % 2:
        raise error(data.where, f".hex data for '{t.name}' has an odd number of hex digits "
                    f"({len(joined)})")
    if len(joined) // 2 != expected:
        raise error(data.where, f".hex data for '{t.name}' is {len(joined) // 2} bytes; its SRAM "
                    f"image is {expected} bytes ({expected // lanes} vector(s) of {lanes})")
    return bytes.fromhex(joined)
