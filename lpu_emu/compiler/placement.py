"""Placement: where each tensor lives in SRAM (MEM slices, bank, addresses).

A tensor of R rows and C columns is `chunks = ceil(C / lanes)` column blocks of R vectors; vector
(r, c) is at `addr + c * R + r` (chunk-major, so a pass over one chunk is a run of consecutive
addresses that one Read plus a Repeat covers). Its width(d) byte planes sit in width(d) MEM slices,
plane p in slice p at the same address (docs/design.md section 4), so a whole vector is read in
one cycle. Slices are handed out in groups (`Home`); tensors that one kernel reads together are
kept on different groups by `place` (a kernel reads each slice at most once a cycle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpu_emu.compiler.target import Target
from lpu_emu.errors import UsageError
from lpu_emu.program import Tensor
from lpu_emu.spec import Slice


@dataclass(frozen=True)
class Home:
    """A group of adjacent MEM slices of one hemisphere (width(d) of them are used)."""

    slices: tuple[Slice, ...]

    @property
    def hemisphere(self) -> str:
        return self.slices[0].hemisphere


@dataclass(frozen=True)
class Chunk:
    """Where one column chunk of a tensor lives: its byte-plane slices, bank, first address."""

    slices: tuple[Slice, ...]
    bank: int
    addr: int
    home: int


@dataclass(frozen=True)
class Loc:
    """A placed tensor: chunk c's byte planes in chunks[c].slices, row r at chunks[c].addr + r.
    Each chunk has its own home, so a kernel may read all chunks of a tensor at once."""

    name: str
    dtype: str
    rows: int
    cols: int
    chunks: tuple[Chunk, ...]
    lanes: int
    base: str = ""  # the storage it views (dependencies are tracked per storage)

    def __post_init__(self) -> None:
        if not self.base:
            object.__setattr__(self, "base", self.name)

    def view(self, name: str, row0: int, rows: int) -> Loc:
        """Rows row0 .. row0 + rows - 1 of this tensor, as a tensor of its own name."""
        if row0 < 0 or row0 + rows > self.rows:
            raise ValueError(f"rows {row0}..{row0 + rows} outside {self.name} ({self.rows})")
        chunks = tuple(Chunk(c.slices, c.bank, c.addr + row0, c.home) for c in self.chunks)
        return Loc(name, self.dtype, rows, self.cols, chunks, self.lanes, self.base)

    @property
    def nchunks(self) -> int:
        return len(self.chunks)

    def chunk_cols(self, c: int) -> int:
        return min(self.lanes, self.cols - c * self.lanes)

    def at(self, r: int, c: int) -> int:
        return self.chunks[c].addr + r

    @property
    def vectors(self) -> int:
        return self.rows * self.nchunks

    def homes(self) -> set[int]:
        return {c.home for c in self.chunks}

    def symbols(self) -> list[Tensor]:
        """The program's named tensors: one per chunk (`name.c`) when wider than the lanes."""
        out = []
        for c, ch in enumerate(self.chunks):
            name = self.name if self.nchunks == 1 else f"{self.name}.{c}"
            out.append(Tensor(name, self.dtype, (self.rows, self.chunk_cols(c)),
                              tuple(s.name for s in ch.slices), ch.bank, ch.addr))
        return out


class Memory:
    """A bump allocator per (home, bank); each chunk goes to the emptiest home allowed."""

    def __init__(self, target: Target, group: int = 4) -> None:
        self.target = target
        self.homes: list[Home] = []
        for hemi in ("W", "E"):
            mem = target.mem(hemi)
            self.homes += [Home(mem[i:i + group]) for i in range(0, len(mem) - group + 1, group)]
        self.free = {(h, b): 0 for h in range(len(self.homes)) for b in range(target.banks)}

    def _pick(self, need: int, avoid: set[int]) -> tuple[int, int] | None:
        t = self.target
        best, best_key = None, None
        for (h, b), used in self.free.items():
            if h in avoid or used + need > t.addresses:
                continue
            key = (sum(self.free[(h, k)] for k in range(t.banks)), used, h)
            if best is None or key < best_key:
                best, best_key = (h, b), key
        return best

    def alloc(self, name: str, dtype: str, rows: int, cols: int,
              avoid: set[int] | frozenset[int] = frozenset()) -> Loc:
        """Place a tensor, each chunk on its own home outside `avoid` where there is room."""
        t = self.target
        w = t.width(dtype)
        chunks = []
        for _ in range(math.ceil(cols / t.lanes)):
            taken = {c.home for c in chunks}
            pick = (self._pick(rows, set(avoid) | taken) or self._pick(rows, taken)
                    or self._pick(rows, set()))
            if pick is None:
                raise UsageError(f"tensor {name!r} ({rows}x{cols} {dtype}) does not fit in the "
                                 f"SRAM left on {t.chip.name}",
                                 hint="use a smaller sequence length, or a chip with more SRAM")
            h, b = pick
            chunks.append(Chunk(self.homes[h].slices[:w], b, self.free[pick], h))
            self.free[pick] += rows
        return Loc(name, dtype, rows, cols, tuple(chunks), t.lanes)
