"""The fast core against the reference interpreter, on random programs (diff_programs.py).

Both cores run the same Plan on fresh Machines, strict and lenient; they must agree on the raw
violations (kinds, issues, cycles, coordinates, order), where a strict run stops, the final SRAM
and every MXM array. Most examples use the toy chip tests/core/chips/tiny.toml (32 lanes, short
latencies: thousands of programs in seconds); some use the real presets (320 lanes, real widths
and latencies). CI runs 2,200 random programs (each strict and lenient) and the example
programs; `LPU_SLOW=1 pytest -m slow` runs many more.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
from diff_programs import chip_named, random_program
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpu_emu.asm.assembler import assemble_file
from lpu_emu.core import fast, reference
from lpu_emu.core.plan import OP, UNIT, make_plan
from lpu_emu.core.state import new_machine
from lpu_emu.program import Program
from lpu_emu.spec import default_isa

PROGRAMS = sorted((Path(__file__).parents[2] / "programs").glob("*.lpu"))
MXM_ARRAYS = ("wbuf", "wbuf_rows", "weights", "weights_at", "pending", "pending_at", "acc")
SLOW = os.environ.get("LPU_SLOW") == "1"
# The program is a function of a seed (the generator draws thousands of random bytes, too much
# for hypothesis to record and shrink); a failure reports the seed, n_ops and violate, and
# random_program(random.Random(seed), chip, n_ops, violate) rebuilds the program.
SEEDS = st.integers(0, 2**32 - 1)


def assert_cores_agree(program: Program, lenient: bool) -> tuple[list, int]:
    """Run both cores; assert identical results; return the reference's (violations, stopped)."""
    isa = default_isa()
    chip = chip_named(program.chip)
    plan = make_plan(program, chip, isa)
    ref, fst = new_machine(chip, program), new_machine(chip, program)
    raw_ref, stop_ref, _ = reference.run_plan(plan, ref, lenient)
    raw_fast, stop_fast, _ = fast.run_plan(plan, fst, lenient)
    assert raw_fast == raw_ref
    assert stop_fast == stop_ref
    if ref.sram.size <= 1 << 20:
        np.testing.assert_array_equal(fst.sram, ref.sram)
    else:  # a real preset: compare the slices the program writes (the rest stays untouched)
        writes = [isa.lookup(m).opcode for m in ("Write", "Scatter")]
        for unit in set(plan.issues[np.isin(plan.issues[:, OP], writes), UNIT].tolist()):
            np.testing.assert_array_equal(fst.sram[unit], ref.sram[unit])
    for name in MXM_ARRAYS:
        np.testing.assert_array_equal(getattr(fst, name), getattr(ref, name), err_msg=name)
    return raw_ref, stop_ref


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _check(seed: int, chip: str, n_ops: int, violate: float) -> None:
    program = random_program(random.Random(seed), chip, n_ops, violate)
    for lenient in (False, True):
        assert_cores_agree(program, lenient)


@_settings(1900)
@given(SEEDS, st.integers(1, 24), st.sampled_from((0.0, 0.05, 0.2)))
def test_fast_core_matches_reference_on_tiny_chip(seed, n_ops, violate):
    _check(seed, "tiny", n_ops, violate)


@_settings(200)
@given(SEEDS, st.integers(1, 16), st.sampled_from((0.0, 0.05, 0.2)))
def test_fast_core_matches_reference_on_tsp_v1(seed, n_ops, violate):
    _check(seed, "tsp-v1", n_ops, violate)


@_settings(100)
@given(SEEDS, st.integers(1, 16), st.sampled_from((0.0, 0.05, 0.2)))
def test_fast_core_matches_reference_on_lp30(seed, n_ops, violate):
    _check(seed, "lp30", n_ops, violate)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
@pytest.mark.parametrize("lenient", (False, True))
def test_fast_core_matches_reference_on_example_programs(path, lenient):
    assert_cores_agree(assemble_file(path), lenient)


def test_random_programs_cover_every_violation_kind_and_slice():
    """The generator is only useful if it reaches everything: every violation kind in some
    program, and every slice kind issuing."""
    kinds, ops = set(), set()
    for seed in range(300):
        program = random_program(seed, "tiny", 16, (0.0, 0.05, 0.2)[seed % 3])
        raw, _ = assert_cores_agree(program, lenient=True)
        kinds |= {v[0] for v in raw}
        ops |= {default_isa().by_opcode()[int(w) & 0xFF].slice for w in program.word}
    assert kinds == set(range(1, 10))
    assert ops == {"ICU", "MEM", "VXM", "MXM", "SXM", "C2C"}


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="set LPU_SLOW=1")
@_settings(40_000)
@given(SEEDS, st.integers(1, 40), st.sampled_from((0.0, 0.02, 0.1, 0.3)))
def test_fast_core_matches_reference_many(seed, n_ops, violate):
    _check(seed, ("tiny", "tiny", "tiny", "tsp-v1", "lp30")[seed % 5], n_ops, violate)
