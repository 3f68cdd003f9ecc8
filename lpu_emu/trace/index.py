"""TraceIndex: the event log arranged for lookups at any cycle, in O(log n) plus what is shown.

- `ev`: every record sorted by cycle (log order within a cycle), `at(c)` by np.searchsorted;
- streams: PLACE records sorted by cycle; what passes at cycle c is found among the placements of
  the last `positions` cycles only (a value leaves the chip after at most that many hops);
- SRAM: every write (full row or one row of a Scatter) as (row key, commit cycle, log order),
  sorted; a row at cycle c is its checkpoint (the INIT record of the row before its first write,
  or the last full-row write before c) plus the Scatter deltas after it. Rows never written are
  the final SRAM's;
- producers: PLACE records keyed by (stream, position, cycle), so a TAKE finds its producer issue.

Nothing here replays from cycle 0: the cost of a view does not grow with the cycle it is at.
"""

from __future__ import annotations

import numpy as np

from lpu_emu.core import events as E
from lpu_emu.core import plan as P
from lpu_emu.core.events import EventLog
from lpu_emu.core.plan import Plan

WEST = 64  # direction bit of a stream code (lpu_emu.spec.encoding.STREAM_WEST)


class TraceIndex:
    """Sorted views of one EventLog (see the module docstring)."""

    def __init__(self, log: EventLog, sram: np.ndarray, plan: Plan) -> None:
        self.log, self.sram, self.plan = log, sram, plan
        self.positions = int(log.meta["positions"])
        self.lanes = int(log.values.shape[1])
        order = np.argsort(log.events[:, 0], kind="stable")
        self.ev = log.events[order]
        self.seq = order  # log order of each sorted record
        self.cycles = np.ascontiguousarray(self.ev[:, 0])
        issue_end = plan.issues[:, P.CYCLE] + np.maximum(plan.issues[:, P.LAT],
                                                         plan.issues[:, P.OCC])
        last = [plan.cycles, int(self.cycles[-1]) if len(self.cycles) else 0]
        if len(issue_end):
            last.append(int(issue_end.max()))
        self.last_cycle = int(max(last))
        self._index_places()
        self._index_writes()

    # ---- records at a cycle ----
    def span(self, first: int, last: int) -> tuple[int, int]:
        """Row range of `ev` with first <= cycle <= last."""
        return (int(np.searchsorted(self.cycles, first, "left")),
                int(np.searchsorted(self.cycles, last, "right")))

    def at(self, cycle: int, kind: int | None = None) -> np.ndarray:
        lo, hi = self.span(cycle, cycle)
        rows = self.ev[lo:hi]
        return rows if kind is None else rows[rows[:, 1] == kind]

    def kind_cycles(self, kind: int) -> np.ndarray:
        """Sorted distinct cycles that have a record of `kind`."""
        return np.unique(self.cycles[self.ev[:, 1] == kind])

    # ---- streams ----
    def _index_places(self) -> None:
        pl = self.ev[self.ev[:, 1] == E.PLACE]
        self.pl = pl  # sorted by cycle, log order within a cycle
        self.pl_cycles = np.ascontiguousarray(pl[:, 0])
        self.pl_seq = self.seq[self.ev[:, 1] == E.PLACE]
        key = self._place_key(pl[:, 3], pl[:, 4], pl[:, 0])
        order = np.lexsort((self.pl_seq, key))
        self.pl_key, self.pl_by_key = key[order], pl[order]

    def _place_key(self, code, pos, cycle):
        return (np.asarray(cycle, np.int64) * 128 + code) * (self.positions + 1) + pos

    def streams_at(self, cycle: int) -> np.ndarray:
        """What passes on the streams at `cycle`, one row per (stream code, position) reached:
        [code, position, issue, tag, ref, producer position, placement cycle], sorted by code then
        position. The value is the nearest placement upstream on its diagonal (a later one in log
        order at the same place replaces), as a reader there would see it."""
        lo = int(np.searchsorted(self.pl_cycles, cycle - self.positions, "left"))
        hi = int(np.searchsorted(self.pl_cycles, cycle, "right"))
        r = self.pl[lo:hi]
        if not len(r):
            return np.zeros((0, 7), np.int64)
        seq = self.pl_seq[lo:hi]
        code, pos, t = r[:, 3], r[:, 4], r[:, 0]
        west = (code & WEST) != 0
        x = np.where(west, pos - (cycle - t), pos + (cycle - t))
        ok = (x >= 0) & (x < self.positions)
        upstream = np.where(west, -pos, pos)  # larger: nearer the reader
        keep = np.flatnonzero(ok)
        if not len(keep):
            return np.zeros((0, 7), np.int64)
        order = np.lexsort((seq[keep], upstream[keep], x[keep], code[keep]))
        sel = keep[order]
        k = code[sel] * (self.positions + 1) + x[sel]
        last = np.r_[k[1:] != k[:-1], True]
        sel = sel[last]
        return np.stack([code[sel], x[sel], r[sel, 2], r[sel, 5], r[sel, 7], pos[sel], t[sel]],
                        axis=1)

    def stream_value(self, cycle: int, code: int, position: int) -> np.ndarray | None:
        """The row of streams_at(cycle) for one stream and position, or None."""
        s = self.streams_at(cycle)
        hit = np.flatnonzero((s[:, 0] == code) & (s[:, 1] == position))
        return s[hit[0]] if len(hit) else None

    def producer(self, code, pos, cycle) -> np.ndarray:
        """Issue of the PLACE at (code, pos, cycle) for arrays of those (-1: none); of several at
        one place, the later in log order (the one that wins)."""
        key = self._place_key(code, pos, cycle)
        i = np.searchsorted(self.pl_key, key, "right") - 1
        i = np.clip(i, 0, max(len(self.pl_key) - 1, 0))
        if not len(self.pl_key):
            return np.full(len(key), -1, np.int64)
        found = self.pl_key[i] == key
        return np.where(found, self.pl_by_key[i, 2], -1)

    # ---- SRAM ----
    def row_key(self, unit, bank, addr):
        banks, size = self.sram.shape[1], self.sram.shape[2]
        return (np.asarray(unit, np.int64) * banks + bank) * size + addr

    def _index_writes(self) -> None:
        size = self.sram.shape[2]
        w = self.ev[self.ev[:, 1] == E.SWRITE]
        wseq = self.seq[self.ev[:, 1] == E.SWRITE]
        full = w[:, 6] < 0
        keys, cyc, seq, ref, lane_sel = [self.row_key(w[full, 3], w[full, 4], w[full, 5])], \
            [w[full, 0]], [wseq[full]], [np.flatnonzero(full)], [np.full(full.sum(), -1)]
        self.scatters: list[tuple[int, np.ndarray]] = []  # (record row in w, lane addresses)
        for j in np.flatnonzero(~full).tolist():
            r = w[j]
            addrs = (r[5] + self.log.value(int(r[6])).astype(np.int64)) % size
            s = len(self.scatters)
            self.scatters.append((j, addrs))
            for a in np.unique(addrs).tolist():
                keys.append(self.row_key([r[3]], [r[4]], [a]))
                cyc.append([r[0]])
                seq.append([wseq[j]])
                ref.append([j])
                lane_sel.append([s])
        key = np.concatenate(keys).astype(np.int64)
        order = np.lexsort((np.concatenate(seq), np.concatenate(cyc), key))
        self.w, self.w_key = w, key[order]
        self.w_cycle = np.concatenate(cyc).astype(np.int64)[order]
        self.w_row = np.concatenate(ref).astype(np.int64)[order]
        self.w_scatter = np.concatenate(lane_sel).astype(np.int64)[order]
        init = self.ev[self.ev[:, 1] == E.INIT]
        ikey = self.row_key(init[:, 3], init[:, 4], init[:, 5])
        iorder = np.argsort(ikey, kind="stable")
        self.init_key, self.init_ref = ikey[iorder], init[iorder, 7]

    def sram_row(self, unit: int, bank: int, addr: int, cycle: int | None) -> np.ndarray:
        """SRAM row (unit, bank, addr) as a Read issued at `cycle` sees it: the writes committed
        before `cycle` applied (None: after the run)."""
        key = int(self.row_key(unit, bank, addr))
        lo = int(np.searchsorted(self.w_key, key, "left"))
        hi = int(np.searchsorted(self.w_key, key, "right"))
        if lo == hi:
            return self.sram[unit, bank, addr].copy()
        n = hi if cycle is None else lo + int(np.searchsorted(self.w_cycle[lo:hi], cycle, "left"))
        k = n - 1
        while k >= lo and self.w_scatter[k] >= 0:  # back to the last full-row write
            k -= 1
        if k >= lo:
            row = self.log.value(int(self.w[self.w_row[k], 7])).copy()
        else:
            i = int(np.searchsorted(self.init_key, key, "left"))
            found = i < len(self.init_key) and self.init_key[i] == key
            row = (self.log.value(int(self.init_ref[i])) if found
                   else self.sram[unit, bank, addr]).copy()
        for j in range(k + 1, n):  # the Scatter deltas since
            rec, addrs = self.scatters[int(self.w_scatter[j])]
            sel = addrs == addr
            row[sel] = self.log.value(int(self.w[rec, 7]))[sel]
        return row

    def write_cycles(self, keys: np.ndarray) -> np.ndarray:
        """Sorted distinct commit cycles of the writes to any of the given row keys."""
        hit = np.isin(self.w_key, keys)
        return np.unique(self.w_cycle[hit])

    def written_keys(self, cycle: int) -> np.ndarray:
        """Row keys with a write committing at `cycle` (the rows this cycle changes)."""
        return np.unique(self.w_key[self.w_cycle == cycle])
