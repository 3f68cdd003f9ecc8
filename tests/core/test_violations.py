"""One program per violation class: the exact message (cycle, queue, stream or address, source
line), where a strict run stops, and what a lenient run continues with (docs/design.md section 7).

tsp-v1 positions: MEM_W1 45, MEM_W0 46, VXM 47, MEM_E0 48, MEM_E1 49. Source lines are the
instructions' 1-based indices in each list.
"""

from __future__ import annotations

import numpy as np
from core_helpers import I, Tensor, make_program, run_ref

LANES = np.arange(320)
X = Tensor("x", "int8", (320,), ("MEM_W0",), 0, 0)
Z = Tensor("z", "int8", (320,), ("MEM_E0",), 0, 0)
XV = LANES % 100 - 50


def messages(result) -> list[str]:
    return [v.message for v in result.violations]


# ---- no-value ----
def no_value_program():
    # x leaves MEM_W0 at 1 and passes the VXM (47) at 2; Add at 2 also wants S4E: nothing there.
    # Its sum (lat 2) is at (47, 4), at MEM_E0 at 5.
    return make_program([
        I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("VXM0", 2, "Add", "int8", x="S0E", y="S4E", z="S2E"),
        I("MEM_E0", 5, "Write", "int8", src="S2E", dst=(0, 0)),
    ], tensors=[X, Z], data={"x": XV})


def test_no_value_message_and_strict_stop():
    r = run_ref(no_value_program())
    assert messages(r) == [
        "cycle 2: VXM0: no-value: nothing passes on stream S4E at position 47; nothing is ever "
        "placed on S4E upstream of position 47 (t.lpu:2)"]
    v = r.violations[0]
    assert (v.kind, v.cycle, v.queue, v.source, v.stream, v.position) == (
        "no-value", 2, "VXM0", "t.lpu:2", "S4E", 47)
    assert r.stopped and r.cycles == 2
    assert (r.tensor("z") == 0).all()  # the Write never ran


def test_no_value_reads_zeros_in_lenient_mode():
    r = run_ref(no_value_program(), lenient=True)
    assert [v.kind for v in r.violations] == ["no-value"]
    assert not r.stopped and r.cycles == 6
    assert (r.tensor("z") == XV).all()  # x + 0


# ---- two-producers ----
def two_producers_program():
    # VXM0 and VXM1 (both at 47) each copy x (passing at 2) onto S2E with Mov (lat 1) and Neg
    # (lat 1): both place S2E at (47, 3). MEM_E0 writes what passes at 4.
    return make_program([
        I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("VXM0", 2, "Mov", "int8", x="S0E", z="S2E"),
        I("VXM1", 2, "Neg", "int8", x="S0E", z="S2E"),
        I("MEM_E0", 4, "Write", "int8", src="S2E", dst=(0, 0)),
    ], tensors=[X, Z], data={"x": XV})


def test_two_producers_message():
    r = run_ref(two_producers_program())
    assert messages(r) == [
        "cycle 2: VXM1: two-producers: stream S2E gets a second value at position 47 at cycle 3"
        " (the first from VXM0, t.lpu:2) (t.lpu:3)"]
    assert r.stopped and r.cycles == 2


def test_two_producers_later_one_wins_in_lenient_mode():
    r = run_ref(two_producers_program(), lenient=True)
    assert [v.kind for v in r.violations] == ["two-producers"]
    assert (r.tensor("z") == -XV).all()  # Neg (VXM1) comes later in program order


# ---- bank-conflict ----
def bank_conflict_program(read_bank: int = 0):
    # MEM_W0 writes what passes on S0W at 3 (MEM_E0's Read at 0 -> at 48 at 1 -> at 46 at 3);
    # the write lands at 4, when MEM_W0 also reads bank `read_bank` onto S1E: at MEM_E1 (49)
    # at 8.
    y = Tensor("y", "int8", (320,), ("MEM_E0",), 0, 0)
    return make_program([
        I("MEM_E0", 0, "Read", "int8", src=(0, 0), dst="S0W"),
        I("MEM_W0", 3, "Write", "int8", src="S0W", dst=(0, 0)),
        I("MEM_W0", 4, "Read", "int8", src=(read_bank, 0), dst="S1E"),
        I("MEM_E1", 8, "Write", "int8", src="S1E", dst=(0, 0)),
    ], tensors=[X, y, Tensor("out", "int8", (320,), ("MEM_E1",), 0, 0)],
        data={"x": XV, "y": XV + 1})


