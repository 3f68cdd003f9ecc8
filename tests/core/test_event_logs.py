"""Both cores record the same event log: record for record, in the same order, and the same value
rows byte for byte (lpu_emu/core/events.py), on the differential generator's random programs
(strict and lenient) and on the example programs. A traced run must also leave the machine as an
untraced one does (test_differential.py compares the untraced runs)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from diff_programs import chip_named, random_program

from lpu_emu.asm.assembler import assemble_file
from lpu_emu.core import events as E
from lpu_emu.core import fast, reference
from lpu_emu.core.plan import make_plan
from lpu_emu.core.state import new_machine
from lpu_emu.program import Program
from lpu_emu.spec import default_isa

PROGRAMS = sorted((Path(__file__).parents[2] / "programs").glob("*.lpu"))
VIOLATE = (0.0, 0.05, 0.2)


def describe(row: list[int]) -> str:
    return f"{E.KIND_NAMES.get(row[1], row[1])} {dict(zip(E.COLUMNS, row, strict=True))}"


def assert_logs_equal(program: Program, lenient: bool) -> E.EventLog:
    """Trace the program on both cores; the logs must be equal. Returns the reference's."""
    chip = chip_named(program.chip)
    plan = make_plan(program, chip, default_isa())
    ref_m, fast_m, plain = (new_machine(chip, program) for _ in range(3))
    ref_raw, ref_stop, ref = reference.run_plan(plan, ref_m, lenient, trace=True)
    fast_raw, fast_stop, got = fast.run_plan(plan, fast_m, lenient, trace=True)
    assert (fast_raw, fast_stop) == (ref_raw, ref_stop)
    assert reference.run_plan(plan, plain, lenient)[:2] == (ref_raw, ref_stop)
    if ref_m.sram.size <= 1 << 20:  # tracing changes nothing (a real preset: the rows written)
        np.testing.assert_array_equal(ref_m.sram, plain.sram)
    for (unit, bank, addr), row in ref.sram_at().items():  # and replay gives the final SRAM
        assert row.tobytes() == ref_m.sram[unit, bank, addr].tobytes()
        assert row.tobytes() == plain.sram[unit, bank, addr].tobytes()
    assert got.meta == ref.meta
    for i, (a, b) in enumerate(zip(ref.events.tolist(), got.events.tolist(), strict=False)):
        assert a == b, f"record {i}: reference {describe(a)}, fast {describe(b)}"
    assert len(got) == len(ref)
    assert got.values.shape == ref.values.shape
    assert got.values.tobytes() == ref.values.tobytes()
    return ref


@pytest.mark.parametrize("seed", range(240))
def test_event_logs_agree_on_tiny_chip(seed):
    program = random_program(random.Random(seed), "tiny", 1 + seed % 24, VIOLATE[seed % 3])
    for lenient in (False, True):
        assert_logs_equal(program, lenient)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("chip", ("tsp-v1", "lp30"))
def test_event_logs_agree_on_real_presets(seed, chip):
    program = random_program(random.Random(seed), chip, 1 + seed % 16, VIOLATE[seed % 3])
    for lenient in (False, True):
        assert_logs_equal(program, lenient)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
@pytest.mark.parametrize("lenient", (False, True))
def test_event_logs_agree_on_example_programs(path, lenient):
    assert_logs_equal(assemble_file(path), lenient)


def test_random_logs_hold_every_record_kind():
    """The comparison is only worth something if the programs make every kind of record."""
    kinds: set[int] = set()
    for seed in range(120):
        program = random_program(random.Random(seed), "tiny", 16, VIOLATE[seed % 3])
        kinds |= set(assert_logs_equal(program, lenient=True).events[:, 1].tolist())
    assert kinds == set(E.KIND_NAMES)
