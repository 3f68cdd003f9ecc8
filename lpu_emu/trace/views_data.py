"""Views of data at one cycle: a stream value, SRAM rows, a tensor, as dtype-aware lane grids.

int8/int32 show as integers, fp8e4m3/fp16/bf16/fp32 as numbers, `hex` as the raw little-endian
bits of each element. SRAM and tensors are shown before this cycle (as a Read issued now sees
them) and after it (with the writes landing now); a changed lane is marked `*` and bold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from lpu_emu.core import plan as P
from lpu_emu.core.tensors import _locations
from lpu_emu.numerics import STORAGE, from_planes, from_storage
from lpu_emu.program import Tensor
from lpu_emu.spec.encoding import stream_text
from lpu_emu.trace.breakpoints import tensor_keys
from lpu_emu.trace.model import Traced

LANES_SHOWN = 64  # lanes shown when no `lanes A..B` is given (the rest are counted)
DIGITS = {"fp32": 6, "fp16": 4, "bf16": 3, "fp8e4m3": 3}


def decode(planes: np.ndarray, dtype: str) -> np.ndarray:
    """[n, width, lanes] bytes to [n, lanes] values (ints, or floats as fp32)."""
    return np.asarray(from_storage(from_planes(planes, dtype), dtype))


def cells(planes: np.ndarray, dtype: str, fmt: str | None) -> list[list[str]]:
    """The text of every element of [n, width, lanes] planes, in `fmt` (None: the dtype)."""
    if fmt == "hex":
        w = planes.shape[1]
        stored = from_planes(planes, {1: "int8", 2: "fp16", 4: "int32"}[w])
        bits = stored.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[w])
        return [[f"{int(b):0{2 * w}x}" for b in row] for row in bits.tolist()]
    values = decode(planes, dtype)
    if dtype in ("int8", "int32"):
        return [[str(v) for v in row] for row in values.tolist()]
    d = DIGITS[dtype]
    return [[f"{v:.{d}g}" for v in row] for row in values.tolist()]


def lane_range(opts: dict, lanes: int) -> tuple[int, int]:
    a, b = opts.get("lanes", (0, min(lanes, LANES_SHOWN) - 1))
    return max(0, a), min(lanes - 1, b)


@dataclass
class LaneGrid:
    """Lane values in rows: `lane N |` then the cells, a changed cell followed by `*`."""

    values: list[str]  # one per lane, lanes first..first+len-1
    first: int
    changed: np.ndarray | None = None
    total: int | None = None  # lanes in all (to say how many are not shown)
    cell: int = 0  # at least this wide (so a before and an after grid line up)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cell = max([self.cell - 1, *(len(v) for v in self.values)]) + 1
        per = max(4, (options.max_width - 11) // (cell + 1))
        per = per - per % 4 if per >= 8 else per
        for j in range(0, len(self.values), per):
            line = Text(f"  lane {self.first + j:>3} |")
            for k, v in enumerate(self.values[j:j + per]):
                hit = self.changed is not None and bool(self.changed[j + k])
                line.append(f"{v:>{cell}}" + ("*" if hit else " "), style="bold" if hit else "")
            yield line
        shown_last = self.first + len(self.values) - 1
        if self.total is not None and (self.first > 0 or shown_last < self.total - 1):
            yield Text(f"  (lanes {self.first}..{shown_last} of 0..{self.total - 1}; "
                       f"`lanes A..B` shows others)")


@dataclass
class StreamView:
    """The value passing a stream group at a position at this cycle, with its producer."""

    t: Traced
    cycle: int
    code: int
    position: int
    place: str  # how the user named the position
    opts: dict

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t, idx = self.t, self.t.index
        name = f"{stream_text(self.code)} at {self.place}"
        head = idx.stream_value(self.cycle, self.code, self.position)
        if head is None:
            yield Text(f"{name}: nothing passes at cycle {self.cycle}")
            return
        tag = t.dtype_names.get(int(head[3]), "int8")
        width = STORAGE[tag].itemsize
        rows, missing = [], []
        for k in range(width):
            r = idx.stream_value(self.cycle, self.code + k, self.position)
            if r is None:
                missing.append(stream_text(self.code + k))
            rows.append(r)
        src = int(head[2])
        new = "placed now" if int(head[6]) == self.cycle else f"placed at cycle {int(head[6])}"
        yield Text(f"{name}: {tag} from {t.queue_name(int(t.plan.issues[src, P.QUEUE]))} "
                   f"{t.mnemonic(src)} at position {int(head[5])}, {new} ({t.where(src)})")
        if missing:
            yield Text(f"  the {tag} group also needs {', '.join(missing)}, which carry nothing "
                       "here: showing the first stream's bytes as int8")
            tag, rows = "int8", rows[:1]
        planes = np.stack([idx.log.value(int(r[4])) for r in rows])[None]
        before = self._before(len(rows))
        fmt = self.opts.get("as")
        dtype = tag if fmt in (None, "hex") else fmt
        if STORAGE[dtype].itemsize != len(rows):
            yield Text(f"  cannot show a {len(rows)}-stream value as {dtype}")
            return
        a, b = lane_range(self.opts, idx.lanes)
        text = cells(planes, dtype, fmt)[0][a:b + 1]
        changed = None
        if before is not None:
            changed = (planes[0] != before).any(axis=0)[a:b + 1]
            if changed.any():
                yield Text("  lanes marked * differ from the value here one cycle before")
        yield LaneGrid(text, a, changed, idx.lanes)

    def _before(self, width: int) -> np.ndarray | None:
        idx = self.t.index
        rows = [idx.stream_value(self.cycle - 1, self.code + k, self.position)
                for k in range(width)]
        if any(r is None for r in rows):
            return None
        return np.stack([idx.log.value(int(r[4])) for r in rows])


def tensor_at(t: Traced, tensor: Tensor, vectors: np.ndarray, cycle: int | None) -> np.ndarray:
    """[len(vectors), width, lanes] image of some vectors of a tensor at a cycle."""
    planes = []
    for unit, addrs in _locations(t.chip, tensor):
        planes.append([t.index.sram_row(unit, tensor.bank, int(a), cycle)
                       for a in addrs[vectors].tolist()])
    return np.array(planes, dtype=np.uint8).transpose(1, 0, 2)


@dataclass
class TensorView:
    """Vectors of a tensor before and after this cycle (default: those a write changes now, else
    the first two)."""

    t: Traced
    cycle: int
    tensor: Tensor
    rows: tuple[int, int] | None
    opts: dict

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t, x = self.t, self.tensor
        n, cols = x.vectors(), x.shape[-1]
        if self.rows is not None:
            lo, hi = self.rows
            if not 0 <= lo <= hi < n:
                yield Text(f"tensor {x.name} has vectors 0..{n - 1}, not {lo}..{hi}")
                return
            vectors = np.arange(lo, hi + 1)
        else:
            vectors = self._changed(n)
            if not len(vectors):
                vectors = np.arange(min(n, 2))
        before = tensor_at(t, x, vectors, self.cycle)
        after = tensor_at(t, x, vectors, self.cycle + 1)
        fmt = self.opts.get("as")
        dtype = x.dtype if fmt in (None, "hex") else fmt
        if dtype != x.dtype:
            yield Text(f"tensor {x.name} is {x.dtype}; `as` takes hex or {x.dtype}")
            return
        a, b = lane_range(self.opts, cols)
        shape = "x".join(map(str, x.shape))
        yield Text(f"tensor {x.name} ({x.dtype}, {shape}) in {', '.join(x.slices)} bank {x.bank}"
                   f" from address {x.addr}")
        cb, ca = cells(before, dtype, fmt), cells(after, dtype, fmt)
        for k, v in enumerate(vectors.tolist()):
            diff = (before[k] != after[k]).any(axis=0)[a:b + 1]
            label = f"[{v}]" if n > 1 else ""
            if diff.any():
                yield Text(f"{x.name}{label} before cycle {self.cycle}:")
                cell = max(len(v) for v in cb[k][a:b + 1] + ca[k][a:b + 1]) + 1
                yield LaneGrid(cb[k][a:b + 1], a, None, None, cell)
                yield Text(f"{x.name}{label} after cycle {self.cycle} "
                           f"({int(diff.sum())} lanes changed, marked *):", style="bold")
                yield LaneGrid(ca[k][a:b + 1], a, diff, cols, cell)
            else:
                yield Text(f"{x.name}{label} at cycle {self.cycle} (unchanged by this cycle):")
                yield LaneGrid(ca[k][a:b + 1], a, None, cols)

    def _changed(self, n: int) -> np.ndarray:
        keys = tensor_keys(self.t, self.tensor.name)
        now = np.isin(keys, self.t.index.written_keys(self.cycle))
        return np.unique(np.flatnonzero(now) % n)[:4]


@dataclass
class SramView:
    """SRAM rows of one slice and bank, before and after this cycle (int8 by default: a row is
    one byte plane; `as hex` or `as fp8e4m3` too)."""

    t: Traced
    cycle: int
    unit: int
    bank: int
    first: int
    last: int
    opts: dict

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = self.t
        fmt = self.opts.get("as")
        dtype = "int8" if fmt in (None, "hex") else fmt
        if dtype not in ("int8", "fp8e4m3"):
            yield Text(f"an SRAM row is one byte plane: show it as int8, fp8e4m3 or hex, or use "
                       f"`show tensor` for {dtype} values")
            return
        a, b = lane_range(self.opts, t.index.lanes)
        name = t.mem_name(self.unit)
        for addr in range(self.first, self.last + 1):
            before = t.index.sram_row(self.unit, self.bank, addr, self.cycle)
            after = t.index.sram_row(self.unit, self.bank, addr, self.cycle + 1)
            diff = (before != after)[a:b + 1]
            where = f"{name} {self.bank}:{addr}"
            cb = cells(before[None, None], dtype, fmt)[0][a:b + 1]
            ca = cells(after[None, None], dtype, fmt)[0][a:b + 1]
            if diff.any():
                yield Text(f"{where} before cycle {self.cycle}:")
                cell = max(len(v) for v in cb + ca) + 1
                yield LaneGrid(cb, a, None, None, cell)
                yield Text(f"{where} after cycle {self.cycle} ({int(diff.sum())} lanes changed, "
                           "marked *):", style="bold")
                yield LaneGrid(ca, a, diff, t.index.lanes, cell)
            else:
                yield Text(f"{where} at cycle {self.cycle} (unchanged by this cycle):")
                yield LaneGrid(ca, a, None, t.index.lanes)
