"""Placement: where each tensor lives in SRAM (MEM slices, bank, addresses).

A tensor of R rows and C columns is `chunks = ceil(C / lanes)` column blocks of R vectors; row r
of chunk c at `chunks[c].addr + r` (a pass over a chunk is a run of consecutive addresses that
one Read plus a Repeat covers). Its width(d) byte planes sit in width(d) adjacent MEM slices,
plane p in slice p at the same address (docs/design.md section 4), so a whole vector is read in
one cycle. Tensors that one kernel uses together are kept on different slices by `place` (a
kernel reads or writes each slice at most once a cycle).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

from lpu_emu.compiler.target import Target
from lpu_emu.errors import UsageError
from lpu_emu.program import Tensor
from lpu_emu.spec import Slice


@dataclass(frozen=True)
class Chunk:
    """Where one column chunk of a tensor lives: its byte-plane slices, bank, first address."""

    slices: tuple[Slice, ...]
    bank: int
    addr: int

    @property
    def home(self) -> frozenset[int]:
        """The slices (queue indices) it occupies."""
        return frozenset(s.index for s in self.slices)


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
    stripes: tuple[Loc, ...] = ()  # striped: row r is row r // n of stripes[r % n] (no chunks)

    def __post_init__(self) -> None:
        if not self.base:
            object.__setattr__(self, "base", self.name)

    def view(self, name: str, row0: int, rows: int) -> Loc:
        """Rows row0 .. row0 + rows - 1 of this tensor, as a tensor of its own name."""
        if row0 < 0 or row0 + rows > self.rows:
            raise ValueError(f"rows {row0}..{row0 + rows} outside {self.name} ({self.rows})")
        chunks = tuple(Chunk(c.slices, c.bank, c.addr + row0) for c in self.chunks)
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
        """Every slice (queue index) the tensor occupies."""
        return set().union(*(c.home for c in self.chunks), *(s.homes() for s in self.stripes))

    def symbols(self) -> list[Tensor]:
        """The program's named tensors: one per chunk (`name.c`) when wider than the lanes; a
        striped tensor's stripes (`name.sK`)."""
        if self.stripes:
            return [t for s in self.stripes for t in s.symbols()]
        out = []
        for c, ch in enumerate(self.chunks):
            name = self.name if self.nchunks == 1 else f"{self.name}.{c}"
            out.append(Tensor(name, self.dtype, (self.rows, self.chunk_cols(c)),
                              tuple(s.name for s in ch.slices), ch.bank, ch.addr))
        return out


class Memory:
    """A bump allocator per MEM slice and bank. A chunk of width w goes to w adjacent slices of
    one hemisphere (aligned to w), the least used ones outside `avoid`, at the first address
    free in all of them."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sides = [target.mem("W"), target.mem("E")]
        self.free: dict[tuple[int, int], int] = {
            (s.index, b): 0 for side in self.sides for s in side for b in range(target.banks)}

    def fork(self) -> Memory:
        """A copy that allocates on its own (a trial placement)."""
        other = copy.copy(self)
        other.free = dict(self.free)
        return other

    def adopt(self, other: Memory) -> None:
        """Take a fork's allocations as this memory's own."""
        self.free = dict(other.free)

    def _groups(self, w: int):
        for side in self.sides:
            for i in range(0, len(side) - w + 1, w):
                yield side[i:i + w]

    def _pick(self, w: int, rows: int, avoid: set[int]) -> tuple[tuple[Slice, ...], int] | None:
        banks, addresses, free = range(self.target.banks), self.target.addresses, self.free
        best, best_key = None, None
        for group in self._groups(w):
            if any(s.index in avoid for s in group):
                continue
            used = sum(free[(s.index, k)] for s in group for k in banks)  # the group's, any bank
            for b in banks:
                addr = max(free[(s.index, b)] for s in group)
                if addr + rows > addresses:
                    continue
                key = (used, addr, group[0].index, b)
                if best is None or key < best_key:
                    best, best_key = (group, b), key
        return best

    def alloc(self, name: str, dtype: str, rows: int, cols: int,
              avoid: set[int] | frozenset[int] = frozenset(),
              never: set[int] | frozenset[int] = frozenset()) -> Loc:
        """Place a tensor, each chunk on slices outside `avoid` and apart from its other chunks
        where there is room, and always outside `never`."""
        t = self.target
        w = t.width(dtype)
        chunks: list[Chunk] = []
        for _ in range(math.ceil(cols / t.lanes)):
            taken = set().union(*(c.home for c in chunks)) if chunks else set()
            pick = (self._pick(w, rows, set(avoid) | taken | set(never))
                    or self._pick(w, rows, taken | set(never)) or self._pick(w, rows, set(never)))
            if pick is None:
                raise UsageError(f"tensor {name!r} ({rows}x{cols} {dtype}) does not fit in the "
                                 f"SRAM left on {t.chip.name}",
                                 hint="use a smaller sequence length, or a chip with more SRAM")
            group, b = pick
            addr = max(self.free[(s.index, b)] for s in group)
            for s in group:
                self.free[(s.index, b)] = addr + rows
            chunks.append(Chunk(group, b, addr))
        return Loc(name, dtype, rows, cols, tuple(chunks), t.lanes)

    def alloc_striped(self, name: str, dtype: str, rows: int, cols: int, stripes: int,
                      avoid: set[int] | frozenset[int] = frozenset()) -> Loc:
        """A tensor stored as `stripes` tensors on different slices, row r in stripe r mod
        stripes, so that one LW can take `stripes` consecutive rows in one cycle."""
        parts: list[Loc] = []
        for k in range(stripes):
            others = set().union(*(p.homes() for p in parts))  # one LW reads them all at once
            n = len(range(k, rows, stripes))
            parts.append(self.alloc(f"{name}.s{k}", dtype, n, cols, set(avoid), others))
        parts = [dataclasses.replace(p, base=name) for p in parts]
        return Loc(name, dtype, rows, cols, (), self.target.lanes, name, tuple(parts))
