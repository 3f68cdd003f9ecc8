"""Timing: exact cycle counts worked out by hand, and stream values passing the right positions
at the right cycles (tsp-v1: MEM_W{k} at 46 - k, VXM at 47, MEM_E{k} at 48 + k)."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import I, Tensor, make_program, run_ref

from lpu_emu.core.plan import make_plan
from lpu_emu.spec import default_isa, get_chip

LANES = np.arange(320)
XV = LANES % 90 + 1


def cycles_of(instrs) -> int:
    return make_plan(make_program(instrs), get_chip("tsp-v1"), default_isa()).cycles


def test_plan_cycles_by_hand():
    # the last effect lands at max(issue + max(latency, occupancy))
    assert cycles_of([I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E")]) == 1
    assert cycles_of([I("MXM_W0", 5, "IW")]) == 25  # latency 20
    assert cycles_of([I("MEM_W0", 3, "NOP", n=10)]) == 13  # occupancy 10
    assert cycles_of([I("VXM0", 2, "Exp", "fp32", x="S0E", z="S4E")]) == 6  # latency 4
    assert cycles_of([I("C2C_E", 1, "Deskew", link=0)]) == 5  # occupancy 4
    assert cycles_of([I("C2C_E", 1, "Send", "int8", src="S0E", link=0)]) == 201  # link 200
    # Repeat 3, 2: repetitions at 10, 12, 14; the last Read lands at 15
    assert cycles_of([I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E"),
                      I("MEM_W0", 10, "Repeat", n=3, d=2, step=1)]) == 15


def watch_program(writes: list[tuple[str, int]], west: bool = False):
    """x leaves MEM_W0 (46) at cycle 1 on S3E (or MEM_E0 (48) on S3W); each (slice, cycle)
    in `writes` writes what passes it then to bank 1, address k."""
    src = "MEM_E0" if west else "MEM_W0"
    s = "S3W" if west else "S3E"
    x = Tensor("x", "int8", (320,), (src,), 0, 0)
    tensors = [x] + [Tensor(f"w{k}", "int8", (320,), (q,), 1, k) for k, (q, _) in
                     enumerate(writes)]
    prog = [I(src, 0, "Read", "int8", src=(0, 0), dst=s)]
    prog += [I(q, c, "Write", "int8", src=s, dst=(1, k)) for k, (q, c) in enumerate(writes)]
    prog.sort(key=lambda i: i.cycle)
    return make_program(prog, tensors=tensors, data={"x": XV})


def test_a_value_passes_each_position_one_cycle_later():
    # placed at (46, 1): at 48 at 3, at 53 at 8, at 58 at 13, at 91 (MEM_E43) at 46
    r = run_ref(watch_program([("MEM_E0", 3), ("MEM_E5", 8), ("MEM_E10", 13), ("MEM_E43", 46)]))
    assert r.violations == []
    for k in range(4):
        assert (r.tensor(f"w{k}") == XV).all()


def test_a_westward_value_passes_each_position_one_cycle_later():
    # placed at (48, 1): at 47 at 2, at MEM_W0 (46) at 3, at MEM_W5 (41) at 8, MEM_W43 (3) at 46
    r = run_ref(watch_program([("MEM_W0", 3), ("MEM_W5", 8), ("MEM_W43", 46)], west=True))
    assert r.violations == []
    for k in range(3):
        assert (r.tensor(f"w{k}") == XV).all()


@pytest.mark.parametrize("west", [False, True])
@pytest.mark.parametrize("offset", [-1, 1])
def test_a_consumer_one_cycle_off_gets_no_value(offset, west):
    q, c = ("MEM_W5", 8) if west else ("MEM_E5", 8)
    r = run_ref(watch_program([(q, c + offset)], west=west))
    s = "S3W" if west else "S3E"
    pos = 41 if west else 53
    src = "MEM_E0" if west else "MEM_W0"
    when = "1 cycle later" if offset < 0 else "1 cycle earlier"  # the value passes at c
    assert [v.message for v in r.violations] == [
        f"cycle {c + offset}: {q}: no-value: nothing passes on stream {s} at position {pos}; "
        f"{s} from {src} (t.lpu:1) passes it at cycle {c}: {when} (t.lpu:2)"]


def test_the_producer_sees_its_own_placement_but_upstream_does_not():
    # placed at (46, 1): MEM_W0 itself sees it at 1; MEM_W1 (45, upstream) sees nothing at 0
    r = run_ref(watch_program([("MEM_W0", 1)]))
    assert r.violations == [] and (r.tensor("w0") == XV).all()
    r = run_ref(watch_program([("MEM_W1", 0)]))
    assert [v.kind for v in r.violations] == ["no-value"]


def test_a_downstream_placement_replaces_the_value_from_there_on():
    # x from MEM_W0 on S3E is at (50, 5) when MEM_E2 (50) places y on S3E there (its Read at 4,
    # latency 1): MEM_E1 (49) at 4 still sees x, MEM_E4 (52) at 7 sees y.
    x = Tensor("x", "int8", (320,), ("MEM_W0",), 0, 0)
    y = Tensor("y", "int8", (320,), ("MEM_E2",), 0, 0)
    a = Tensor("a", "int8", (320,), ("MEM_E1",), 1, 0)
    b = Tensor("b", "int8", (320,), ("MEM_E4",), 1, 0)
    prog = make_program([
        I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S3E"),
        I("MEM_E2", 4, "Read", "int8", src=(0, 0), dst="S3E"),
        I("MEM_E1", 4, "Write", "int8", src="S3E", dst=(1, 0)),
        I("MEM_E4", 7, "Write", "int8", src="S3E", dst=(1, 0)),
    ], tensors=[x, y, a, b], data={"x": XV, "y": -XV})
    r = run_ref(prog)
    assert r.violations == []
    assert (r.tensor("a") == XV).all() and (r.tensor("b") == -XV).all()


def test_alus_chain_at_one_position():
    # x at the VXM (47) at 2; VXM0 Neg (lat 1) places -x at (47, 3); VXM1 AddI reads it there at
    # 3 (lat 2) -> (47, 5) -> MEM_E0 (48) at 6.
    x = Tensor("x", "int8", (320,), ("MEM_W0",), 0, 0)
    z = Tensor("z", "int8", (320,), ("MEM_E0",), 0, 0)
    prog = make_program([
        I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("VXM0", 2, "Neg", "int8", x="S0E", z="S1E"),
        I("VXM1", 3, "AddI", "int8", x="S1E", imm=10, z="S2E"),
        I("MEM_E0", 6, "Write", "int8", src="S2E", dst=(0, 0)),
    ], tensors=[x, z], data={"x": XV})
    r = run_ref(prog)
    assert r.violations == [] and r.cycles == 7
    assert (r.tensor("z") == 10 - XV).all()


def test_repeat_issues_every_d_cycles_with_the_address_step():
    # Read x[0] at 0, then Repeat 3, 2, 1: x[1] at 10, x[2] at 12, x[3] at 14; each passes
    # MEM_E0 two cycles after it is placed (46 -> 48): Writes at 3, 13, 15, 17.
    x = Tensor("x", "int8", (4, 320), ("MEM_W0",), 0, 0)
    z = Tensor("z", "int8", (4, 320), ("MEM_E0",), 0, 0)
    data = np.arange(4)[:, None] * 10 + LANES[None] % 7
    prog = make_program([
        I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_W0", 10, "Repeat", n=3, d=2, step=1),
        I("MEM_E0", 3, "Write", "int8", src="S0E", dst=(0, 0)),
        I("MEM_E0", 13, "Write", "int8", src="S0E", dst=(0, 1)),
        I("MEM_E0", 15, "Repeat", n=2, d=2, step=1),
    ], tensors=[x, z], data={"x": data})
    r = run_ref(prog)
    assert r.violations == [] and r.cycles == 18
    assert (r.tensor("z") == data).all()


def test_ifetch_config_and_deskew_only_spend_their_issue_slot():
    prog = make_program([
        I("MEM_W0", 0, "Ifetch"),
        I("MEM_W0", 1, "Config", value=0x1234),
        I("C2C_W", 0, "Deskew", link=2),
        I("C2C_W", 4, "Deskew", link=2),  # Deskew occupies its queue 4 cycles: 4 is free
    ])
    r = run_ref(prog)
    assert r.violations == [] and r.cycles == 8
    assert r.stats.busy["MEM_W0"] == 2 and r.stats.busy["C2C_W"] == 8
