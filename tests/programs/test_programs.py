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
