"""The fast core's event log: what a traced run records, and replaying it to any cycle."""

from __future__ import annotations

import random

import numpy as np
import pytest
from core_helpers import I, make_program, positions
from diff_programs import chip_named, random_program

from lpu_emu.core import events as E
from lpu_emu.core import fast
from lpu_emu.core.events import EventLog
from lpu_emu.core.plan import make_plan
from lpu_emu.core.state import mem_ordinal, new_machine
from lpu_emu.errors import LoadError
from lpu_emu.program import Tensor
from lpu_emu.spec import default_isa, get_chip


def traced(program, lenient=True, **kw):
    chip = chip_named(program.chip)
    plan = make_plan(program, chip, default_isa())
    initial = new_machine(chip, program)
    machine = new_machine(chip, program)
    raw, stopped, log = fast.run_plan(plan, machine, lenient, trace=True, **kw)
    return plan, initial, machine, raw, stopped, log


def vecadd():
    """x + y on int8: Reads at the west MEM slices, Add at the VXM, Write at MEM_E0.
    Returns the program and the cycles and positions a reader of the log needs."""
    pos = positions("tsp-v1")
    p0, p1, pv, pe = pos["MEM_W0"], pos["MEM_W1"], pos["VXM0"], pos["MEM_E0"]
    t_add = 2 + (pv - p0)  # x is placed at (p0, 2) and flows east one position per cycle
    t_write = t_add + 2 + (pe - pv)  # Add latency 2, then to MEM_E0
    x, y = np.arange(320) % 100 - 50, (np.arange(320) * 7) % 50
    tensors = [Tensor("x", "int8", (320,), ("MEM_W0",), 0, 0),
               Tensor("y", "int8", (320,), ("MEM_W1",), 0, 3),
               Tensor("z", "int8", (320,), ("MEM_E0",), 1, 5)]
    prog = [
        I("MEM_W0", 1, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_W1", 2 - (p0 - p1) - 1, "Read", "int8", src=(0, 3), dst="S1E"),
        I("VXM0", t_add, "Add", "int8", x="S0E", y="S1E", z="S2E"),
        I("MEM_E0", t_write, "Write", "int8", src="S2E", dst=(1, 5)),
    ]
    program = make_program(prog, "tsp-v1", tensors, {"x": x, "y": y})
    return program, x, y, dict(p0=p0, pv=pv, pe=pe, t_add=t_add, t_write=t_write)


def test_event_log_of_vecadd_shows_each_step():
    program, x, y, at = vecadd()
    _, _, machine, raw, stopped, log = traced(program, lenient=False)
    assert raw == [] and stopped == -1
    issues = log.select(kind=E.ISSUE)
    assert issues[:, 2].tolist() == [0, 1, 2, 3]  # one ISSUE record per issue, in Plan order
    takes = log.select(kind=E.TAKE, issue=2)  # the Add takes S0E and S1E at the VXM
    assert takes[:, 0].tolist() == [at["t_add"]] * 2
    assert takes[:, 3].tolist() == [0, 1] and takes[:, 4].tolist() == [at["pv"]] * 2
    assert log.value(takes[0, 7]).view(np.int8).tolist() == x.tolist()
    (place,) = log.select(kind=E.PLACE, issue=2)
    assert place[0] == at["t_add"] + 2 and place[3] == 2  # placed at issue + latency on S2E
    assert log.value(place[7]).view(np.int8).tolist() == ((x + y + 128) % 256 - 128).tolist()
    (write,) = log.select(kind=E.SWRITE)
    assert write[0] == at["t_write"] + 1 and write[2] == 3  # commits at issue + latency
    assert len(log.select(kind=E.INIT)) == 1 and len(log.select(kind=E.VIOL)) == 0


def test_streams_at_a_mid_run_cycle_show_the_values_passing():
    program, x, y, at = vecadd()
    log = traced(program)[-1]
    t = at["t_add"]
    view = log.streams_at(t)  # both operands pass the VXM exactly when the Add issues
    assert view[(0, at["pv"])][2].view(np.int8).tolist() == x.tolist()
    assert view[(1, at["pv"])][2].view(np.int8).tolist() == y.tolist()
    assert (2, at["pv"]) not in view  # the sum is not out yet
    later = log.streams_at(t + 2 + 1)  # one cycle after it is placed, one position east
    issue, tag, data = later[(2, at["pv"] + 1)]
    assert issue == 2 and tag == default_isa().dtypes["int8"].code
    assert data.view(np.int8).tolist() == ((x + y + 128) % 256 - 128).tolist()
    # x left MEM_W0 at cycle 2: three cycles later it is three positions east, and nowhere else
    assert [k for k in log.streams_at(5) if k[0] == 0] == [(0, at["p0"] + 3)]


def test_sram_at_replays_writes_in_commit_order():
    program, x, y, at = vecadd()
    _, initial, machine, _, _, log = traced(program)
    unit = mem_ordinal(get_chip("tsp-v1"), "MEM_E0")
    commit = at["t_write"] + 1
    before, after = log.sram_at(commit), log.sram_at(commit + 1)
    assert not before[(unit, 1, 5)].any()  # a Read at the commit cycle still sees the old row
    np.testing.assert_array_equal(after[(unit, 1, 5)], machine.sram[unit, 1, 5])
    replayed = log.apply_sram(initial.sram)
    np.testing.assert_array_equal(replayed[unit], machine.sram[unit])


@pytest.mark.parametrize("seed", range(40))
def test_replay_of_random_programs_equals_the_run(seed):
    """Replaying SRAM writes to the end gives the final SRAM, every value a reader took is what
    streams_at shows there, and tracing changes nothing about the run."""
    program = random_program(random.Random(seed), "tiny", 14, (0.0, 0.05, 0.2)[seed % 3])
    plan, initial, machine, raw, stopped, log = traced(program, lenient=seed % 2 == 0)
    plain = new_machine(chip_named("tiny"), program)
    assert fast.run_plan(plan, plain, seed % 2 == 0)[:2] == (raw, stopped)
    np.testing.assert_array_equal(plain.sram, machine.sram)
    np.testing.assert_array_equal(log.apply_sram(initial.sram), machine.sram)
    for r in log.select(kind=E.TAKE).tolist():
        seen = log.streams_at(r[0]).get((r[3], r[4]))
        if r[5] < 0:
            assert seen is None
        else:
            np.testing.assert_array_equal(seen[2], log.value(r[7]))
    assert [tuple(v[3:7]) for v in log.select(kind=E.VIOL).tolist()] == [v[:1] + v[3:] for v in raw]


def test_trace_buffers_grow_when_full():
    program = random_program(random.Random(7), "tiny", 20, 0.05)
    small = traced(program, trace_capacity=(8, 2))[-1]
    big = traced(program)[-1]
    np.testing.assert_array_equal(small.events, big.events)
    np.testing.assert_array_equal(small.values, big.values)


def test_trace_buffers_grow_with_many_writes_pending():
    """24 MEM slices write (zeros: nothing on the stream) every cycle: dozens of writes pending
    at once, each recording a row before its first write, with tiny starting buffers."""
    prog = []
    for i in range(24):
        prog += [I(f"MEM_E{i}", 5, "Write", "int8", src="S3W", dst=(0, 0)),
                 I(f"MEM_E{i}", 6, "Repeat", n=9, d=1, step=1)]
    program = make_program(prog, "tsp-v1")
    small = traced(program, trace_capacity=(4, 1))
    big = traced(program)
    np.testing.assert_array_equal(small[-1].events, big[-1].events)
    np.testing.assert_array_equal(small[-1].values, big[-1].values)
    assert len(small[-1].select(kind=E.INIT)) == 240


def test_event_log_saves_and_loads(tmp_path):
    program, *_ = vecadd()
    log = traced(program)[-1]
    path = tmp_path / "run.npz"
    log.save(path)
    assert not (tmp_path / "run.npz.tmp").exists()
    back = EventLog.load(path)
    np.testing.assert_array_equal(back.events, log.events)
    np.testing.assert_array_equal(back.values, log.values)
    assert back.meta == log.meta
    assert next(iter(back)).name == "issue" and len(back) == len(log)


def test_loading_something_else_is_a_load_error(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LoadError, match="not an lpu-emu event log"):
        EventLog.load(bad)


def test_select_filters_by_kind_cycle_range_and_issue():
    program, _, _, at = vecadd()
    log = traced(program)[-1]
    t = at["t_add"]
    window = log.select(cycle=(t, t + 2))
    assert set(window[:, 0].tolist()) <= {t, t + 1, t + 2}
    assert (log.select(kind=E.TAKE, cycle=t)[:, 2] == 2).all()
    cycles = log.by_cycle()[:, 0]
    assert (np.diff(cycles) >= 0).all()
