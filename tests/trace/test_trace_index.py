"""TraceIndex against the event log's own (slow, replaying) answers, and step-back correctness:
the state after `back N` equals the state reached going forward from cycle 0, on random programs
from the differential generator."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
from trace_helpers import traced

from lpu_emu.trace.model import Traced
from lpu_emu.trace.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from diff_programs import chip_named, random_program  # noqa: E402


def streams_as_dict(t: Traced, cycle: int) -> dict:
    s = t.index.streams_at(cycle)
    return {(int(r[0]), int(r[1])): (int(r[2]), int(r[3]), t.index.log.value(int(r[4])).tolist())
            for r in s}


def replayed_streams(t: Traced, cycle: int) -> dict:
    return {k: (int(i), int(tag), v.tolist())
            for k, (i, tag, v) in t.index.log.streams_at(cycle).items()}


def sram_rows(t: Traced, cycle: int) -> dict:
    rows = t.index.log.sram_at(cycle)
    return {k: t.index.sram_row(*k, cycle).tolist() for k in rows}


def replayed_sram(t: Traced, cycle: int) -> dict:
    return {k: v.tolist() for k, v in t.index.log.sram_at(cycle).items()}


def state(t: Traced, cycle: int) -> tuple:
    """Streams and SRAM at a cycle as the views see them (from the index)."""
    return streams_as_dict(t, cycle), sram_rows(t, cycle)


def replayed(t: Traced, cycle: int) -> tuple:
    """The same, replayed from cycle 0 by the event log itself (independent of the index)."""
    return replayed_streams(t, cycle), replayed_sram(t, cycle)


def random_traced(seed: int) -> Traced:
    program = random_program(seed, n_ops=14)
    return Traced.run(program, chip_named(program.chip))


@pytest.mark.parametrize("seed", range(12))
def test_index_streams_and_sram_equal_replay_on_random_programs(seed: int) -> None:
    t = random_traced(seed)
    for cycle in range(t.last_cycle + 2):
        assert streams_as_dict(t, cycle) == replayed_streams(t, cycle), cycle
        assert sram_rows(t, cycle) == replayed_sram(t, cycle), cycle


@pytest.mark.parametrize("seed", range(12, 20))
def test_back_equals_forward_on_random_programs(seed: int) -> None:
    t = random_traced(seed)
    session = Session(t)
    forward = []
    for _ in range(t.last_cycle + 1):
        forward.append(replayed(t, session.cycle))
        session.run("step")
    rnd = random.Random(seed)
    while session.cycle > 0:
        n = rnd.randint(1, 4)
        expected = max(0, session.cycle - n)
        session.run(f"back {n}")
        assert session.cycle == expected
        assert state(t, session.cycle) == forward[session.cycle]


def test_back_lands_on_the_cycle_forward_passed() -> None:
    t = traced("repeat")
    s = Session(t)
    s.run("step 9")
    s.run("back 4")
    assert s.cycle == 5
    s.run("back 10")
    assert s.cycle == 0


def test_sram_row_of_vecadd_before_and_after_the_write() -> None:
    t = traced("vecadd")
    unit = t.mem_unit("MEM_E0")
    assert t.index.sram_row(unit, 0, 0, 7)[:8].tolist() == [0] * 8  # commits at 7: not yet
    after = t.index.sram_row(unit, 0, 0, 8).view(np.int8)[:8].tolist()
    assert after == [11, 18, 33, 36, 55, -56, -128, 127]


def test_producer_of_each_take_is_the_placing_issue() -> None:
    t = traced("vecadd")
    # the Add (issue 2) took S0E placed by issue 0 at 79 (cycle 1) and S1E by issue 1 at 80
    assert t.index.producer(np.array([0, 1]), np.array([79, 80]), np.array([1, 2])).tolist() \
        == [0, 1]
    assert t.index.producer(np.array([0]), np.array([79]), np.array([2])).tolist() == [-1]
