"""MEM semantics through the pipeline: Read, Write, Gather, Scatter (tsp-v1 positions:
MEM_W{k} at 46 - k, VXM at 47, MEM_E{k} at 48 + k)."""

from __future__ import annotations

import numpy as np
from core_helpers import I, Tensor, make_program, run_ref

LANES = np.arange(320)


def test_read_write_copies_every_byte():
    # MEM_W0 (46) reads at 0: the vector is at 46 at cycle 1, at MEM_E3 (51) at cycle 6
    x = Tensor("x", "int8", (320,), ("MEM_W0",), 1, 7)
    z = Tensor("z", "int8", (320,), ("MEM_E3",), 0, 100)
    values = (LANES * 37) % 256 - 128
    prog = make_program([
        I("MEM_W0", 0, "Read", "int8", src=(1, 7), dst="S5E"),
        I("MEM_E3", 6, "Write", "int8", src="S5E", dst=(0, 100)),
    ], tensors=[x, z], data={"x": values})
    r = run_ref(prog)
    assert r.violations == [] and r.cycles == 7  # the Write at 6 lands at 7
    assert (r.tensor("z") == values).all()


def gather_program(base: int, index: np.ndarray, table: np.ndarray, lenient: bool = False):
    # index: MEM_W2 (44) reads at 0 -> at 44 at cycle 1, at MEM_W1 (45) at 2: Gather issues at 2
    # Gather latency 2: dst at (45, 4) on S1E, at MEM_E0 (48) at cycle 7
    idx = Tensor("idx", "int8", (320,), ("MEM_W2",), 0, 0)
    tab = Tensor("tab", "int8", (len(table), 320), ("MEM_W1",), 0, base)
    z = Tensor("z", "int8", (320,), ("MEM_E0",), 0, 0)
    prog = make_program([
        I("MEM_W2", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_W1", 2, "Gather", "int8", base=(0, base), index="S0E", dst="S1E"),
        I("MEM_E0", 7, "Write", "int8", src="S1E", dst=(0, 0)),
    ], tensors=[idx, tab, z], data={"idx": index.astype(np.int8), "tab": table})
    return run_ref(prog, lenient=lenient)


def test_gather_reads_one_address_per_lane():
    rng = np.random.default_rng(0)
    table = rng.integers(-128, 128, size=(200, 320))
    index = rng.integers(0, 200, size=320)
    index[:3] = [0, 199, 128]  # 128 and up travel as negative int8 bytes: read as unsigned
    r = gather_program(10, index, table)
    assert r.violations == []
    assert (r.tensor("z") == table[index, LANES]).all()


def test_gather_past_the_bank_wraps_in_lenient_mode():
    table = np.arange(320)[None].repeat(4, 0) % 100
    index = np.zeros(320, int)
    index[5] = 255  # 4000 + 255 = 4255 > 4095: lane 5 reads address 4255 % 4096 = 159
    r = gather_program(4000, index, table, lenient=True)
    assert [v.message for v in r.violations] == [
        "cycle 2: MEM_W1: address: address 4255 (lane 5) is outside bank 0 (addresses 0..4095)"
        " (t.lpu:2)"]
    assert r.tensor("z")[5] == 0  # address 159 of MEM_W1 holds nothing
    assert r.tensor("z")[6] == table[0, 6]


def test_scatter_writes_one_address_per_lane():
    # index: MEM_W2 (44) reads at 1, at 45 at cycle 3; data: MEM_W3 (43) reads at 0, at 45 at
    # cycle 3; the Scatter on MEM_W1 (45) issues at 3 and commits at 5
    rng = np.random.default_rng(1)
    index = rng.integers(0, 6, size=320)
    data = rng.integers(-128, 128, size=320)
    idx = Tensor("idx", "int8", (320,), ("MEM_W2",), 0, 0)
    src = Tensor("src", "int8", (320,), ("MEM_W3",), 0, 0)
    out = Tensor("out", "int8", (6, 320), ("MEM_W1",), 1, 20)
    prog = make_program([
        I("MEM_W3", 0, "Read", "int8", src=(0, 0), dst="S1E"),
        I("MEM_W2", 1, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_W1", 3, "Scatter", "int8", index="S0E", src="S1E", base=(1, 20)),
    ], tensors=[idx, src, out], data={"idx": index, "src": data})
    r = run_ref(prog)
    assert r.violations == [] and r.cycles == 5
    want = np.zeros((6, 320), int)
    for lane in range(320):
        want[index[lane], lane] = data[lane]
    assert (r.tensor("out") == want).all()


def test_write_lands_after_its_latency():
    # x from MEM_W0 at 0 passes MEM_E0 (48) at cycle 3; Write at 3 commits at 4. MEM_E0 reads
    # the same address at 4 (a bank conflict: sees the old zeros) and at 5 (sees x) onto S0W /
    # S1W, placed at 48 at 5 / 6, at MEM_W0 (46) at 7 / 8: written to its bank 1 there.
    x = Tensor("x", "int8", (320,), ("MEM_W0",), 0, 0)
    seen = Tensor("seen", "int8", (2, 320), ("MEM_W0",), 1, 0)
    values = LANES % 50 + 1
    prog = make_program([
        I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E"),
        I("MEM_E0", 3, "Write", "int8", src="S0E", dst=(0, 9)),
        I("MEM_E0", 4, "Read", "int8", src=(0, 9), dst="S0W"),
        I("MEM_E0", 5, "Read", "int8", src=(0, 9), dst="S1W"),
        I("MEM_W0", 7, "Write", "int8", src="S0W", dst=(1, 0)),
        I("MEM_W0", 8, "Write", "int8", src="S1W", dst=(1, 1)),
    ], tensors=[x, seen], data={"x": values})
    r = run_ref(prog, lenient=True)
    assert [v.kind for v in r.violations] == ["bank-conflict"]
    assert (r.tensor("seen")[0] == 0).all()
    assert (r.tensor("seen")[1] == values).all()
