"""run(): chip selection, max_cycles, engines, statistics, the ISA <-> semantics link."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from core_helpers import I, Tensor, make_program, run_ref

from lpu_emu.core import ops
from lpu_emu.core.reference import Interpreter
from lpu_emu.core.run import run
from lpu_emu.errors import LoadError, LpuError, UsageError
from lpu_emu.spec import default_isa, get_chip

X = Tensor("x", "int8", (320,), ("MEM_W1",), 0, 0)
Y = Tensor("y", "int8", (320,), ("MEM_W0",), 0, 0)
Z = Tensor("z", "int8", (320,), ("MEM_E0",), 0, 0)


def vecadd(chip: str = "tsp-v1"):
    """design.md's vecadd: MEM_W1 reads at 0, MEM_W0 at 1, Add at 3, Write at 6 (lands at 7)."""
    return make_program([
        I("MEM_W1", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_W0", 1, "Read", "int8", src=(0, 0), dst="S1E"),
        I("VXM0", 3, "Add", "int8", x="S0E", y="S1E", z="S2E"),
        I("MEM_E0", 6, "Write", "int8", src="S2E", dst=(0, 0)),
    ], chip=chip, tensors=[X, Y, Z], data={"x": np.arange(320) % 50, "y": np.full(320, 2)})


@pytest.mark.parametrize("chip", ["tsp-v1", "lp30"])
def test_vecadd_on_both_presets(chip):
    r = run_ref(vecadd(chip))
    assert r.violations == [] and r.cycles == 7 and not r.stopped
    assert (r.tensor("z") == np.arange(320) % 50 + 2).all()
    assert r.seconds == 7 / get_chip(chip).clock_hz


def test_stats_by_hand():
    s = run_ref(vecadd()).stats
    assert s.cycles == 7 and s.seconds == 7 / 900e6
    assert (s.busy["MEM_W1"], s.busy["VXM0"], s.busy["VXM1"], s.busy["MEM_E0"]) == (1, 1, 0, 1)
    assert s.utilization["VXM0"] == 1 / 7
    assert s.kind_utilization["MEM"] == 3 / (7 * 88)  # 3 busy cycles over 88 MEM queues
    assert s.kind_utilization["VXM"] == 1 / (7 * 16)
    assert (s.sram_bytes_read, s.sram_bytes_written) == (640, 320)
    assert s.sram_bytes_per_s == 960 / (7 / 900e6)
    assert s.sram_peak_bytes_per_s == 88 * 320 * 2 * 900e6
    assert s.mxm_ops == 0 and s.mxm_fraction == 0


def test_mxm_stats_count_two_ops_per_mac():
    # two ACCs, one int8 and one fp16 (no weights: lenient); 2 * 320 * 320 ops each
    prog = make_program([
        I("MXM_W0", 0, "ACC", "int8", x="S0W", z="S4E", acc=0),
        I("MXM_W0", 1, "ACC", "fp16", x="S0W", z="S8E", acc=1),
    ])
    s = run_ref(prog, lenient=True).stats
    assert s.cycles == 25 and (s.mxm_int8_ops, s.mxm_fp16_ops) == (204800, 204800)
    assert s.mxm_int8_ops_per_s == 204800 / (25 / 900e6)
    assert s.mxm_int8_peak_ops_per_s == 4 * 320 * 320 * 2 * 900e6  # 4 planes, 1 MAC each
    peak16 = get_chip("tsp-v1").mxm_fp16_ops_per_s  # the preset's published fp16 ratio
    assert s.mxm_fp16_peak_ops_per_s == peak16
    per_s = 204800 / (25 / 900e6)
    assert s.mxm_fraction == pytest.approx(per_s / (4 * 320 * 320 * 2 * 900e6) + per_s / peak16)


def test_stats_of_a_stopped_run_count_issues_before_the_stop():
    # the Add at 3 misses y (its Read was removed): strict stops there; 1 Read ran
    prog = make_program([
        I("MEM_W1", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("VXM0", 3, "Add", "int8", x="S0E", y="S1E", z="S2E"),
        I("MEM_E0", 6, "Write", "int8", src="S2E", dst=(0, 0)),
    ], tensors=[X, Z])
    r = run_ref(prog)
    assert r.stopped and r.cycles == 3
    assert (r.stats.sram_bytes_read, r.stats.sram_bytes_written) == (320, 0)
    assert r.stats.busy["VXM0"] == 0


def test_max_cycles_refuses_a_longer_program():
    with pytest.raises(UsageError) as e:
        run_ref(vecadd(), max_cycles=6)
    assert e.value.message == "the program runs 7 cycles, more than max_cycles 6"
    assert e.value.exit_code == 2
    assert run_ref(vecadd(), max_cycles=7).cycles == 7


def test_a_program_for_another_chip_is_a_load_error():
    with pytest.raises(LoadError, match="assembled for chip 'tsp-v1', not 'lp30'"):
        run_ref(vecadd("tsp-v1"), chip="lp30")
    assert run_ref(vecadd("tsp-v1"), chip=get_chip("tsp-v1")).cycles == 7


def test_unknown_engine():
    with pytest.raises(UsageError, match="unknown engine 'turbo'"):
        run(vecadd(), engine="turbo")


def test_missing_fast_core_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpu_emu.core.fast", None)  # as if it were not installed
    with pytest.raises(LpuError) as e:
        run(vecadd(), engine="fast")
    assert "fast core" in e.value.message and "reference" in e.value.hint


def test_a_missing_lane_map_is_a_load_error():
    prog = make_program([I("SXM_W0", 0, "Permute", "int8", x="S0W", map=2, z="S1E")])
    with pytest.raises(LoadError, match=r"t.lpu:1: instruction 0: lane map 2 does not exist "
                       r"\(the program has 0\)"):
        run_ref(prog)


def test_every_instruction_has_semantics_and_an_interpreter_step():
    """Adding an instruction to isa/lpu.toml without its semantics function fails here."""
    isa = default_isa()
    missing = [i.mnemonic for i in isa.instructions if ops.semantics(i.slice, i.mnemonic) is None]
    assert missing == []
    steps = [i.mnemonic for i in isa.instructions
             if i.slice != "ICU" and not hasattr(Interpreter, f"op_{i.mnemonic.lower()}")]
    assert steps == []
    # and no semantics function without an instruction
    names = {(i.slice, i.mnemonic.lower()) for i in isa.instructions}
    for kind, module in ops.MODULES.items():
        public = {n for n, f in vars(module).items() if callable(f) and not n.startswith("_")
                  and getattr(f, "__module__", "") == module.__name__}
        helpers = {"land", "weights_for", "weight_values"}  # MXM state helpers, not instructions
        assert {n for n in public - helpers if (kind, n) not in names} == set(), kind


def test_a_plan_made_once_runs_many_times():
    from lpu_emu.core.plan import make_plan
    prog, chip = vecadd(), get_chip("tsp-v1")
    plan = make_plan(prog, chip, default_isa())
    inputs = {"y": np.full(320, 5, np.int8)}
    for engine in ("reference", "fast"):
        r = run(prog, chip, inputs=inputs, engine=engine, plan=plan)
        assert r.cycles == 7 and (r.tensor("z") == np.arange(320) % 50 + 5).all()


def test_a_plan_of_another_program_is_refused():
    from lpu_emu.core.plan import make_plan
    chip = get_chip("tsp-v1")
    plan = make_plan(vecadd(), chip, default_isa())
    with pytest.raises(UsageError) as e:
        run(vecadd(), chip, plan=plan)
    assert (e.value.message, e.value.hint) == (
        "the plan is of another program or chip (tsp-v1), not of this program for tsp-v1",
        "make it with make_plan")


def test_a_given_plan_still_obeys_max_cycles():
    from lpu_emu.core.plan import make_plan
    prog, chip = vecadd(), get_chip("tsp-v1")
    plan = make_plan(prog, chip, default_isa())
    with pytest.raises(UsageError) as e:
        run(prog, chip, plan=plan, max_cycles=6)
    assert e.value.message == "the program runs 7 cycles, more than max_cycles 6"


def _accs(n: int, dtype: str):
    """n ACCs on MXM_W0, one every 2 cycles (no weights: lenient)."""
    return make_program([I("MXM_W0", 2 * k, "ACC", dtype, x="S0W", z="S4E", acc=0)
                         for k in range(n)])


def test_auto_weighs_a_float_acc_as_300_issues():
    from lpu_emu.core.plan import make_plan
    from lpu_emu.core.run import AUTO_REFERENCE_ISSUES, pick_engine, reference_cost
    isa, chip = default_isa(), get_chip("tsp-v1")
    plans = {d: make_plan(_accs(7, d), chip, isa) for d in ("int8", "fp16", "bf16")}
    assert [reference_cost(p, isa) for p in plans.values()] == [7, 2100, 2100]
    assert AUTO_REFERENCE_ISSUES == 2000
    assert [pick_engine("auto", p, isa) for p in plans.values()] == ["reference", "fast", "fast"]
    assert pick_engine("reference", plans["fp16"], isa) == "reference"
