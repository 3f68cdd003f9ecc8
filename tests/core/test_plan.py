"""The vectorised Plan (lpu_emu/core/plan.py + decode.py) against the per-instruction oracle.

tests/core/plan_oracle.py is the Plan builder as it was before the decoder was vectorised (one
Python row per instruction, Repeats copied row by row); on every program both accept, the two
must give the same issue table and cycle count, cell for cell.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from core_helpers import I, make_program
from diff_programs import chip_named, random_program
from plan_oracle import oracle_plan

from lpu_emu.asm.assembler import assemble_file
from lpu_emu.core.plan import NCOL, make_plan
from lpu_emu.spec import default_isa, get_chip

PROGRAMS = sorted((Path(__file__).parents[2] / "programs").glob("*.lpu"))


def assert_plans_equal(program, chip) -> None:
    isa = default_isa()
    new, old = make_plan(program, chip, isa), oracle_plan(program, chip, isa)
    assert new.issues.shape == old.issues.shape
    assert new.issues.dtype == np.int64 and new.issues.flags.c_contiguous
    np.testing.assert_array_equal(new.issues, old.issues)
    assert new.cycles == old.cycles


@pytest.mark.parametrize("chip", ["tiny", "tsp-v1", "lp30"])
@pytest.mark.parametrize("violate", [0.0, 0.2])
def test_plan_equals_oracle_on_random_programs(chip, violate):
    for seed in range(60 if chip == "tiny" else 15):
        program = random_program(random.Random(seed), chip, 1 + seed % 24, violate)
        assert_plans_equal(program, chip_named(chip))


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_plan_equals_oracle_on_example_programs(path):
    program = assemble_file(path)
    assert_plans_equal(program, get_chip(program.chip))


def test_plan_equals_oracle_on_chained_repeats_sync_and_addresses():
    """Repeat of a Repeat (the address continues from the last repetition), a queue busy after a
    Sync, an unreleased Sync, an address pushed out of the bank by a step, interleaved queues."""
    prog = make_program([
        I("MEM_W0", 0, "Read", "int8", src=(1, 4090), dst="S0E"),
        I("MEM_W1", 1, "Sync"),
        I("MEM_W0", 1, "Repeat", n=2, d=2, step=2),
        I("MEM_W1", 2, "Read", "int8", src=(0, 0), dst="S1E"),
        I("MEM_W0", 5, "Repeat", n=3, d=1, step=-1),
        I("MEM_E0", 3, "Notify"),
        I("MEM_E1", 9, "Sync"),
        I("VXM0", 4, "NOP", n=3),
        I("VXM0", 5, "Repeat", n=2, d=3),
    ])
    assert_plans_equal(prog, get_chip("tsp-v1"))
    plan = make_plan(prog, get_chip("tsp-v1"), default_isa())
    # MEM_W0 reads 4090, 4092, 4094 (Repeat n=2 step 2), then 4093, 4092, 4091 (step -1 from 4094)
    reads = plan.issues[plan.issues[:, 5] == get_chip("tsp-v1").slice_named("MEM_W0").index]
    assert reads[:, 15].tolist() == [4090, 4092, 4094, 4093, 4092, 4091]
    assert reads[:, 0].tolist() == [0, 1, 3, 5, 6, 7]
    assert plan.issues.shape[1] == NCOL


def test_empty_program_plan():
    plan = make_plan(make_program([]), get_chip("tsp-v1"), default_isa())
    assert plan.issues.shape == (0, NCOL) and plan.cycles == 0
