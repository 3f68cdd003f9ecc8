"""One line of text per event: the `--text` listing, and the step view's list of what happened.

Lines are self-contained (`cycle 3: take S0E at 81 from 79 int8 (VXM0 Add.int8)`), so the listing
greps by cycle, kind, queue, stream or source line. INIT records (a row's contents kept before its
first write, for replay) are bookkeeping, not events of the chip, and are not listed.
"""

from __future__ import annotations

import numpy as np

from lpu_emu.core import events as E
from lpu_emu.spec.encoding import stream_text
from lpu_emu.trace.model import Traced


def event_text(t: Traced, r) -> str | None:
    """The words after `cycle N: ` for one record (a list of 8 ints), or None for bookkeeping."""
    cycle, kind, issue, a, b, c, d, ref = r
    dnames = t.dtype_names
    who = f"{t.queue_name(t.issue_queue(issue))} {t.mnemonic(issue)}"
    if kind == E.ISSUE:
        return f"issue {t.queue_name(a)} {t.instruction(issue)} ({t.where(issue)})"
    if kind == E.TAKE:
        src = f"from {c} {dnames.get(d, '?')}" if c >= 0 else "nothing passing"
        return f"take {stream_text(a)} at {b} {src} ({who})"
    if kind == E.PLACE:
        repl = ", replacing one" if d else ""
        return f"place {stream_text(a)} at {b} {dnames.get(c, '?')} ({who}{repl})"
    if kind in (E.SREAD, E.SWRITE):
        what = "sram-read" if kind == E.SREAD else "sram-write"
        lanes = " (gather)" if kind == E.SREAD and d >= 0 else (
            " (scatter)" if kind == E.SWRITE and d >= 0 else "")
        return f"{what} {t.mem_name(a)} {b}:{c}{lanes} ({who})"
    if kind == E.INIT:
        return None
    if kind == E.LW:
        return (f"lw {t.plane_name(a)} row {b}" if b >= 0 else
                f"lw {t.plane_name(a)} row dropped (buffer full)") + f" ({who})"
    if kind == E.IW:
        return f"iw {t.plane_name(a)} {c} rows, installed at {b} ({who})"
    if kind == E.ABC:
        return f"abc {t.plane_name(a)} accumulator {b} ({who})"
    if kind == E.ACC:
        weights = "" if c else ", no weights"
        return f"acc {t.plane_name(a)} accumulator {b}{weights} ({who})"
    if kind == E.SEND:
        return f"send {'C2C_W' if a == 0 else 'C2C_E'} link {b}, arrives at {c} ({who})"
    if kind == E.RECV:
        got = "from a send" if c >= 0 else "nothing arriving"
        return f"receive {'C2C_W' if a == 0 else 'C2C_E'} link {b} {got} ({who})"
    if kind == E.VIOL:
        v = t.violation_of(issue, a)
        return f"violation {v.message}" if v else f"violation kind {a} ({who})"
    return f"event {kind} ({who})"


def cycle_lines(t: Traced, cycle: int) -> list[str]:
    """What happened at `cycle`, one line per event, in log order."""
    return [s for r in t.index.at(cycle).tolist() if (s := event_text(t, r)) is not None]


def text_listing(t: Traced, first: int = 0, last: int | None = None) -> list[str]:
    """Every event of cycles first..last (inclusive), `cycle N: ...` per line."""
    last = t.last_cycle if last is None else last
    lo, hi = t.index.span(first, last)
    rows = t.index.ev[lo:hi]
    out = []
    for r in rows.tolist():
        s = event_text(t, r)
        if s is not None:
            out.append(f"cycle {r[0]}: {s}")
    return out


def issues_at(t: Traced, cycle: int) -> np.ndarray:
    """The issues at `cycle` (Plan rows)."""
    rows = t.index.at(cycle, E.ISSUE)
    return rows[:, 2]
