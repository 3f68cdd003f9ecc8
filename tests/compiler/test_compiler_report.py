"""The schedule report and roofline (lpu_emu.compiler.report): exact figures of a hand-written
program whose work is counted by hand, and of one 320x320 matmul compiled for lp30."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from lpu_emu.asm.assembler import assemble_text
from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.report import report, report_program, rows_per_lw
from lpu_emu.compiler.target import Target
from lpu_emu.core.plan import OP, make_plan
from lpu_emu.render.report import FullReport, Roofline, ShortReport

# 4 reads, 320 LWs, an install, an ABC, 4 int8 ACCs on MXM_W0, 2 bf16 ACCs on MXM_E0, an Exp
# (a large ALU), 5 Adds, 4 writes (one per byte plane of an fp32 vector). The report counts work
# only, so the stream timing does not matter here.
HAND = """\
; report.lpu: known work for the report tests
.chip lp30
.tensor x, int8, (4, 320), MEM_W0, 0, 0
.tensor y, fp32, (1, 320), MEM_E0..MEM_E3, 0, 0
        MEM_W0  @0      Read.int8   x, S0W
        MEM_W0  @1      Repeat      3, 1, 1
        MXM_W0  @100    LW.int8     S0W
        MXM_W0  @101    Repeat      319, 1, 0
        MXM_W0  @500    IW
        MXM_W0  @520    ABC         0
        MXM_W0  @521    ACC.int8    S0W, S4E, 0
        MXM_W0  @522    Repeat      3, 1, 0
        MXM_E0  @600    ACC.bf16    S0E, S4W, 1
        MXM_E0  @604    Repeat      1, 4, 0
        VXM0    @700    Exp.fp32    S4E, S8E
        VXM1    @700    Add.fp32    S4E, S4E, S12E
        VXM1    @701    Repeat      4, 1, 0
        MEM_E0  @800    Write.fp32  S8E, y
        MEM_E1  @800    Write.fp32  S9E, y
        MEM_E2  @800    Write.fp32  S10E, y
        MEM_E3  @800    Write.fp32  S11E, y
"""


@pytest.fixture(scope="module")
def hand():
    target = Target.of("lp30")
    program = assemble_text(HAND, "report.lpu")
    return target, report_program(program, target, "int8")


def test_report_hand_program_counts(hand) -> None:
    target, r = hand
    assert (r.name, r.chip, r.mode) == ("report.lpu", "lp30", "int8")
    assert r.instructions == 17
    assert r.issues == 4 + 320 + 1 + 1 + 4 + 2 + 1 + 5 + 4
    assert r.cycles == 800 + target.latency("Write")
    w0 = next(p for p in r.planes if p.name == "MXM_W0")
    assert w0.issues == {"ACC": 4, "LW": 320, "IW": 1, "IWT": 0, "ABC": 1}
    assert w0.busy == 4 + 320 + 20 + 1
    e0 = next(p for p in r.planes if p.name == "MXM_E0")
    assert e0.issues == {"ACC": 2, "LW": 0, "IW": 0, "IWT": 0, "ABC": 0}
    assert [p.name for p in r.planes] == ["MXM_W0", "MXM_W1", "MXM_E0", "MXM_E1"]
    assert r.acc_dtypes == {"int8": 4, "bf16": 2}
    assert r.lw_rows == {"int8": 320 * rows_per_lw(target, "int8")}
    assert r.macs == 6 * 320 * 320
    assert r.useful_macs == 0 and r.ops == ()
    assert (r.vxm_issues, r.vxm_large_issues, r.vxm_busiest) == (6, 1, ("VXM1", 5))
    assert r.sxm_issues == 0
    assert (r.sram_reads, r.sram_writes, r.sram_bytes) == (4, 4, 8 * 320)
    assert r.mem_busiest == ("MEM_W0", 4)
    # placed stream values: 4 reads x 1, 4 int8 ACCs x 4, 2 bf16 ACCs x 4, 6 fp32 VXM ops x 4
    assert r.stream_values == 4 + 16 + 8 + 24
    assert r.stream_busiest == ("VXM", 24)


def test_report_hand_program_roofline(hand) -> None:
    target, r = hand
    cycles = {res.name: res.cycles for res in r.resources}
    assert cycles == {
        "MXM compute": (4 / 1 + 2 / 0.25) / 4,  # int8 at 1, bf16 at a quarter; 4 planes
        "MXM weight loads": (320 + 20) / 4,  # full load groups: one LW a cycle; IW 20
        "MXM planes": 3.0 + 85.0 + 1 / 4,
        # the 2 bf16 ACCs hold MXM_E0's pair 2 cycles each; MXM_W0's loads serve int8 ACCs
        "MXM plane pairs": 2 * 2 / 2,
        "SRAM bandwidth": 2560 / (156 * 320 * 2),
        "VXM ALUs": 6 / 16,
        "VXM large ALUs": 1 / 4,
        "SXM": 0.0,
        "stream slots": 24 / 64,
    }
    assert r.binding.name == "MXM planes"
    assert r.bound == 88.25
    assert r.efficiency == 88.25 / (800 + target.latency("Write"))


# MXM_W0 runs bf16 ACCs only: 320 rows in 40 LWs of 8, an install, two ABCs, three ACCs. MXM_E0
# mixes an int8 and a bf16 ACC, so its load, install and ABC are not the pair's alone.
PAIRS = """\
.chip lp30
        MXM_W0  @0      LW.bf16     S0W
        MXM_W0  @1      Repeat      39, 1, 0
        MXM_W0  @100    IW
        MXM_W0  @120    ABC         0
        MXM_W0  @121    ABC         1
        MXM_W0  @122    ACC.bf16    S0W, S4E, 0
        MXM_W0  @124    Repeat      2, 2, 0
        MXM_E0  @0      LW.int8     S0E
        MXM_E0  @1      IW
        MXM_E0  @21     ABC         0
        MXM_E0  @22     ACC.int8    S0E, S4W, 0
        MXM_E0  @23     ACC.bf16    S0E, S8W, 1
