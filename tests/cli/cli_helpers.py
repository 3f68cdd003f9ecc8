"""Helpers of the CLI tests (a module of its own: `from conftest import` is ambiguous when
several test folders have a conftest.py)."""

from __future__ import annotations

import importlib.util

import pytest

WIDTH = 100

# Four instructions, three tensors, issue cycles 0, 1, 3, 6 (docs/design.md section 9).
SOURCE = """\
; cli.lpu: z = x + y, the CLI tests' program
.chip lp30
.tensor x, int8, (320), MEM_W1, 0, 0
.values x, 1, 2, 3
.tensor y, int8, (320), MEM_W0, 0, 0
.tensor z, int8, (320), MEM_E0, 0, 0
        MEM_W1  @0      Read.int8   x, S0E
        MEM_W0  @1      Read.int8   y, S1E
        VXM0    @3      Add.int8    S0E, S1E, S2E
        MEM_E0  @6      Write.int8  S2E, z
"""


def asm_missing() -> str | None:
    """Why the assembler package (written concurrently) cannot be used yet, or None."""
    if importlib.util.find_spec("lpu_emu.asm") is None:
        return "lpu_emu.asm has not landed yet"
    try:
        import lpu_emu.asm as asm
    except ImportError as exc:  # tests/asm reports a broken package; here it only skips
        return f"lpu_emu.asm does not import: {exc}"
    if not (hasattr(asm, "assemble_file") and hasattr(asm, "disassemble")):
        return "lpu_emu.asm has no assemble_file/disassemble yet"
    return None


needs_asm = pytest.mark.skipif(asm_missing() is not None, reason=str(asm_missing()))


def lines(text: str) -> list[str]:
    """Output lines without the padding rich adds on the right."""
    return [line.rstrip() for line in text.splitlines()]
