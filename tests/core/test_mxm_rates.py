"""The MXM at its published rates (docs/design.md section 14): LW load groups, IW timing, fp16/bf16
plane pairs and the mxm-pair violation, on tsp-v1, through both cores.

Positions on tsp-v1: MXM_W0 and MXM_W1 at 1, MEM_Wi at 46 - i (45 - i hops from the planes).
A Read at c places at c + 1, so MEM_Wi's value reaches the planes at c + 46 - i.
"""

from __future__ import annotations

import numpy as np
import pytest

from lpu_emu.asm import assemble_text
from lpu_emu.core.run import run
from lpu_emu.errors import AsmError

T = 50  # the first LW


def hop(i: int) -> int:
    return 45 - i


def both(src: str, lenient: bool = False):
    """Run on both cores; they must agree on cycles and violations. The fast core's result."""
    program = assemble_text(".chip tsp-v1\n" + src, "t.lpu")
    fast, ref = run(program, lenient=lenient), run(program, engine="reference", lenient=lenient)
    assert fast.cycles == ref.cycles
    assert [v.message for v in fast.violations] == [v.message for v in ref.violations]
    return fast


def group_source(rows_per_slice: int, base: int = 16) -> str:
    """Slice j (0..15) holds rows 16g + j (g < rows_per_slice) and feeds stream base + j."""
    lines = []
    for j in range(16):
        vals = [(3 * (16 * g + j) + lane) % 7 - 3 for g in range(rows_per_slice)
                for lane in range(320)]
        lines += [f".tensor w{j}, int8, ({rows_per_slice}, 320), MEM_W{j}, 0, 0",
                  f".values w{j}, " + ", ".join(map(str, vals)),
                  f"MEM_W{j} @{T - 1 - hop(j)} Read.int8 w{j}, S{base + j}W"]
        if rows_per_slice > 1:
            lines.append(f"MEM_W{j} +1 Repeat {rows_per_slice - 1}, 1, 1")
    return "\n".join(lines) + "\n"


def weights(rows: int) -> np.ndarray:
    return np.array([[(3 * r + lane) % 7 - 3 for lane in range(320)] for r in range(rows)])


def acc_tail(plane: str, t_acc: int, dtype: str = "int8") -> str:
    """x (lanes 0..319: lane % 5 - 2) from MEM_W20.. on S0W.. at t_acc; the accumulator on S4E..S7E
    caught by MEM_W43..MEM_W40 (positions 3..6, 2 + q hops)."""
    xs = ", ".join(str(lane % 5 - 2) for lane in range(320))
    out = "int32" if dtype == "int8" else "fp32"
    w = 2 if dtype in ("fp16", "bf16") else 1
    where = "MEM_W20" if w == 1 else "MEM_W20..MEM_W21"  # plane p in MEM_W(20 + p), on S(p)W
    lines = [f".tensor x, {dtype}, (320), {where}, 0, 0", f".values x, {xs}",
             f".tensor y, {out}, (320), MEM_W43..MEM_W40, 0, 0",
             f"{plane} @{t_acc} ACC.{dtype} S0W, S4E, 0"]
    lines += [f"MEM_W{20 + p} @{t_acc - 1 - hop(20 + p)} Read.{dtype} x, S{p}W" for p in range(w)]
    lines += [f"MEM_W{43 - q} @{t_acc + 24 + 2 + q} Write.{out} S{4 + q}E, y" for q in range(4)]
    return "\n".join(lines) + "\n"


X = np.array([lane % 5 - 2 for lane in range(320)], np.int64)


def test_lw_takes_a_whole_load_group_of_16_int8_rows_per_cycle():
    src = group_source(2) + (f"MXM_W1 @{T} LW.int8 S16W\nMXM_W1 +1 Repeat 1, 1\n"
                             f"MXM_W1 @{T + 2} IW\n") + acc_tail("MXM_W1", T + 22)
    r = both(src)
    assert r.violations == []
    assert r.tensor("y").tolist() == (X[:32] @ weights(32)).tolist()
    assert r.cycles == T + 22 + 24 + 2 + 3 + 1  # the last Write (MEM_W40) lands


def test_lw_rows_takes_only_the_streams_of_its_rows():
    """LW.int8 S16W, 5 reads S16W..S20W only: the slices feeding S21W.. read nothing."""
    src = group_source(1).split("\n")
    keep = [ln for ln in src if not any(ln.startswith(f"MEM_W{j} ") for j in range(5, 16))]
    src = "\n".join(keep) + (f"\nMXM_W1 @{T} LW.int8 S16W, 5\nMXM_W1 @{T + 1} IW\n"
                             + acc_tail("MXM_W1", T + 21))
    r = both(src)
    assert r.violations == []
    assert r.tensor("y").tolist() == (X[:5] @ weights(5)).tolist()


