"""Golden text of every view at 100 columns, colour off (tests/trace/golden; LPU_UPDATE_GOLDENS=1
rewrites them, to be reviewed), plus the facts each golden must show, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from trace_helpers import ROOT, check_golden, render, run_script, traced

from lpu_emu.trace.views import ChipView, MxmView, QueueView, SourceView, StepView

SCREENS = {
    "vecadd_chip_3": ("vecadd", ["goto 3", "show chip", "show chip at 81"]),
    "vecadd_chip_5": ("vecadd", ["goto 5", "show chip at 81 zoom 1"]),
    "vecadd_source_3": ("vecadd", ["goto 3", "show source"]),
    "vecadd_stream_3": ("vecadd", ["goto 3", "show stream S0E at VXM0 lanes 0..15",
                                   "show stream S0E at VXM0 as hex lanes 0..7"]),
    "vecadd_write_7": ("vecadd", ["goto 7", "show tensor z lanes 0..15",
                                  "show sram MEM_E0 0:0 lanes 0..15 as hex"]),
    "vecadd_queue": ("vecadd", ["goto 4", "show queue VXM0", "show queue MEM_W0"]),
    "matvec_mxm": ("matvec", ["goto 419", "show mxm", "show stream S1W at MXM_W0 lanes 0..7",
                              "goto 443", "show stream S4E at MXM_W0 lanes 0..7"]),
    "matvec_rows": ("matvec", ["goto 78", "show stream S0W at MXM_W0 lanes 0..7", "step",
                               "show stream S0W at MXM_W0 lanes 0..7"]),
    "matvec_steps": ("matvec", ["goto 78", "step", "goto 398", "step 2"]),
    "repeat_tensor": ("repeat", ["goto 6", "show tensor y 0..1 lanes 0..11", "step",
                                 "show tensor y lanes 0..11"]),
    "gelu_fp32": ("gelu", ["goto 28", "show stream S28W at VXM9 lanes 0..15",
                           "show stream S28W at VXM9 as hex lanes 0..3", "goto 36",
                           "show tensor y lanes 0..15"]),
    "late_violation": ("late", ["break violation", "continue", "show chip at 81",
                                "show source"]),
}


@pytest.mark.parametrize("name", sorted(SCREENS))
def test_view_matches_its_golden(name: str) -> None:
    program, script = SCREENS[name]
    text, session = run_script(traced(program), script)
    assert session.errors == 0, text
    check_golden(name, text)


def test_stream_view_shows_the_weight_rows_in_order() -> None:
    w = np.load(ROOT / "programs" / "matvec_w.npy")
    text, _ = run_script(traced("matvec"), ["goto 78", "show stream S0W at MXM_W0 lanes 0..7",
                                            "step", "show stream S0W at MXM_W0 lanes 0..7"])
    grids = [line.split("|")[1].replace("*", " ").split() for line in text.splitlines()
             if line.startswith("  lane ")]
    assert grids == [[str(v) for v in w[0, :8]], [str(v) for v in w[1, :8]]]  # row k at 78 + k


def test_chip_strip_marks_issue_values_and_placements() -> None:
    t = traced("vecadd")
    lines = render(ChipView(t, 5, at=81, zoom=1)).splitlines()
    first = int(lines[0].split("positions ")[1].split("..")[0])
    col = 8 + 81 - first
    issued = next(x for x in lines if x.startswith("issued"))
    s2e = next(x for x in lines if x.startswith("S2E"))
    assert "^" not in issued  # nothing issues at 5
    assert s2e[col] == "*" and s2e.count("*") == 1  # the sum is placed at the VXM (81) at 5
    lines = render(ChipView(t, 3, at=81, zoom=1)).splitlines()
    issued = next(x for x in lines if x.startswith("issued"))
    assert issued[col] == "^" and issued.count("^") == 1  # the Add at 81
    s0e = next(x for x in lines if x.startswith("S0E"))
    assert s0e[col] == ">"  # x, placed at 79 at cycle 1, is at 81 at cycle 3


def test_chip_strip_fits_the_whole_chip_by_default() -> None:
    lines = render(ChipView(traced("vecadd"), 3), width=100).splitlines()
    assert lines[0] == "chip lp30: positions 0..162 of 0..162, 2 positions per column"
    assert max(len(x) for x in lines) <= 100


def test_source_view_marks_the_lines_issuing_now() -> None:
    lines = render(SourceView(traced("repeat"), 6)).splitlines()
    marked = [x for x in lines if x.startswith(">")]
    # at 6: the 7th Read, a Relu and an AddI repetition (their Repeat lines), the first Write
    assert [x.split()[1] for x in marked] == ["18", "21", "23", "25"]


def test_listing_shows_the_comment_of_a_compiled_line() -> None:
    t = traced("pipeline")
    text = render(SourceView(t, 6), StepView(t, 6))
    assert "> 25          MEM_E0  @6      Write.int8  S2E, y[0]          ; store y" in text
    assert "issue MEM_E0 Write.int8 S2E, y[0]  ; store y (programs/trace/pipeline.lpu:25)" in text


def test_queue_view_says_busy_or_idle() -> None:
    t = traced("matvec")
    busy = render(QueueView(t, 400, t.slice_named("MXM_W0").index)).splitlines()[0]
    assert busy == "queue MXM_W0 (MXM, position 1): 323 issues, busy until cycle 418 at cycle 400"


def test_mxm_view_counts_rows_and_installed_weights() -> None:
    t = traced("matvec")
    text = render(MxmView(t, 397))
    assert "MXM_W0: 320 weight rows buffered since the last IW" in text
    assert "no weights installed yet" in text
    text = render(MxmView(t, 419))
    assert "weights installed at cycle 418 (320 rows, IW at cycle 398)" in text