def test_bank_conflict_message():
    r = run_ref(bank_conflict_program())
    assert messages(r) == [
        "cycle 4: MEM_W0: bank-conflict: bank 0 is read at cycle 4, when a write lands in it"
        " (the other from t.lpu:2) (t.lpu:3)"]
    v = r.violations[0]
    assert (v.bank, v.queue, v.cycle) == (0, "MEM_W0", 4)


def test_bank_conflict_read_sees_old_data_in_lenient_mode():
    r = run_ref(bank_conflict_program(), lenient=True)
    assert [v.kind for v in r.violations] == ["bank-conflict"]
    assert (r.tensor("out") == XV).all()  # the old x, not y
    assert (r.tensor("x") == XV + 1).all()  # and the write went through


def test_other_bank_is_no_conflict():
    r = run_ref(bank_conflict_program(read_bank=1))
    assert r.violations == []


def test_two_writes_landing_together_conflict():
    # Scatter (lat 2) at 3 and Write (lat 1) at 4 both land in MEM_W0 bank 0 at 5
    y = Tensor("y", "int8", (320,), ("MEM_E0",), 0, 0)
    r = run_ref(make_program([
        I("MEM_E0", 0, "Read", "int8", src=(0, 0), dst="S0W"),
        I("MEM_E0", 1, "Read", "int8", src=(0, 0), dst="S1W"),
        I("MEM_W0", 3, "Scatter", "int8", index="S0W", src="S0W", base=(0, 0)),
        I("MEM_W0", 4, "Write", "int8", src="S1W", dst=(0, 0)),
    ], tensors=[X, y], data={"x": XV, "y": np.zeros(320, int)}))
    assert messages(r) == [
        "cycle 4: MEM_W0: bank-conflict: two writes land in bank 0 at cycle 5"
        " (the other from t.lpu:3) (t.lpu:4)"]


# ---- wrong-dtype ----
def wrong_dtype_program():
    # x read as fp8e4m3 but added as int8: x (46) read at 1 and y (45) read at 0 meet at the
    # VXM (47) at 3; the sum is at (47, 5), at MEM_E0 at 6
    return make_program([
        I("MEM_W0", 1, "Read", "fp8e4m3", src=(0, 0), dst="S0E"),
        I("MEM_W1", 0, "Read", "int8", src=(0, 0), dst="S1E"),
        I("VXM0", 3, "Add", "int8", x="S0E", y="S1E", z="S2E"),
        I("MEM_E0", 6, "Write", "int8", src="S2E", dst=(0, 0)),
    ], tensors=[X, Z, Tensor("y", "int8", (320,), ("MEM_W1",), 0, 0)],
        data={"x": XV, "y": np.full(320, 3)})


def test_wrong_dtype_message():
    r = run_ref(wrong_dtype_program())
    assert messages(r) == [
        "cycle 3: VXM0: wrong-dtype: stream S0E at position 47 carries fp8e4m3, but Add.int8"
        " reads int8 (t.lpu:3)"]
    assert r.violations[0].stream == "S0E"


def test_wrong_dtype_reinterprets_bytes_in_lenient_mode():
    r = run_ref(wrong_dtype_program(), lenient=True)
    assert [v.kind for v in r.violations] == ["wrong-dtype"]
    assert (r.tensor("z") == (XV + 3)).all()  # the int8 bytes, whatever the tag said


def test_cvt_checks_its_first_dtype():
    # Cvt.int8.fp32 reading a stream tagged int8 is right; tagged fp8e4m3 is wrong
    prog = make_program([
        I("MEM_W0", 0, "Read", "fp8e4m3", src=(0, 0), dst="S0E"),
        I("VXM0", 2, "Cvt", "int8", dtype2="fp32", x="S0E", z="S4E"),
    ], tensors=[X], data={"x": XV})
    assert messages(run_ref(prog)) == [
        "cycle 2: VXM0: wrong-dtype: stream S0E at position 47 carries fp8e4m3, but"
        " Cvt.int8.fp32 reads int8 (t.lpu:2)"]