def test_lw_of_a_missing_row_stream_is_no_value():
    src = group_source(1).replace(f"MEM_W3 @{T - 1 - hop(3)} Read.int8 w3, S19W", "")
    r = both(src + f"MXM_W1 @{T} LW.int8 S16W, 4\n")
    assert [(v.kind, v.cycle, v.queue, v.stream) for v in r.violations] == [
        ("no-value", T, "MXM_W1", "S19W")]


def fp16_group(rows: int) -> str:
    """fp16 row r: planes in MEM_W(2r), MEM_W(2r+1), on S(2r)W, S(2r+1)W (the load group at 0)."""
    lines = []
    for r in range(rows):
        vals = ", ".join(str(float((r + lane) % 9 - 4) / 2) for lane in range(320))
        lines += [f".tensor h{r}, fp16, (320), MEM_W{2 * r}..MEM_W{2 * r + 1}, 0, 0",
                  f".values h{r}, {vals}"]
        for p in range(2):
            s = 2 * r + p
            lines.append(f"MEM_W{s} @{T - 1 - hop(s)} Read.fp16 h{r}, S{s}W")
    return "\n".join(lines) + "\n"


def test_fp16_lw_takes_8_rows_and_the_pair_computes_k_ascending():
    src = fp16_group(8) + f"MXM_W0 @{T} LW.fp16 S0W\nMXM_W0 @{T + 1} IW\n"
    src += acc_tail("MXM_W0", T + 21, "fp16")
    r = both(src)
    assert r.violations == []
    w = np.array([[((k + lane) % 9 - 4) / 2 for lane in range(320)] for k in range(8)],
                 np.float32)
    acc = np.zeros(320, np.float32)
    for k in range(8):
        acc = (acc + np.float32(X[k]) * w[k]).astype(np.float32)
    assert r.tensor("y").view(np.uint32).tolist() == acc.view(np.uint32).tolist()


def test_iw_occupies_the_plane_for_20_cycles():
    src = f"MXM_W0 @{T} IW\nMXM_W0 @{T + 19} ABC 0\n"
    r = both(src)
    assert [v.message for v in r.violations] == [
        f"cycle {T + 19}: MXM_W0: queue-busy: issues while its unit is busy until cycle "
        f"{T + 20} (t.lpu:3)"]
    assert both(f"MXM_W0 @{T} IW\nMXM_W0 @{T + 20} ABC 0\nMXM_W0 @{T + 21} LW.int8 S0W, 1\n",
                lenient=True).violations[0].kind == "no-value"  # free again at T + 20


def test_lw_fills_the_buffer_while_the_installed_weights_compute():
    """LW, ACC, LW, ACC on one queue in consecutive cycles: the ACCs use the installed weights
    (rows 0..15), the new rows wait in the buffer (design.md section 14)."""
    src = group_source(2) + (f"MXM_W1 @{T} LW.int8 S16W\nMXM_W1 @{T + 1} IW\n")
    # rows 16..31 arrive at T + 1 too; load them after the install, while computing
    src = src.replace("+1 Repeat 1, 1, 1", "+22 Repeat 1, 1, 1")
    src += acc_tail("MXM_W1", T + 21)
    src += f"MXM_W1 @{T + 22} LW.int8 S16W\n"
    r = both(src)
    assert r.violations == []
    assert r.tensor("y").tolist() == (X[:16] @ weights(16)).tolist()


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_paired_acc_on_the_odd_plane_is_mxm_pair(dtype):
    r = both(f"MXM_W1 @{T} ACC.{dtype} S0W, S4E, 0\n", lenient=True)
    pair = [v.message for v in r.violations if v.kind == "mxm-pair"]
    assert pair == [f"cycle {T}: MXM_W1: mxm-pair: ACC.{dtype} takes a plane pair and must issue "
                    "on its even plane (unit 0, 2, .. of a hemisphere) (t.lpu:2)"]


def test_fp8_and_int8_acc_on_the_odd_plane_are_fine():
    r = both(f"MXM_W1 @{T} ACC.fp8e4m3 S0W, S4E, 0\nMXM_W1 @{T + 1} ACC.int8 S0W, S8E, 0\n"
             f"MXM_W0 @{T + 1} ACC.int8 S0W, S12E, 0\n", lenient=True)
    assert {v.kind for v in r.violations} == {"no-value", "no-weights"}


