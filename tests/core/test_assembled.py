"""The reference core on assembled programs: the messages point at the assembly source lines.
(The other tests build Programs from encoded words so that they do not depend on the
assembler; these check the two together, readably.)

tsp-v1 positions: MEM_W1 45, MEM_W0 46, VXM 47, MEM_E0 48.
"""

from __future__ import annotations

import numpy as np
import pytest

from lpu_emu.asm import assemble_text
from lpu_emu.core.run import run

HEAD = """.chip tsp-v1
.tensor x, int8, (320), MEM_W1, 0, 0
.values x, 1, -2, 3, 127
.tensor y, int8, (320), MEM_W0, 0, 0
.values y, 10, 20, 30, 1
.tensor z, int8, (320), MEM_E0, 0, 0
"""


def run_text(body: str, lenient: bool = False):
    return run(assemble_text(HEAD + body, filename="prog.lpu"), engine="reference",
               lenient=lenient)


def test_vecadd_by_hand():
    r = run_text("""\
        MEM_W1  @0      Read.int8   x, S0E      ; at 45 at 1, at the VXM (47) at 3
        MEM_W0  @1      Read.int8   y, S1E      ; at 46 at 2, at the VXM at 3
        VXM0    @3      Add.int8    S0E, S1E, S2E   ; latency 2: at 47 at 5
        MEM_E0  @6      Write.int8  S2E, z      ; passes 48 at 6, lands at 7
""")
    assert r.violations == [] and r.cycles == 7
    assert r.tensor("z")[:5].tolist() == [11, 18, 33, -128, 0]  # 127 + 1 wraps


CASES = {
    "no-value": ("""\
        MEM_W1  @0      Read.int8   x, S0E
        VXM0    @3      Add.int8    S0E, S1E, S2E
""", "cycle 3: VXM0: no-value: nothing passes on stream S1E at position 47; nothing is ever "
       "placed on S1E upstream of position 47 (prog.lpu:8)"),
    "two-producers": ("""\
        MEM_W1  @0      Read.int8   x, S0E
        VXM0    @3      Mov.int8    S0E, S2E
        VXM1    @3      Neg.int8    S0E, S2E
""", "cycle 3: VXM1: two-producers: stream S2E gets a second value at position 47 at cycle 4"
     " (the first from VXM0, prog.lpu:8) (prog.lpu:9)"),
    "bank-conflict": ("""\
        MEM_E0  @0      Read.int8   z, S0W      ; passes MEM_W0 (46) at 3
        MEM_W0  @3      Write.int8  S0W, y      ; lands at 4
        MEM_W0  @4      Read.int8   y, S1E
""", "cycle 4: MEM_W0: bank-conflict: bank 0 is read at cycle 4, when a write lands in it"
     " (the other from prog.lpu:8) (prog.lpu:9)"),
    "wrong-dtype": ("""\
        MEM_W1  @0      Read.fp8e4m3 x, S0E
        VXM0    @3      Mov.int8    S0E, S2E
""", "cycle 3: VXM0: wrong-dtype: stream S0E at position 47 carries fp8e4m3, but Mov.int8 reads"
     " int8 (prog.lpu:8)"),
    "no-weights": ("""\
        MEM_W1  @0      Read.int8   x, S0W
        MXM_W0  @45     ACC.int8    S0W, S4E, 0
""", "cycle 45: MXM_W0: no-weights: ACC on accumulator 0 before any IW has installed weights"
     " on this plane (prog.lpu:8)"),
    "address": ("""\
        MEM_W1  @0      Read.int8   0:4095, S0E
        MEM_W1  +1      Repeat      2, 1, 1     ; 4096 and 4097: outside 0..4095
""", "cycle 1: MEM_W1: address: address 4096 is outside bank 0 (addresses 0..4095) (prog.lpu:8)"),
    "queue-busy": ("""\
        MEM_W1  @0      NOP         3
        MEM_W1  @2      Read.int8   x, S0E
""", "cycle 2: MEM_W1: queue-busy: issues while its unit is busy until cycle 3 (prog.lpu:8)"),
    "sync": ("""\
        VXM2    @5      Sync
""", "cycle 5: VXM2: sync: no Notify issued at or after cycle 5 releases this Sync"
     " (prog.lpu:7)"),
}


@pytest.mark.parametrize("kind", CASES)
def test_one_message_per_class(kind):
    body, message = CASES[kind]
    r = run_text(body)
    assert [v.message for v in r.violations] == [message]
    assert r.violations[0].kind == kind and r.stopped


def test_lenient_continues_past_address_violations():
    r = run_text(CASES["address"][0], lenient=True)
    assert [v.kind for v in r.violations] == ["address", "address"]
    assert not r.stopped and r.cycles == 3
    assert np.array_equal(r.tensor("z"), np.zeros(320, np.int8))