# ---- no-weights ----
def no_weights_program(x5: float = 7.0):
    # x from MEM_W43 (3) at 0 on S0W reaches MXM_W0 (1) at 3: ACC with nothing installed.
    # The accumulator (lat 24) is at (1, 27) on S4E..S7E and passes MEM_W{39-q} (7 + q) at
    # 33 + q.
    xt = Tensor("x", "fp16", (320,), ("MEM_W43", "MEM_W42"), 0, 0)
    zt = Tensor("z", "fp32", (320,), tuple(f"MEM_W{39 - q}" for q in range(4)), 0, 0)
    x = np.full(320, 2.0)
    x[5] = x5
    prog = [I("MEM_W43", 1, "Read", "fp16", src=(0, 0), dst="S0W"),
            I("MEM_W42", 0, "Read", "fp16", src=(0, 0), dst="S1W"),
            I("MXM_W0", 4, "ACC", "fp16", x="S0W", z="S4E", acc=2)]
    prog += [I(f"MEM_W{39 - q}", 34 + q, "Write", "fp32", src=f"S{4 + q}E", dst=(0, 0))
             for q in range(4)]
    return make_program(prog, tensors=[xt, zt], data={"x": x})


def test_no_weights_message():
    r = run_ref(no_weights_program())
    assert messages(r) == [
        "cycle 4: MXM_W0: no-weights: ACC on accumulator 2 before any IW has installed weights"
        " on this plane (t.lpu:3)"]


def test_no_weights_uses_zero_weights_in_lenient_mode():
    r = run_ref(no_weights_program(), lenient=True)
    assert [v.kind for v in r.violations] == ["no-weights"]
    assert (r.tensor("z") == 0).all() and not np.signbit(r.tensor("z")).any()
    # the zero weights are really multiplied: inf in input lane 5 times row 5 (all zero) is
    # NaN in every column
    r = run_ref(no_weights_program(np.inf), lenient=True)
    assert np.isnan(r.tensor("z")).all()


def test_acc_before_the_install_lands_has_no_weights():
    # IW at 0 lands at 20 (and keeps MXM_W0 busy until 20): an ACC at 19 is both
    prog = [I("MXM_W0", 0, "IW"),
            I("MEM_W43", 16, "Read", "int8", src=(0, 0), dst="S0W"),
            I("MXM_W0", 19, "ACC", "int8", x="S0W", z="S4E", acc=0)]
    r = run_ref(make_program(prog), lenient=True)
    assert messages(r) == [
        "cycle 19: MXM_W0: queue-busy: issues while its unit is busy until cycle 20 (t.lpu:3)",
        "cycle 19: MXM_W0: no-weights: ACC on accumulator 0 before any IW has installed weights"
        " on this plane (t.lpu:3)"]


# ---- address ----
def test_address_message_and_lenient_modulo():
    # Read x[4095], Repeat once with step 3: the repetition reads 4098, outside 0..4095;
    # lenient reads 4098 % 4096 = 2. Both reads land in MEM_E0 (x passes 48 at issue + 3).
    xt = Tensor("x", "int8", (4096, 320), ("MEM_W0",), 0, 0)
    data = np.zeros((4096, 320), int)
    data[4095], data[2] = 11, 22
    zt = Tensor("z", "int8", (2, 320), ("MEM_E0",), 0, 0)
    prog = make_program([
        I("MEM_W0", 0, "Read", "int8", src=(0, 4095), dst="S0E"),
        I("MEM_W0", 1, "Repeat", n=1, d=1, step=3),
        I("MEM_E0", 3, "Write", "int8", src="S0E", dst=(0, 0)),
        I("MEM_E0", 4, "Write", "int8", src="S0E", dst=(0, 1)),
    ], tensors=[xt, zt], data={"x": data})
    r = run_ref(prog)
    assert messages(r) == [
        "cycle 1: MEM_W0: address: address 4098 is outside bank 0 (addresses 0..4095) (t.lpu:2)"]
    v = r.violations[0]
    assert (v.address, v.bank, v.source) == (4098, 0, "t.lpu:2")
    assert r.stopped and r.cycles == 1
    r = run_ref(prog, lenient=True)
    assert [v.kind for v in r.violations] == ["address"]
    assert r.tensor("z")[:, 0].tolist() == [11, 22]