def test_odd_plane_issuing_during_the_pairs_float_acc_is_mxm_pair():
    r = both(f"MXM_W0 @{T} ACC.fp16 S0W, S4E, 0\nMXM_W1 @{T + 1} ABC 3\n", lenient=True)
    pair = [v.message for v in r.violations if v.kind == "mxm-pair"]
    assert pair == [f"cycle {T + 1}: MXM_W1: mxm-pair: its plane pair is busy with MXM_W0 until "
                    f"cycle {T + 2} (t.lpu:3)"]
    ok = both(f"MXM_W0 @{T} ACC.fp16 S0W, S4E, 0\nMXM_W1 @{T + 2} ABC 3\n", lenient=True)
    assert [v for v in ok.violations if v.kind == "mxm-pair"] == []


def test_float_acc_while_the_odd_plane_is_busy_is_mxm_pair():
    """MXM_W1's IW (occupancy 20) holds the pair: the later fp16 ACC on MXM_W0 is reported."""
    r = both(f"MXM_W1 @{T} IW\nMXM_W0 @{T + 5} ACC.fp16 S0W, S4E, 0\n", lenient=True)
    pair = [v.message for v in r.violations if v.kind == "mxm-pair"]
    assert pair == [f"cycle {T + 5}: MXM_W0: mxm-pair: its plane pair is busy with MXM_W1 until "
                    f"cycle {T + 20} (t.lpu:3)"]


def test_strict_run_stops_at_the_mxm_pair_issue():
    r = both(f"MXM_W1 @{T} ABC 0\nMXM_W1 @{T + 1} ACC.bf16 S0W, S4E, 0\n")
    assert [v.kind for v in r.violations] == ["mxm-pair"] and r.cycles == T + 1


def test_float_accs_two_cycles_apart_back_to_back_one_is_queue_busy():
    ok = both(f"MXM_W0 @{T} ACC.fp16 S0W, S4E, 0\nMXM_W0 @{T + 2} ACC.fp16 S0W, S8E, 0\n",
              lenient=True)
    assert [v for v in ok.violations if v.kind == "queue-busy"] == []
    r = both(f"MXM_W0 @{T} ACC.fp16 S0W, S4E, 0\nMXM_W0 @{T + 1} ACC.fp16 S0W, S8E, 0\n",
             lenient=True)
    assert [v.message for v in r.violations if v.kind == "queue-busy"] == [
        f"cycle {T + 1}: MXM_W0: queue-busy: issues while its unit is busy until cycle {T + 2} "
        "(t.lpu:3)"]


@pytest.mark.parametrize(("line", "message"), [
    ("MXM_W0 @5 LW.int8 S8W", "S8W cannot start a 16-stream group (an MXM load group: "
     "mxm_load_streams): the index must be a multiple of 16"),
    ("MXM_W0 @5 LW.int8 S0W, 17", "LW rows = 17 is out of range: a load group of tsp-v1 "
     "(16 streams) holds 16 int8 rows (1..16)"),
    ("MXM_W0 @5 LW.bf16 S16W, 9", "LW rows = 9 is out of range: a load group of tsp-v1 "
     "(16 streams) holds 8 bf16 rows (1..8)"),
    ("MXM_W0 @5 LW.int8 S0W, 0", "LW rows must be at least 1, got 0"),
])
def test_lw_operand_errors(line, message):
    with pytest.raises(AsmError) as e:
        assemble_text(".chip tsp-v1\n" + line + "\n", "t.lpu")
    assert message in str(e.value)


def test_lw_default_rows_is_the_group_and_disassembles_explicitly():
    from lpu_emu.asm import disassemble

    p = assemble_text(".chip tsp-v1\nMXM_W0 @5 LW.fp16 S16W\nMXM_W1 @5 LW.int8 S0E\n", "t.lpu")
    lines = [" ".join(ln.split()) for ln in disassemble(p).splitlines() if "LW" in ln]
    assert lines == ["MXM_W0 @5 LW.fp16 S16W, 8", "MXM_W1 @5 LW.int8 S0E, 16"]


def test_pairs_are_per_hemisphere():
    """MXM_E0 + MXM_E1 are a pair too; a west plane's float ACC does not hold an east plane."""
    r = both(f"MXM_E0 @{T} ACC.bf16 S0E, S4W, 0\nMXM_E1 @{T + 1} IW\n"
             f"MXM_W0 @{T} ACC.fp16 S0W, S4E, 1\nMXM_W1 @{T + 2} IW\n", lenient=True)
    pair = [v.message for v in r.violations if v.kind == "mxm-pair"]
    assert pair == [f"cycle {T + 1}: MXM_E1: mxm-pair: its plane pair is busy with MXM_E0 until "
                    f"cycle {T + 2} (t.lpu:3)"]
