"""Chrome Trace Event JSON of a traced run, for ui.perfetto.dev and chrome://tracing.

Layout: one process per slice kind (MEM, VXM, MXM, SXM, C2C) with a thread (track) per queue,
one process `streams` with a track per stream, one process `chip` with the counters. The time
unit is the cycle: a `ts` of 1 (a microsecond in the viewers) is one cycle; the preset's clock is
in the top-level `metadata`. Instructions are complete (`X`) slices lasting their occupancy (cut
where the queue's next issue starts, so slices on a track never overlap) with their source line;
stream placements are one-cycle slices; flow arrows (`s` -> `f`, bound to the enclosing slices)
go from each stream value's producer issue to every issue that takes it. Counters: SRAM bytes
moved per cycle and the fraction of MXM planes issuing an ACC, at every cycle they change.

Events are written as JSON text directly (names escaped once each), so a 100,000-issue trace
exports in about a second.
"""

from __future__ import annotations

import json

import numpy as np

from lpu_emu.core import events as E
from lpu_emu.core import plan as P
from lpu_emu.spec.encoding import stream_text
from lpu_emu.trace.model import Traced

KINDS = ("MEM", "VXM", "MXM", "SXM", "C2C")
PID = {k: i + 1 for i, k in enumerate(KINDS)}
STREAMS_PID, CHIP_PID = len(KINDS) + 1, len(KINDS) + 2


def _q(s: str) -> str:
    return json.dumps(s)


def _meta(t: Traced) -> list[str]:
    out = []
    for name, pid in [*PID.items(), ("streams", STREAMS_PID), ("chip", CHIP_PID)]:
        out.append(f'{{"name":"process_name","ph":"M","ts":0,"pid":{pid},"tid":0,'
                   f'"args":{{"name":{_q(name)}}}}}')
        out.append(f'{{"name":"process_sort_index","ph":"M","ts":0,"pid":{pid},"tid":0,'
                   f'"args":{{"sort_index":{pid}}}}}')
    for s in t.chip.slices:
        out.append(f'{{"name":"thread_name","ph":"M","ts":0,"pid":{PID[s.kind]},'
                   f'"tid":{s.index + 1},"args":{{"name":{_q(s.name)}}}}}')
    for code in np.unique(t.index.pl[:, 3]).tolist():
        out.append(f'{{"name":"thread_name","ph":"M","ts":0,"pid":{STREAMS_PID},'
                   f'"tid":{code + 1},"args":{{"name":{_q(stream_text(code))}}}}}')
    return out


def _durations(iss: np.ndarray) -> np.ndarray:
    """Occupancy (at least 1), cut at the queue's next issue."""
    order = np.lexsort((iss[:, P.CYCLE], iss[:, P.QUEUE]))
    q, c = iss[order, P.QUEUE], iss[order, P.CYCLE]
    nxt = np.r_[c[1:], np.iinfo(np.int64).max]
    nxt = np.where(np.r_[q[1:] == q[:-1], False], nxt, np.iinfo(np.int64).max)
    dur = np.empty(len(iss), np.int64)
    dur[order] = np.maximum(1, np.minimum(np.maximum(iss[order, P.OCC], 1), nxt - c))
    return dur


def _issues(t: Traced) -> list[str]:
    iss = t.plan.issues
    dur = _durations(iss)
    pid = np.array([PID[s.kind] for s in t.chip.slices])[iss[:, P.QUEUE]]
    names: dict[int, str] = {}
    where: dict[int, str] = {}
    out = []
    for i, (c, src, q, d, p) in enumerate(zip(iss[:, P.CYCLE].tolist(), iss[:, P.SRC].tolist(),
                                              iss[:, P.QUEUE].tolist(), dur.tolist(),
                                              pid.tolist(), strict=True)):
        if src not in names:
            names[src] = _q(t.mnemonic(i))
            where[src] = f'{{"source":{_q(t.where(i))},"text":{_q(t.instruction(i))}}}'
        out.append(f'{{"name":{names[src]},"cat":"issue","ph":"X","ts":{c},"dur":{d},'
                   f'"pid":{p},"tid":{q + 1},"args":{where[src]}}}')
    return out


