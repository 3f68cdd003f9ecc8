"""Helpers of the tracer tests: traced example programs, rendering at a fixed width with colour
off, and golden files (refreshed only with LPU_UPDATE_GOLDENS=1, never silently)."""

from __future__ import annotations

import contextlib
import io
import os
from functools import cache
from pathlib import Path

from rich.console import Console

from lpu_emu.asm import assemble_file
from lpu_emu.trace.model import Traced
from lpu_emu.trace.session import Session

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
WIDTH = 100


@cache
def traced(name: str) -> Traced:
    """programs/<name>.lpu (or programs/trace/<name>.lpu), run with the event log on."""
    path = Path("programs") / f"{name}.lpu"
    with contextlib.chdir(ROOT):  # source paths as a user in the checkout writes them
        if not path.is_file():
            path = Path("programs") / "trace" / f"{name}.lpu"
        return Traced.run(assemble_file(path), name=path.name, base=ROOT / path.parent)


def render(*renderables, width: int = WIDTH) -> str:
    """Plain text of renderables in a fixed-width console, colour off, trailing blanks cut."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, no_color=True, markup=False,
                      highlight=False, emoji=False, force_terminal=False, legacy_windows=False,
                      _environ={})
    for r in renderables:
        console.print(r)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def run_script(t: Traced, lines: list[str], width: int = WIDTH) -> tuple[str, Session]:
    """The blocks of a scripted session, as `lpu trace --script` prints them."""
    session = Session(t)
    blocks = []
    for line in lines:
        block = session.run(line)
        if block is not None:
            blocks.append(render(*block, width=width))
        if session.done:
            break
    return "\n".join(blocks), session


def check_golden(name: str, text: str) -> None:
    """Compare with tests/trace/golden/<name>.txt; LPU_UPDATE_GOLDENS=1 rewrites it instead."""
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("LPU_UPDATE_GOLDENS") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no golden {path.name}: run with LPU_UPDATE_GOLDENS=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs (LPU_UPDATE_GOLDENS=1 " \
        "rewrites it; review the diff)"
