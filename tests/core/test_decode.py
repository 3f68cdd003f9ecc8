"""Hostile words: every field a core uses as an index is validated when a Program becomes a Plan
(lpu_emu/core/decode.py), so a bad word is a LoadError naming the instruction and its source line,
on both cores, and no core ever indexes with it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from core_helpers import I, make_program, word

from lpu_emu.asm.operands import PRESET_BOUNDS
from lpu_emu.core.decode import CHIP_BOUNDS, MAX_CYCLE
from lpu_emu.core.plan import make_plan
from lpu_emu.core.run import run
from lpu_emu.errors import LoadError, UsageError
from lpu_emu.spec import default_isa, get_chip

READ = I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E")


def load_error(instrs, engine: str = "reference", **kw) -> str:
    prog = make_program(instrs, **kw)
    with pytest.raises(LoadError) as e:
        run(prog, engine=engine)
    return e.value.message


def with_word(instrs, k: int, value: int):
    prog = make_program(instrs)
    prog.word[k] = np.uint64(value)
    return prog


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_mxm_words_on_a_mem_queue_are_a_load_error_on_both_cores(engine):
    msg = load_error([READ, I("MEM_W1", 2, "ACC", "int8", x="S0E", z="S4E", acc=0)], engine)
    assert msg == "t.lpu:2: instruction 1: ACC is a MXM instruction; MEM_W1 is a MEM queue"
    msg = load_error([I("MEM_W3", 0, "ABC", acc=1)], engine)
    assert msg == "t.lpu:1: instruction 0: ABC is a MXM instruction; MEM_W3 is a MEM queue"


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_a_bank_past_the_preset_is_a_load_error_on_both_cores(engine):
    msg = load_error([I("MEM_W0", 0, "Read", "int8", src=(3, 0), dst="S0E")], engine)
    assert msg == ("t.lpu:1: instruction 0: bank 3 does not exist: MEM slices of tsp-v1 have "
                   "2 banks (0..1)")


def test_streams_past_the_preset_or_misaligned():
    assert load_error([I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S40E")]) == (
        "t.lpu:1: instruction 0: Read dst: stream S40E does not exist: tsp-v1 has 32 streams "
        "per direction")
    assert load_error([I("VXM0", 3, "Add", "fp32", x="S2E", y="S4E", z="S8W")]) == (
        "t.lpu:1: instruction 0: Add x: S2E cannot start a 4-stream group: the index must be a "
        "multiple of 4")
    assert load_error([I("SXM_W0", 3, "Transpose", "int8", x="S16W", z="S31E")]) == (
        "t.lpu:1: instruction 0: Transpose z: S31E cannot start a 16-stream group: the index "
        "must be a multiple of 16")


def test_accumulator_link_and_lane_map_past_their_range():
    assert load_error([I("MXM_W0", 0, "ABC", acc=64)]) == (
        "t.lpu:1: instruction 0: accumulator 64 is out of range: tsp-v1 has 64 accumulators per "
        "MXM plane (0..63)")
    assert load_error([I("C2C_W", 0, "Deskew", link=8)]) == (
        "t.lpu:1: instruction 0: link 8 does not exist: tsp-v1 has 8 C2C links per edge")
    assert load_error([I("SXM_E1", 0, "Distribute", "int8", x="S0W", map=0, z="S1E")]) == (
        "t.lpu:1: instruction 0: lane map 0 does not exist (the program has 0)")


def test_large_alu_operand_minimum_and_cycle():
    assert load_error([I("VXM1", 0, "Exp", "fp32", x="S0E", z="S4E")]) == (
        "t.lpu:1: instruction 0: Exp needs a large ALU; VXM1 is not one on tsp-v1 (large ALUs: "
        "VXM0, VXM5, VXM10, VXM15)")
    assert load_error([I("VXM1", 0, "NOP", n=0)]) == (
        "t.lpu:1: instruction 0: NOP n must be at least 1, got 0")
    assert load_error([READ, I("MEM_W0", 1, "Repeat", n=1, d=0)]) == (
        "t.lpu:2: instruction 1: Repeat d must be at least 1, got 0")
    assert load_error([I("VXM1", -5, "Sync")]) == (
        f"t.lpu:1: instruction 0: issue cycle -5 is outside 0..{MAX_CYCLE}")


def test_undecodable_words_and_foreign_queues():
    isa = default_isa()
    add = word(I("VXM0", 0, "Add", "int8", x="S0E", y="S1E", z="S2E"))
    prog = with_word([READ, READ], 1, 0xEE)
    with pytest.raises(LoadError, match=r"^error: t.lpu:2: instruction 1: cannot be decoded: "
                                        r"unknown opcode 0xee$"):
        make_plan(prog, get_chip("tsp-v1"), isa)
    prog = with_word([READ], 0, add | (1 << 63))
    with pytest.raises(LoadError, match=r"instruction 0: cannot be decoded: Add: stray bits "
                                        r"0x8000000000000000 set in the word"):
        make_plan(prog, get_chip("tsp-v1"), isa)
    prog = with_word([READ], 0, (add & ~0xF00) | (9 << 8))
    with pytest.raises(LoadError, match="cannot be decoded: Add: dtype code 9 is not allowed"):
        make_plan(prog, get_chip("tsp-v1"), isa)
    prog = make_program([READ])
    prog.queue[0] = 999
    with pytest.raises(LoadError, match="instruction 0: queue index 999 is not a slice of tsp-v1"):
        make_plan(prog, get_chip("tsp-v1"), isa)


def test_the_first_bad_instruction_is_reported():
    """Faults found in different passes (by opcode): the lowest instruction index wins."""
    msg = load_error([READ, I("VXM1", 2, "NOP", n=0), I("MEM_W1", 3, "ABC", acc=0),
                      I("MEM_W0", 4, "Read", "int8", src=(3, 0), dst="S0E")])
    assert msg.startswith("t.lpu:2: instruction 1: NOP n must be")


def test_a_repeat_with_nothing_before_it():
    assert load_error([I("MEM_W0", 1, "Repeat", n=1, d=1), READ]) == (
        "t.lpu:1: instruction 0: Repeat has no previous instruction on its queue")


def test_chip_bounds_mirror_the_assemblers():
    assert {k: v for k, v in PRESET_BOUNDS.items() if k in CHIP_BOUNDS} == CHIP_BOUNDS


# ---- bounded work before any run (issue 11, point 3) ----
def big_repeats(count: int = 50):
    """A few words asking for count * 65535 issues, and cycles to match."""
    prog = [READ]
    for k in range(count):
        prog.append(I("MEM_W0", 1 + k * 70_000, "Repeat", n=65_535, d=1))
    return make_program(prog)


def test_max_issues_refuses_large_repeats_before_expanding():
    prog = big_repeats()
    t0 = time.perf_counter()
    with pytest.raises(UsageError) as e:
        run(prog, engine="reference", max_issues=1_000_000)
    assert time.perf_counter() - t0 < 0.5
    assert e.value.message == (
        "the program expands to 3,276,751 issues (Repeats included, 0.5 GiB of Plan), more than "
        "max_issues 1,000,000")
    assert "--max-issues" in e.value.hint


def test_the_default_cap_admits_compiled_program_sizes_and_refuses_huge_expansions():
    with pytest.raises(UsageError, match="more than max_issues 20,000,000"):
        make_plan(big_repeats(400), get_chip("tsp-v1"), default_isa())
    plan = make_plan(big_repeats(3), get_chip("tsp-v1"), default_isa())
    assert len(plan) == 1 + 3 * 65_535


def test_max_cycles_is_computed_before_expanding():
    prog = big_repeats(400)
    with pytest.raises(UsageError) as e:
        make_plan(prog, get_chip("tsp-v1"), default_isa(), max_cycles=10**6)
    # the last Repeat issues at 1 + 399 * 70000 and its 65535th repetition 65534 cycles later;
    # a Read's latency is 1
    assert e.value.message == (f"the program runs {1 + 399 * 70_000 + 65_534 + 1} cycles, more "
                               "than max_cycles 1000000")
