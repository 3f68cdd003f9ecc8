"""Property tests: no input makes the assembler or the loader fail with anything but AsmError /
LoadError, and every valid program survives assemble -> disassemble -> assemble byte for byte.

Example counts keep this file to a few seconds; the @slow variants run many more
(LPU_SLOW=1 pytest -m slow tests/asm).
"""

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import TOKENS, programs, token_soups

from lpu_emu.asm import assemble_file, assemble_text, disassemble
from lpu_emu.errors import AsmError, LoadError
from lpu_emu.program import Program

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
slow = pytest.mark.skipif(not os.environ.get("LPU_SLOW"), reason="set LPU_SLOW=1")
SCRATCH = Path(tempfile.mkdtemp(prefix="lpu-asm-fuzz-"))
atexit.register(shutil.rmtree, SCRATCH, True)


def assemble_or_asm_error(src: str) -> Program | None:
    try:
        return assemble_text(src, "fuzz.lpu", base_dir=SCRATCH)
    except (AsmError, LoadError):
        return None


def check_round_trip(p: Program) -> None:
    text = disassemble(p)
    again = assemble_text(text, "round.dis")
    assert again == p
    assert disassemble(again) == text


# ---- (a) random text and bytes ----

@FAST
@given(st.text(max_size=300))
def test_random_text_only_raises_asm_errors(src):
    p = assemble_or_asm_error(src)
    if p is not None:
        check_round_trip(p)


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_file_only_raises_asm_errors(data):
    path = SCRATCH / "random.lpu"
    path.write_bytes(data)
    try:
        p = assemble_file(path)
    except (AsmError, LoadError):
        return
    check_round_trip(p)


# ---- (b) token soups ----

@FAST
@given(token_soups())
def test_token_soup_only_raises_asm_errors(src):
    p = assemble_or_asm_error(src)
    if p is not None:
        check_round_trip(p)


INSERTS = TOKENS + list(",:@+-[]().SEW\\\"\n0123456789")


@st.composite
def mutated_sources(draw):
    """A valid program with a few characters or tokens deleted, inserted or duplicated."""
    src = draw(programs(max_instructions=10))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(src)))
        how = draw(st.integers(0, 2))
        if how == 0:
            src = src[:i] + src[i + draw(st.integers(1, 5)):]
        elif how == 1:
            src = src[:i] + draw(st.sampled_from(INSERTS)) + src[i:]
        else:
            j = draw(st.integers(0, len(src)))
            src = src[:i] + src[j : j + draw(st.integers(1, 10))] + src[i:]
    return src


@FAST
@given(mutated_sources())
def test_mutated_programs_fail_cleanly_or_round_trip(src):
    p = assemble_or_asm_error(src)
    if p is not None:
        check_round_trip(p)


# ---- (c) .lpx bytes ----

@st.composite
def mutated_lpx(draw):
    """A valid .lpx with bytes overwritten; half the time the checksum is recomputed so that
    the damage reaches the header parser and the disassembler."""
    data = bytearray(assemble_text(draw(programs(max_instructions=8))).to_bytes())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data[16:48] = hashlib.sha256(bytes(data[48:])).digest()
    return bytes(data)


def load_and_disassemble(data: bytes) -> None:
    try:
        p = Program.from_bytes(data, "fuzz.lpx")
        disassemble(p)
    except LoadError:
        pass


@FAST
@given(st.binary(max_size=200))
def test_random_lpx_bytes_only_raise_load_errors(data):
    load_and_disassemble(data)
    load_and_disassemble(b"LPX\x00\x01\x00\x00\x00" + data)


@FAST
@given(mutated_lpx())
def test_mutated_lpx_only_raises_load_errors(data):
    load_and_disassemble(data)


# ---- (d) random valid programs ----

@FAST
@given(programs())
def test_random_programs_round_trip_lp30(src):
    check_round_trip(assemble_text(src, "random.lpu"))


@FAST
@given(programs(chip_name="tsp-v1"))
def test_random_programs_round_trip_tsp_v1(src):
    p = assemble_text(src, "random.lpu", chip="tsp-v1")
    assert p.chip == "tsp-v1"
    check_round_trip(p)


@FAST
@given(programs())
def test_random_programs_lpx_round_trip(src):
    p = assemble_text(src)
    q = Program.from_bytes(p.to_bytes())
    assert q == p
    assert assemble_text(disassemble(q)) == p


# ---- heavier variants ----

@pytest.mark.slow
@slow
@SLOW
@given(programs(max_instructions=60))
def test_random_programs_round_trip_many(src):
    check_round_trip(assemble_text(src))


@pytest.mark.slow
@slow
@SLOW
@given(st.one_of(mutated_sources(), token_soups(), st.text()))
def test_robustness_many(src):
    p = assemble_or_asm_error(src)
    if p is not None:
        check_round_trip(p)


@pytest.mark.slow
@slow
@SLOW
@given(mutated_lpx())
def test_mutated_lpx_many(data):
    load_and_disassemble(data)