"""


def test_float_loads_and_abcs_hold_the_pair_of_their_plane() -> None:
    """An fp16/bf16 plane's loads, installs and ABCs are its pair's even queue's alone: the
    pairs bound counts them over 2 pairs where the planes bound spreads them over 4 planes."""
    target = Target.of("lp30")
    r = report_program(assemble_text(PAIRS, "pairs.lpu"), target, "bf16")
    cycles = {res.name: res.cycles for res in r.resources}
    assert cycles["MXM plane pairs"] == (4 * 2 + 40 + 20 + 2) / 2
    assert cycles["MXM planes"] == (1 + 4 / 0.25) / 4 + (40 + 1 + 2 * 20) / 4 + 3 / 4
    assert r.binding.name == "MXM plane pairs" and r.bound == 35.0
    work = next(res.work for res in r.resources if res.name == "MXM plane pairs")
    assert work == "(4 bf16 ACCs x 2 + loads + ABCs) / 2"


def test_rows_per_lw_follows_the_isa() -> None:
    target = Target.of("lp30")
    grouped = "mxm_load_streams" in target.chip.params  # issue 6: LW takes a load group
    assert rows_per_lw(target, "int8") == (16 if grouped else 1)
    assert rows_per_lw(target, "fp8e4m3") == (16 if grouped else 1)
    assert rows_per_lw(target, "bf16") == (8 if grouped else 1)


def test_wide_weights_load_fewer_rows_an_lw() -> None:
    """bf16 weights of one output chunk take a whole load group (8 rows an LW); wider ones 4,
    leaving three quarters of a side's streams to a two-plane kernel's feeds and epilogues. With
    four fp32-mode planes (two a side) a load group is half that already."""
    target = Target.of("lp30")
    assert (target.lw_rows("bf16"), target.lw_rows("bf16", wide=True)) == (8, 4)
    assert (target.lw_rows("int8"), target.lw_rows("int8", wide=True)) == (8, 8)


def test_report_to_json_is_json(hand) -> None:
    _, r = hand
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["cycles"] == r.cycles
    assert doc["mxm"]["planes"]["MXM_W0"]["issues"]["LW"] == 320
    assert doc["sram"] == {"reads": 4, "writes": 4, "bytes": 2560, "busiest": ["MEM_W0", 4]}
    assert doc["roofline"]["binding"] == "MXM planes"
    assert doc["roofline"]["bound"] == 88.25
    assert [x["name"] for x in doc["roofline"]["resources"]] == [
        "MXM compute", "MXM weight loads", "MXM planes", "MXM plane pairs", "SRAM bandwidth",
        "VXM ALUs",
        "VXM large ALUs", "SXM", "stream slots"]
    assert doc["data_bound"] is None  # a hand-written program has no kernels to order


def _text(renderable) -> list[str]:
    console = Console(width=100, no_color=True, color_system=None, record=True)
    with console.capture() as cap:
        console.print(renderable)
    return [line.rstrip() for line in cap.get().splitlines()]


def test_short_report_lines(hand) -> None:
    target, r = hand
    c = 800 + target.latency("Write")
    assert _text(ShortReport(r)) == [
        f"report.lpu on lp30, int8: {c:,} cycles, {c / 1.5:.4g} ns at 1.5 GHz",
        "MXM: 614,400 MACs issued, 0 in the graph's matmuls (0.0%)",
        f"roofline: 88 cycles, bound by MXM planes; schedule efficiency {88.25 / c:.1%}",
    ]


def test_roofline_marks_the_binding_resource(hand) -> None:
    _, r = hand
    lines = _text(Roofline(r))
    marked = [line for line in lines if " < " in line or line.split("  ")[0].endswith("<")]
    assert len(marked) == 1 and marked[0].startswith("MXM planes <")
    assert any(line.startswith("MXM weight loads") and " 85 " in line for line in lines)


def _matmul(dtype: str):
    rng = np.random.default_rng(0)
    b = GraphBuilder("mm")
    x = b.input("x", (320, 320))
    b.output(b.matmul(x, b.constant("w", rng.standard_normal((320, 320)).astype(np.float32))),
             "y")
    return compile_graph(b.build(), "lp30", dtype)


@pytest.mark.parametrize("dtype, compute", [("int8", 80.0), ("bf16", 320.0), ("fp32", 960.0)])
def test_report_matmul_320(dtype: str, compute: float) -> None:
    """x (320, 320) @ w (320, 320): 320 activation vectors through one 320x320 weight tile, so
    320 ACCs (fp32: three bf16 passes, 960), 32,768,000 MACs a pass; 4 planes at one int8 ACC a
    cycle, a quarter of that in bf16."""
    c = _matmul(dtype)
    r = report(c)
    passes = {"int8": 1, "bf16": 1, "fp32": 3}[dtype]
    mxm = "int8" if dtype == "int8" else "bf16"
    matmul_accs = 320 * passes
    # reductions and transposes are bf16 ACCs too; a bare matmul has none
    assert r.acc_dtypes == {mxm: matmul_accs}
    assert r.macs == matmul_accs * 320 * 320
    assert r.useful_macs == 320 * 320 * 320 * passes
    resources = {res.name: res.cycles for res in r.resources}
    assert resources["MXM compute"] == compute
    installs = sum(p.issues["IW"] + p.issues["IWT"] for p in r.planes)
    assert r.lw_rows == {mxm: 320 * installs}  # every install loads a whole 320-row tile
    # at the published rate (whole load groups: a 320-row tile is 20 int8 or 40 bf16 LWs),
    # however many LWs the compiler issued for them
    per_lw = rows_per_lw(c.target, mxm)
    assert resources["MXM weight loads"] == (320 * installs / per_lw + 20 * installs) / 4
    plan = make_plan(c.program, c.target.chip, c.target.isa)
    assert r.cycles == plan.cycles and r.issues == len(plan)
    n_acc = int((plan.issues[:, OP] == c.target.ins("ACC").opcode).sum())
    assert n_acc == matmul_accs
    assert r.efficiency == r.bound / r.cycles <= 1.0


def test_report_cycles_are_the_run_cycles() -> None:
    from lpu_emu.core.run import run
    c = _matmul("int8")
    result = run(c.program, c.target.chip)
    assert result.ok and result.cycles == report(c).cycles


def test_full_report_renders_every_section() -> None:
    r = report(_matmul("bf16"))
    lines = _text(FullReport(r))
    assert lines[0].startswith("mm.lpu on lp30, bf16: ")
    assert lines[2] == "MXM: 32,768,000 MACs issued, 32,768,000 in the graph's matmuls (100.0%)"
    assert any(line.startswith("roofline: ") for line in lines)
    assert any(line.startswith("graph op") for line in lines)


def test_demo_layer_dict(hand) -> None:
    from lpu_emu.render.report import demo_layer_dict
    _, r = hand
    doc = json.loads(json.dumps(demo_layer_dict("a layer", r, (0.01, 2.0))))
    assert doc["description"] == "a layer" and doc["report"]["cycles"] == r.cycles
    assert doc["check"] == {"max_abs_error": 0.01, "max_abs_value": 2.0, "relative": 0.005,
                            "bound": 5e-2, "ok": True}
    assert demo_layer_dict("a layer", r, (0.2, 2.0))["check"]["ok"] is False
