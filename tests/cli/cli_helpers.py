"""Helpers of the CLI tests (a module of its own: `from conftest import` is ambiguous when
several test folders have a conftest.py)."""

from __future__ import annotations

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


def lines(text: str) -> list[str]:
    """Output lines without the padding rich adds on the right."""
    return [line.rstrip() for line in text.splitlines()]
