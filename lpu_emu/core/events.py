"""The event log of a traced run: everything that happened, per cycle, as raw records.

Both cores record it, identically (tests/core/test_event_logs.py holds them to it): each appends
one int64 record of 8 columns per event and copies each value it places (or an SRAM row before
its first write) into a uint8 [k, lanes] value heap; records point into the heap by row (`ref`,
-1: no value / all zeros). The fast core (lpu_emu/core/fast_loop.py) writes the arrays from
numba; the reference interpreter (lpu_emu/core/reference.py) through a `Recorder`. Logs carry
raw bits, decoded later (Spike's habit): this module only stores, filters and replays them.

Records: (cycle, kind, issue, a, b, c, d, ref) -- the meaning of a..d and ref by kind (cycle:
the issue cycle unless noted):

| kind   | a           | b             | c                       | d               | ref           |
|--------|-------------|---------------|-------------------------|-----------------|---------------|
| ISSUE  | queue       | opcode        | dtype code              | 0               | -1            |
| TAKE   | stream code | reader pos    | producer pos, -1 none   | value's tag     | value, -1: 0s |
| PLACE  | stream code | position      | dtype tag               | 1: replaced one | value         |
| SREAD  | MEM unit    | bank          | address (Gather: base)  | Gather index    | value read    |
| SWRITE | MEM unit    | bank          | address (Scatter: base) | Scatter index   | data, -1: 0s  |
| INIT   | MEM unit    | bank          | address                 | 0               | row before    |
| LW     | MXM plane   | 1st row, -1: drop | streams read        | rows appended   | -1            |
| IW     | MXM plane   | lands at      | rows buffered           | 0               | -1            |
| ABC    | MXM plane   | accumulator   | 0                       | 0               | -1            |
| ACC    | MXM plane   | accumulator   | 1 weights, 0 none       | 0               | 1st of 4      |
| SEND   | edge        | link          | arrival cycle           | planes          | -1            |
| RECV   | edge        | link          | sender (-1: none)       | 0               | -1            |
| VIOL   | kind        | coordinate a  | coordinate b            | coordinate c    | -1            |

PLACE's cycle is the placement cycle (issue + latency); SWRITE's and INIT's the commit cycle.
Records are in the order the core made them, issue by issue: ISSUE; a static VIOL; the INIT and
SWRITE of each write committing before this cycle (in commit, issue order; INITs in lane order
of first touch); a TAKE per input stream (operand a's, then b's); the VIOLs in the contract's
order; a PLACE per output; the op's record (SREAD, LW, IW, ABC, ACC, SEND, RECV). Writes still
pending at the end follow the last issue. So a PLACE or SWRITE can carry a later cycle than the
ISSUE after it; `by_cycle` sorts. Scatter lane addresses are
`(base + index[l]) % addresses_per_bank`, recomputed on replay.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from lpu_emu.core.plan import Plan
    from lpu_emu.core.state import Machine

ISSUE, TAKE, PLACE, SREAD, SWRITE, INIT, LW, IW, ABC, ACC, SEND, RECV, VIOL = range(1, 14)
KIND_NAMES = {
    ISSUE: "issue", TAKE: "take", PLACE: "place", SREAD: "sram-read", SWRITE: "sram-write",
    INIT: "sram-init", LW: "lw", IW: "iw", ABC: "abc", ACC: "acc", SEND: "send", RECV: "receive",
    VIOL: "violation",
}
COLUMNS = ("cycle", "kind", "issue", "a", "b", "c", "d", "ref")
FORMAT = 1


class Event(NamedTuple):
    cycle: int
    kind: int
    issue: int
    a: int
    b: int
    c: int
    d: int
    ref: int

    @property
    def name(self) -> str:
        return KIND_NAMES.get(self.kind, str(self.kind))


@dataclass(eq=False)
class EventLog:
    """The records and value heap of one traced run, plus what replay needs to know.

    meta: chip name, lanes, positions, mem_addresses_per_bank, issues, stopped_at (-1: ran to
    the end)."""

    events: np.ndarray  # int64 [m, 8]
    values: np.ndarray  # uint8 [k, lanes]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Event]:
        for row in self.events.tolist():
            yield Event(*row)

    # ---- selection ----
    def select(self, kind: int | None = None, cycle: int | tuple[int, int] | None = None,
               issue: int | None = None) -> np.ndarray:
        """The records matching every given filter, in log order; cycle is one cycle or an
        inclusive (first, last) range."""
        e = self.events
        keep = np.ones(len(e), dtype=bool)
        if kind is not None:
            keep &= e[:, 1] == kind
        if issue is not None:
            keep &= e[:, 2] == issue
        if cycle is not None:
            lo, hi = (cycle, cycle) if isinstance(cycle, int | np.integer) else cycle
            keep &= (e[:, 0] >= lo) & (e[:, 0] <= hi)
        return e[keep]

    def by_cycle(self) -> np.ndarray:
        """All records sorted by cycle (log order within a cycle)."""
        return self.events[np.argsort(self.events[:, 0], kind="stable")]

    def value(self, ref: int) -> np.ndarray:
        """The 320 bytes a record's ref points at (zeros for -1)."""
        if ref < 0:
            return np.zeros(self.values.shape[1], dtype=np.uint8)
        return self.values[ref]

    # ---- replay ----
    def sram_at(self, cycle: int | None = None) -> dict[tuple[int, int, int], np.ndarray]:
        """Every SRAM row the run wrote, as a Read issued at `cycle` sees it (the writes that
        committed before `cycle`; None: after the run): {(unit, bank, address): bytes}.
        Rows the run never wrote keep their initial contents (the Program's data)."""
        size, lanes = int(self.meta["mem_addresses_per_bank"]), self.values.shape[1]
        rows: dict[tuple[int, int, int], np.ndarray] = {}
        e = self.events
        mask = np.isin(e[:, 1], (INIT, SWRITE))
        if cycle is not None:
            mask &= e[:, 0] < cycle
        inits = e[e[:, 1] == INIT]
        for r in inits.tolist():  # every written row's contents before its first write
            rows[(r[3], r[4], r[5])] = self.values[r[7]].copy()
        lane = np.arange(lanes)
        for r in e[mask].tolist():
            if r[1] != SWRITE:
                continue
            unit, bank, addr, iref, dref = r[3], r[4], r[5], r[6], r[7]
            data = self.value(dref)
            if iref < 0:  # a Write, or a Scatter whose index had no value (zeros: all at base)
                rows[(unit, bank, addr % size)] = data.copy()
                continue
            addrs = (addr + self.value(iref).astype(np.int64)) % size
            for a in np.unique(addrs).tolist():
                sel = addrs == a
                rows[(unit, bank, a)][lane[sel]] = data[sel]
        return rows

    def apply_sram(self, sram: np.ndarray, cycle: int | None = None) -> np.ndarray:
        """A copy of the initial SRAM array `sram` with the rows written before `cycle`."""
        out = sram.copy()
        for (unit, bank, addr), row in self.sram_at(cycle).items():
            out[unit, bank, addr] = row
        return out

    def streams_at(self, cycle: int) -> dict[tuple[int, int], tuple[int, int, np.ndarray]]:
        """What passes on the streams at `cycle`: {(stream code, position): (issue, dtype tag,
        bytes)} for every position a placed value has reached and not yet left (the nearest
        placement upstream on its diagonal, as a reader there would see it)."""
        positions = int(self.meta["positions"])
        e = self.events[self.events[:, 1] == PLACE]
        e = e[(e[:, 0] <= cycle) & (e[:, 0] >= cycle - positions)]
        best: dict[tuple[int, int], list[int]] = {}
        for r in e.tolist():  # log order: a later producer at the same place replaces
            t, code, pos = r[0], r[3], r[4]
            west = bool(code & 64)
            x = pos - (cycle - t) if west else pos + (cycle - t)
            if not 0 <= x < positions:
                continue
            key = (code, x)
            cur = best.get(key)
            if cur is None or (cur[4] < pos if not west else cur[4] > pos) or cur[4] == pos:
                best[key] = r
        return {k: (r[2], r[5], self.values[r[7]]) for k, r in best.items()}

    # ---- files ----
    def to_bytes(self) -> bytes:
        """The .npz file's bytes (so a caller can write it together with other files)."""
        buf = io.BytesIO()
        meta = json.dumps({"format": FORMAT, **self.meta}, sort_keys=True)
        np.savez_compressed(buf, events=self.events, values=self.values, meta=np.array(meta))
        return buf.getvalue()

    def save(self, path: str | Path) -> None:
        """Write an .npz atomically (a temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> EventLog:
        from lpu_emu.errors import LoadError

        try:
            with np.load(Path(path), allow_pickle=False) as z:
                events, values, meta = z["events"], z["values"], json.loads(str(z["meta"]))
        except (OSError, KeyError, ValueError) as exc:
            raise LoadError(f"{path}: not an lpu-emu event log: {exc}") from None
        if meta.pop("format", None) != FORMAT:
            raise LoadError(f"{path}: event log format is not {FORMAT}")
        if events.ndim != 2 or events.shape[1] != len(COLUMNS) or values.ndim != 2:
            raise LoadError(f"{path}: malformed event log arrays")
        return cls(events.astype(np.int64), values.astype(np.uint8), meta)


def run_meta(plan: Plan, machine: Machine, stopped_at: int) -> dict:
    """EventLog.meta of a run of `plan` on `machine` (either core)."""
    return {"chip": plan.chip.name, "lanes": machine.chip.lanes,
            "positions": plan.chip.positions,
            "mem_addresses_per_bank": int(machine.sram.shape[2]), "issues": len(plan.issues),
            "stopped_at": stopped_at}


class Recorder:
    """Builds an EventLog one record at a time: the reference interpreter's writer of the format
    (the fast core fills the same arrays from numba). Made with on=False it keeps nothing and
    every value's ref is -1, so an untraced run makes the same calls."""

    def __init__(self, on: bool = True) -> None:
        self.on = on
        self.records: list[tuple[int, ...]] = []
        self.rows: list[np.ndarray] = []

    def add(self, cycle: int, kind: int, issue: int, a: int = 0, b: int = 0, c: int = 0,
            d: int = 0, ref: int = -1) -> None:
        if self.on:
            self.records.append((cycle, kind, issue, a, b, c, d, ref))

    def row(self, value: np.ndarray) -> int:
        """Keep a copy of a value (one lane row of bytes); its ref (-1 when off)."""
        if not self.on:
            return -1
        self.rows.append(value.copy())
        return len(self.rows) - 1

    def log(self, lanes: int, meta: dict) -> EventLog:
        events = np.array(self.records, dtype=np.int64).reshape(-1, len(COLUMNS))
        values = np.array(self.rows, dtype=np.uint8).reshape(-1, lanes)
        return EventLog(events, values, meta)