def _placements(t: Traced) -> list[str]:
    pl = t.index.pl
    iss = t.plan.issues
    dn = t.dtype_names
    out = []
    label: dict[tuple[int, int], str] = {}
    for c, issue, code, pos, tag in zip(pl[:, 0].tolist(), pl[:, 2].tolist(), pl[:, 3].tolist(),
                                        pl[:, 4].tolist(), pl[:, 5].tolist(), strict=True):
        q = int(iss[issue, P.QUEUE])
        key = (q, tag)
        if key not in label:
            label[key] = _q(f"{t.queue_name(q)} {dn.get(tag, '?')}")
        out.append(f'{{"name":{label[key]},"cat":"stream","ph":"X","ts":{c},"dur":1,'
                   f'"pid":{STREAMS_PID},"tid":{code + 1},"args":{{"position":{pos}}}}}')
    return out


def flows(t: Traced) -> np.ndarray:
    """[producer issue, consumer issue, stream code] for every TAKE of a placed value."""
    ev = t.index.ev
    tk = ev[(ev[:, 1] == E.TAKE) & (ev[:, 5] >= 0)]
    if not len(tk):
        return np.zeros((0, 3), np.int64)
    placed_at = tk[:, 0] - np.abs(tk[:, 4] - tk[:, 5])
    prod = t.index.producer(tk[:, 3], tk[:, 5], placed_at)
    ok = prod >= 0
    return np.stack([prod[ok], tk[ok, 2], tk[ok, 3]], axis=1)


def _flows(t: Traced) -> list[str]:
    iss = t.plan.issues
    pid = np.array([PID[s.kind] for s in t.chip.slices])
    f = flows(t)
    out = []
    for k, (a, b, code) in enumerate(f.tolist()):
        name = _q(stream_text(code))
        qa, qb = int(iss[a, P.QUEUE]), int(iss[b, P.QUEUE])
        out.append(f'{{"name":{name},"cat":"flow","ph":"s","id":{k},"ts":{int(iss[a, P.CYCLE])},'
                   f'"pid":{pid[qa]},"tid":{qa + 1}}}')
        out.append(f'{{"name":{name},"cat":"flow","ph":"f","bp":"e","id":{k},'
                   f'"ts":{int(iss[b, P.CYCLE])},"pid":{pid[qb]},"tid":{qb + 1}}}')
    return out


def _counter(name: str, key: str, cycles: np.ndarray, values: np.ndarray, end: int) -> list[str]:
    """A counter sampled at every cycle its value changes (and back to 0 after the last)."""
    if not len(cycles):
        return []
    series = np.zeros(end + 2, dtype=float)
    np.add.at(series, cycles, values)
    change = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])
    return [f'{{"name":{_q(name)},"ph":"C","ts":{c},"pid":{CHIP_PID},"tid":0,'
            f'"args":{{{_q(key)}:{series[c]:.6g}}}}}' for c in change.tolist()]


def _counters(t: Traced) -> list[str]:
    ev, end = t.index.ev, t.last_cycle
    mem = ev[np.isin(ev[:, 1], (E.SREAD, E.SWRITE))]
    acc = ev[ev[:, 1] == E.ACC]
    planes = sum(1 for s in t.chip.slices if s.kind == "MXM") or 1
    return (_counter("SRAM bandwidth", "bytes/cycle", mem[:, 0],
                     np.full(len(mem), float(t.index.lanes)), end)
            + _counter("MXM utilization", "planes issuing ACC", acc[:, 0],
                       np.full(len(acc), 1.0 / planes), end))


def perfetto_json(t: Traced) -> str:
    """The whole trace as one JSON document (Trace Event Format, JSON object form)."""
    events = _meta(t) + _issues(t) + _placements(t) + _flows(t) + _counters(t)
    meta = {"chip": t.chip.name, "clock_hz": t.chip.clock_hz, "program": t.name,
            "time_unit": "1 ts unit (shown as 1 us) = 1 cycle", "cycles": t.last_cycle}
    return ('{"displayTimeUnit":"ns","metadata":' + json.dumps(meta, sort_keys=True)
            + ',"traceEvents":[\n' + ",\n".join(events) + "\n]}\n")
