"""Every example in programs/ runs on lp30 and computes what its header says.

Each test checks the example against lpu_emu.examples (numpy statements) and, independently,
a few values worked out by hand from the program's own data.
"""

from __future__ import annotations

import numpy as np
import pytest

from lpu_emu.asm import assemble_file
from lpu_emu.core.run import run
from lpu_emu.examples import EXAMPLES, check


@pytest.fixture(scope="module")
def results():
    out = {}
    for ex in EXAMPLES:
        program = assemble_file(ex.path)
        out[ex.name] = run(program)
    return out


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_example_matches_numpy(results, example):
    result = results[example.name]
    assert result.violations == []
    assert check(example, result.tensor) == []


def test_vecadd_by_hand(results):
    r = results["vecadd"]
    # 1+10, -2+20, 3+30, -4+40, 5+50, 100+100 wraps to -56, 127+1 wraps to -128, -128-1 to 127
    assert r.tensor("z")[:9].tolist() == [11, 18, 33, 36, 55, -56, -128, 127, 0]
    # Write at cycle 6 commits one cycle later
    assert r.cycles == 7


def test_matvec_by_hand(results):
    r = results["matvec"]
    w = np.load(r_path("matvec_w.npy")).astype(np.int64)
    x = np.load(r_path("matvec_x.npy")).astype(np.int64)
    j = 17
    assert int(r.tensor("y")[j]) == sum(int(x[k]) * int(w[k, j]) for k in range(320))
    # last Write at T_ACC + 36 = 419 + 36 = 455, committing at 456
    assert r.cycles == 456


def test_gelu_close_to_exact_gelu(results):
    r = results["gelu"]
    x = r.tensor("x")[:16].astype(np.float64)
    exact = np.array([0.5 * v * (1 + __import__("math").erf(v / np.sqrt(2))) for v in x])
    assert np.allclose(r.tensor("y")[:16], exact, atol=2e-3)
    assert r.tensor("y")[7] == 0.0 and r.tensor("y")[15] == np.float32(10.0)
    assert r.cycles == 36


def test_transpose_by_hand(results):
    r = results["transpose"]
    # out[i][16k + j] = row[j][16k + i]; row n lane l holds (16n + l) % 256 - 128 for l < 32
    assert int(r.tensor("t3")[5]) == (16 * 5 + 3) % 256 - 128
    assert int(r.tensor("t0")[16 + 2]) == (16 * 2 + 16) % 256 - 128
    assert int(r.tensor("t9")[40]) == 0  # lanes past 32 were zero


def test_repeat_by_hand(results):
    r = results["repeat"]
    y = r.tensor("y")
    # x[0] lanes: -5, 0, 5, 124, 125, -128, 7, 1, 2, 3 -> relu + 3 (125 + 3 wraps to -128)
    assert y[0, :10].tolist() == [3, 3, 8, 127, -128, 3, 10, 4, 5, 6]
    assert y[1:, :].tolist() == [[3] * 320] * 7  # x[1..7] are zero
    assert r.cycles == 14  # the 8th Write issues at 13


def test_sync_by_hand(results):
    r = results["sync"]
    z = r.tensor("z")
    # 2x - y, int32 wraps: 2 * -2147483648 = 0 (wrapped) - 50; 2 * 2147483647 = -2 (wrapped) - 60
    assert z[:7].tolist() == [2 - 10, -4 - 20, 6 - 30, 2000000 - 40, -50, -62, 0]
    assert r.cycles == 26


def r_path(name: str):
    from lpu_emu.examples import programs_dir

    return programs_dir() / name


def _lw_cycles(program) -> list[int]:
    from lpu_emu.core.plan import OP, make_plan
    from lpu_emu.spec import default_isa, get_chip

    isa = default_isa()
    plan = make_plan(program, get_chip(program.chip), isa)
    lw = plan.issues[plan.issues[:, OP] == isa.lookup("LW").opcode]
    return sorted(int(c) for c in lw[:, 0])


@pytest.mark.parametrize(("name", "far", "cycles"), [("mxm4", 79, 190), ("mxm4_tsp", 45, 122)])
def test_mxm4_loads_all_planes_in_20_cycles(name, far, cycles):
    """80 LW issues (4 planes x 20 groups of 16 rows) between T_LW = FAR + 1 and T_LW + 19, and
    every plane's product right; the run ends when the last Write (FAR - 34 after the results
    leave at T_LW + 40 + 24) lands."""
    from lpu_emu.examples import programs_dir

    program = assemble_file(programs_dir() / f"{name}.lpu")
    lws = _lw_cycles(program)
    assert len(lws) == 80 and lws[0] == far + 1 and lws[-1] == far + 20
    assert lws[-1] - lws[0] + 1 == 20  # < 40: ISCA 2020's "under 40 cycles"
    r = run(program)
    assert r.violations == []
    assert r.cycles == cycles == far + 1 + 40 + 24 + far - 34 + 1
    example = next(e for e in EXAMPLES if e.name == "mxm4")
    assert check(example, r.tensor) == []
    w = np.load(r_path("mxm4/wE1_5.npy")).astype(np.int64)  # rows 5, 21, 37, ... of plane E1
    x = np.load(r_path("mxm4/x3.npy")).astype(np.int64)
    part = sum(int(x[16 * g + 5]) * int(w[g, 9]) for g in range(20))
    full = sum(int(x[16 * g + j]) * int(np.load(r_path(f"mxm4/wE1_{j}.npy"))[g, 9])
               for j in range(16) for g in range(20))
    assert part != full and int(r.tensor("y3")[9]) == full
