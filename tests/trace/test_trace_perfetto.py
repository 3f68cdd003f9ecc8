"""The Perfetto export against the Trace Event Format: required fields, flows that pair up and
bind to slices, tracks per queue and stream, counters."""

from __future__ import annotations

import json
from collections import Counter

from trace_helpers import traced

from lpu_emu.trace.perfetto import CHIP_PID, PID, STREAMS_PID, flows, perfetto_json

REQUIRED = {"name", "ph", "ts", "pid", "tid"}


def load(name: str) -> dict:
    return json.loads(perfetto_json(traced(name)))


def test_every_event_has_the_required_fields() -> None:
    for name in ("vecadd", "matvec", "late"):
        doc = load(name)
        assert doc["metadata"]["clock_hz"] == 1.5e9
        for e in doc["traceEvents"]:
            assert set(e) >= REQUIRED, e
            assert e["ph"] in {"M", "X", "s", "f", "C"}, e
            if e["ph"] == "X":
                assert isinstance(e["dur"], int) and e["dur"] >= 1, e
            if e["ph"] in "sf":
                assert "id" in e and e["cat"] == "flow", e


def test_flows_pair_up_and_bind_to_instruction_slices() -> None:
    doc = load("matvec")
    ev = doc["traceEvents"]
    slices = {(e["pid"], e["tid"], e["ts"]) for e in ev if e["ph"] == "X" and e["cat"] == "issue"}
    starts = {e["id"]: e for e in ev if e["ph"] == "s"}
    ends = {e["id"]: e for e in ev if e["ph"] == "f"}
    assert set(starts) == set(ends) and len(starts) == 320 + 1 + 4  # 320 LW, the ACC, 4 Writes
    for k, s in starts.items():
        f = ends[k]
        assert f["bp"] == "e" and s["name"] == f["name"] and s["ts"] <= f["ts"]
        assert (s["pid"], s["tid"], s["ts"]) in slices and (f["pid"], f["tid"], f["ts"]) in slices


def test_flow_of_vecadd_goes_from_each_read_to_the_add_and_on_to_the_write() -> None:
    assert flows(traced("vecadd")).tolist() == [[0, 2, 0], [1, 2, 1], [2, 3, 2]]


def test_tracks_are_per_kind_queue_and_stream() -> None:
    ev = load("vecadd")["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["name"] == "thread_name"}
    procs = {e["pid"]: e["args"]["name"] for e in ev if e["name"] == "process_name"}
    assert procs == {PID["MEM"]: "MEM", PID["VXM"]: "VXM", PID["MXM"]: "MXM", PID["SXM"]: "SXM",
                     PID["C2C"]: "C2C", STREAMS_PID: "streams", CHIP_PID: "chip"}
    issues = [e for e in ev if e["ph"] == "X" and e["cat"] == "issue"]
    assert [(names[(e["pid"], e["tid"])], e["ts"], e["name"], e["args"]["source"])
            for e in issues] == [
        ("MEM_W1", 0, "Read.int8", "programs/vecadd.lpu:18"),
        ("MEM_W0", 1, "Read.int8", "programs/vecadd.lpu:20"),
        ("VXM0", 3, "Add.int8", "programs/vecadd.lpu:22"),
        ("MEM_E0", 6, "Write.int8", "programs/vecadd.lpu:23")]
    values = [(names[(e["pid"], e["tid"])], e["ts"]) for e in ev if e.get("cat") == "stream"]
    assert values == [("S0E", 1), ("S1E", 2), ("S2E", 5)]


def test_slices_on_one_track_never_overlap() -> None:
    ev = load("matvec")["traceEvents"]
    spans: dict = {}
    for e in ev:
        if e["ph"] == "X" and e["cat"] == "issue":
            spans.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for s in spans.values():
        s.sort()
        assert all(a[1] <= b[0] for a, b in zip(s, s[1:], strict=False))


def test_counters_follow_sram_traffic_and_mxm_use() -> None:
    ev = load("matvec")["traceEvents"]
    sram = [(e["ts"], e["args"]["bytes/cycle"]) for e in ev if e["name"] == "SRAM bandwidth"]
    # 320 weight-row Reads (0..319), the x Read (342), four Writes landing at 453..456
    assert sram == [(0, 320), (320, 0), (342, 320), (343, 0), (453, 320), (457, 0)]
    mxm = Counter(e["args"]["planes issuing ACC"] for e in ev if e["name"] == "MXM utilization")
    assert mxm == Counter({0: 2, 0.25: 1})