# ---- queue-busy ----
def test_queue_busy_message_and_lenient_issue():
    prog = make_program([
        I("MEM_W0", 0, "NOP", n=5),
        I("MEM_W0", 3, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_E0", 6, "Write", "int8", src="S0E", dst=(0, 0)),
    ], tensors=[X, Z], data={"x": XV})
    r = run_ref(prog)
    assert messages(r) == [
        "cycle 3: MEM_W0: queue-busy: issues while its unit is busy until cycle 5 (t.lpu:2)"]
    assert r.stopped and r.cycles == 3 and (r.tensor("z") == 0).all()
    r = run_ref(prog, lenient=True)
    assert len(r.violations) == 1 and (r.tensor("z") == XV).all()


def test_parked_at_sync_message():
    # Sync at 0 parks VXM0 until the Notify at 2 lands (latency 4): 6. A Mov at 4 is early.
    prog = make_program([
        I("VXM0", 0, "Sync"),
        I("MEM_W0", 2, "Notify"),
        I("VXM0", 4, "Mov", "int8", x="S0E", z="S1E"),
    ])
    r = run_ref(prog)
    assert messages(r) == [
        "cycle 4: VXM0: queue-busy: issues while parked at Sync until cycle 6 (t.lpu:3)"]


# ---- sync ----
def test_sync_without_notify_message():
    prog = make_program([I("MEM_W0", 1, "Notify"), I("VXM3", 2, "Sync")])
    r = run_ref(prog)
    assert messages(r) == [
        "cycle 2: VXM3: sync: no Notify issued at or after cycle 2 releases this Sync (t.lpu:2)"]
    r = run_ref(prog, lenient=True)
    assert [v.kind for v in r.violations] == ["sync"] and not r.stopped


def test_lenient_run_reports_every_violation_in_order():
    r = run_ref(no_value_program(), lenient=True)
    r2 = run_ref(two_producers_program(), lenient=True)
    assert [v.cycle for v in r.violations + r2.violations] == [2, 2]
    # and a program with several: each is reported once, in plan order
    prog = make_program([
        I("VXM0", 0, "Sync"),
        I("VXM0", 1, "Add", "int8", x="S0E", y="S1E", z="S2E"),
        I("MEM_W0", 2, "Read", "int8", src=(0, 9000), dst="S0E"),
    ])
    r = run_ref(prog, lenient=True)
    assert [(v.kind, v.cycle) for v in r.violations] == [
        ("sync", 0), ("no-value", 1), ("address", 2)]


def test_two_vectors_arriving_on_one_link_are_two_producers():
    # two Sends on link 3 in one cycle (the second is queue-busy, issued anyway in lenient mode;
    # both send zeros: no-value) arrive together at 4 + 200
    prog = make_program([
        I("C2C_E", 4, "Send", "int8", src="S0E", link=3),
        I("C2C_E", 4, "Send", "int8", src="S0E", link=3),
    ])
    r = run_ref(prog, lenient=True)
    assert messages(r)[-1] == (
        "cycle 4: C2C_E: two-producers: link 3 gets a second vector arriving at cycle 204"
        " (the first from C2C_E, t.lpu:1) (t.lpu:2)")


def test_two_reads_of_one_bank_in_one_cycle():
    prog = make_program([
        I("MEM_W0", 4, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_W0", 4, "Read", "int8", src=(0, 1), dst="S1E"),
    ])
    r = run_ref(prog, lenient=True)
    assert messages(r) == [
        "cycle 4: MEM_W0: queue-busy: issues while its unit is busy until cycle 5 (t.lpu:2)",
        "cycle 4: MEM_W0: bank-conflict: bank 0 is read twice at cycle 4 (t.lpu:2)"]
