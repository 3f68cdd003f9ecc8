"""Breakpoints and watchpoints: each is the sorted array of the cycles it hits, computed once
from the Plan and the index when it is set, so `continue` and `reverse-continue` are one
np.searchsorted per breakpoint, however long the run.

A stream breakpoint (`break stream S4E at MEM_W3`) hits at every cycle a value passes the slice's
position on that stream: a value placed at (p, t) flowing east passes q >= p at t + (q - p). A
value replacing it further upstream on the same diagonal passes q at that same cycle, so the set
of cycles is exact without asking which value won.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpu_emu.core import plan as P
from lpu_emu.core.tensors import _locations
from lpu_emu.spec.encoding import stream_text
from lpu_emu.trace.commands import CommandError, nearest
from lpu_emu.trace.index import WEST
from lpu_emu.trace.model import Traced


@dataclass(frozen=True)
class Breakpoint:
    number: int
    text: str  # as `info breakpoints` shows it: "op Add", "watch z", ...
    hits: np.ndarray  # sorted distinct cycles

    def next_after(self, cycle: int) -> int | None:
        i = int(np.searchsorted(self.hits, cycle, "right"))
        return int(self.hits[i]) if i < len(self.hits) else None

    def last_before(self, cycle: int) -> int | None:
        i = int(np.searchsorted(self.hits, cycle, "left")) - 1
        return int(self.hits[i]) if i >= 0 else None


def find_slice(t: Traced, name: str, kinds: tuple[str, ...] | None = None):
    """The slice (queue) named `name`, of one of `kinds`; CommandError with the nearest name."""
    s = t.slice_named(name)
    names = [x.name for x in t.chip.slices if kinds is None or x.kind in kinds]
    if s is None or (kinds is not None and s.kind not in kinds):
        what = "queue" if kinds is None else "/".join(kinds) + " slice"
        raise CommandError(f"no {what} named '{name}' on {t.chip.name}" + nearest(name, names))
    return s


def _issue_cycles(t: Traced, mask: np.ndarray) -> np.ndarray:
    return np.unique(t.plan.issues[mask, P.CYCLE])


def _line_hits(t: Traced, file: str | None, line: int) -> tuple[str, np.ndarray]:
    prog = t.program
    files = list(prog.files)
    if file is None:
        f_ok = np.ones(len(prog.src_file), bool)
        label = f"line {line}"
    else:
        match = [i for i, f in enumerate(files) if f == file or f.endswith("/" + file)]
        if not match:
            raise CommandError(f"no source file '{file}' in the program"
                               + (nearest(file, files) or f"; files: {', '.join(files)}"))
        f_ok = np.isin(prog.src_file, match)
        label = f"line {file}:{line}"
    instrs = np.flatnonzero(f_ok & (prog.src_line == line))
    return label, _issue_cycles(t, np.isin(t.plan.issues[:, P.SRC], instrs))


def _stream_hits(t: Traced, code: int, queue: str) -> np.ndarray:
    q = find_slice(t, queue).position
    pl = t.index.pl
    pl = pl[pl[:, 3] == code]
    pos, cyc = pl[:, 4], pl[:, 0]
    dist = (pos - q) if code & WEST else (q - pos)
    ok = dist >= 0
    return np.unique(cyc[ok] + dist[ok])


def _op_hits(t: Traced, word: str) -> np.ndarray:
    mnemonic = word.split(".")[0]
    ins = next((i for i in t.isa.by_opcode().values() if i.mnemonic.lower() == mnemonic.lower()),
               None)
    if ins is None:
        names = sorted(i.mnemonic for i in t.isa.by_opcode().values())
        close = nearest(mnemonic, names)
        raise CommandError(f"no instruction '{word}'" + (close or "; `lpu isa` lists them"))
    return _issue_cycles(t, t.plan.issues[:, P.OP] == ins.opcode)


def tensor_keys(t: Traced, name: str) -> np.ndarray:
    """The SRAM row keys a tensor occupies."""
    tensor = t.tensor(name)
    if tensor is None:
        names = [s.name for s in t.program.symbols]
        raise CommandError(f"no tensor named '{name}'"
                           + (nearest(name, names) or f"; tensors: {', '.join(names) or 'none'}"))
    keys = [t.index.row_key(unit, tensor.bank, addrs) for unit, addrs in _locations(t.chip, tensor)]
    return np.concatenate(keys)


def row_keys(t: Traced, slice_name: str | None, bank: int, addr: int) -> tuple[str, np.ndarray]:
    banks, size = t.index.sram.shape[1], t.index.sram.shape[2]
    if not (0 <= bank < banks and 0 <= addr < size):
        raise CommandError(f"{bank}:{addr} is outside SRAM (banks 0..{banks - 1}, addresses "
                           f"0..{size - 1})")
    if slice_name is None:
        units = np.arange(t.index.sram.shape[0])
        return f"{bank}:{addr}", t.index.row_key(units, bank, addr)
    s = find_slice(t, slice_name, ("MEM",))
    return f"{s.name} {bank}:{addr}", t.index.row_key([t.mem_unit(s.name)], bank, addr)


def make_breakpoint(t: Traced, number: int, command: str, args: tuple) -> Breakpoint:
    """The Breakpoint for a parsed `break` or `watch` command (CommandError for unknown names)."""
    kind = args[0]
    if command == "watch":
        if kind == "tensor":
            return Breakpoint(number, f"watch {args[1]}",
                              t.index.write_cycles(tensor_keys(t, args[1])))
        label, keys = row_keys(t, args[1], args[2], args[3])
        return Breakpoint(number, f"watch {label}", t.index.write_cycles(keys))
    if kind == "cycle":
        return Breakpoint(number, f"cycle {args[1]}", np.array([args[1]], np.int64))
    if kind == "line":
        label, hits = _line_hits(t, args[1], args[2])
        return Breakpoint(number, label, hits)
    if kind == "queue":
        s = find_slice(t, args[1])
        return Breakpoint(number, f"queue {s.name}",
                          _issue_cycles(t, t.plan.issues[:, P.QUEUE] == s.index))
    if kind == "op":
        return Breakpoint(number, f"op {args[1]}", _op_hits(t, args[1]))
    if kind == "stream":
        s = find_slice(t, args[2])
        return Breakpoint(number, f"stream {stream_text(args[1])} at {s.name}",
                          _stream_hits(t, args[1], s.name))
    cycles = np.unique(np.array([v.cycle for v in t.violations], np.int64))
    return Breakpoint(number, "violation", cycles)
