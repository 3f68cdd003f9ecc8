"""The disassembler's output form, its round trip, and .lpx files that cannot be loaded or
disassembled (LoadError with exact messages)."""

import dataclasses
import struct

import numpy as np
import pytest

from lpu_emu.asm import assemble_text, disassemble
from lpu_emu.errors import AsmError, LoadError
from lpu_emu.program import Program, Segment

SRC = """\
; a small program
.equ T, 2
.tensor x, int8, (2, 320), MEM_W0, 0, 4
.values x, 1, -2
.tensor w, fp32, (320), MEM_E0..MEM_E3, 1, 0
.lanemap rev, 3, 2, 1, 0
start:  MEM_W0 @T     Read.int8  x[1], S0E
        MEM_W0 +1     Read.int8  1:9, S1E
        MEM_E2 @10    Write.fp32 S4W, w
        VXM5   @3     AddI.fp32  S0E, -0.1, S8E
        SXM_W1 @start Distribute.int8 S0E, rev, S1E
"""


def test_disassembly_text():
    p = assemble_text(SRC, "s.lpu")
    assert disassemble(p) == "\n".join([
        "; disassembled by lpu-emu",
        ".chip lp30",
        '.file 0, "s.lpu"',
        ".tensor x, int8, (2, 320), MEM_W0, 0, 4",
        '.hex x, "01fe' + "00" * 318 + '", "' + "00" * 320 + '"',  # row-major: lanes 0, 1
        ".tensor w, fp32, (320), MEM_E0..MEM_E3, 1, 0",
        ".lanemap rev, 3, 2, 1, 0",
        ".loc 0, 7, 9",
        "        MEM_W0  @2   Read.int8        x[1], S0E",
        ".loc 0, 8, 9",
        "        MEM_W0  @3   Read.int8        1:9, S1E",
        ".loc 0, 9, 9",
        "        MEM_E2  @10  Write.fp32       S4W, w[0]",
        ".loc 0, 10, 9",
        "        VXM5    @3   AddI.fp32        S0E, -0.1, S8E",
        ".loc 0, 11, 9",
        "        SXM_W1  @2   Distribute.int8  S0E, rev, S1E",
        "",
    ])


def test_round_trip_is_byte_identical_and_a_fixpoint():
    p = assemble_text(SRC, "s.lpu")
    text = disassemble(p)
    q = assemble_text(text, "other-name.dis")
    assert q == p and q.to_bytes() == p.to_bytes()
    assert disassemble(q) == text


def test_round_trip_through_lpx_bytes(tmp_path):
    p = assemble_text(SRC, "s.lpu")
    p.save(tmp_path / "s.lpx")
    loaded = Program.load(tmp_path / "s.lpx")
    assert assemble_text(disassemble(loaded)) == p


def test_odd_file_names_survive():
    p = assemble_text("VXM0 @0 NOP 1\n", 'we\tird "name"\\\x01\u00e9.lpu')
    text = disassemble(p)
    assert '.file 0, "we\\tird \\"name\\"\\\\\\x01\u00e9.lpu"' in text
    assert assemble_text(text) == p


def test_empty_program():
    p = assemble_text("")
    assert len(p) == 0 and p.files == ("<input>",)
    assert assemble_text(disassemble(p)) == p


# ---- .lpx files that cannot be loaded ----

def lpx() -> bytes:
    return assemble_text(SRC, "s.lpu").to_bytes()


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda b: b[:-7],
     "v.lpx: truncated or padded .lpx: payload is {n7} bytes, the header says {n}"),
    (lambda b: b[:20], "v.lpx: truncated .lpx: 20 bytes, the header alone is 48"),
    (lambda b: b[:100] + bytes([b[100] ^ 0x10]) + b[101:],
     "v.lpx: corrupted .lpx: checksum mismatch"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0x01]), "v.lpx: corrupted .lpx: checksum mismatch"),
    (lambda b: b"\x7fELF" + b[4:],
     "v.lpx: not an lpu-emu object file (.lpx): bad magic b'\\x7fELF'"),
    (lambda b: b"", "v.lpx: not an lpu-emu object file (.lpx): too short (0 bytes)"),
    (lambda b: b[:4] + struct.pack("<H", 2) + b[6:],
     "v.lpx: .lpx format version 2, this lpu-emu reads version 1"),
], ids=["truncated", "header-only", "flipped-bit", "flipped-last-bit", "foreign", "empty",
        "version"])
def test_lpx_load_errors(damage, expected):
    good = lpx()
    n = len(good) - 48
    with pytest.raises(LoadError) as info:
        Program.from_bytes(damage(good), "v.lpx")
    assert info.value.message == expected.format(n=n, n7=n - 7)


# ---- programs that load but cannot be written as assembly ----

def base() -> Program:
    p = assemble_text(SRC, "s.lpu")
    p.meta["path"] = "v.lpx"
    return p


def replace_word(p: Program, i: int, word: int) -> Program:
    words = p.word.copy()
    words[i] = word
    return dataclasses.replace(p, word=words, meta={"path": "v.lpx"})


HINT = "hint: the .lpx was not written by this lpu-emu's assembler"


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: replace_word(p, 1, 0xFF),
     "instruction 1: word 0x00000000000000ff: unknown opcode 0xff"),
    # Read.int8 x[1], S0E is 0x10 | 1 << 8 | 5 << 39; bit 63 belongs to no field of Read
    (lambda p: replace_word(p, 0, int(p.word[0]) | 1 << 63),
     "instruction 0: word 0x8000028000000110: Read: stray bits 0x8000000000000000 set in the word"),
    (lambda p: replace_word(p, 0, 0x0F10),
     "instruction 0: word 0x0000000000000f10: Read: dtype code 15 is not allowed"),
    (lambda p: dataclasses.replace(p, queue=np.array([0, 1, 999, 3, 4], np.int16),
                                   meta={"path": "v.lpx"}),
     "instruction 2: queue 999 does not exist on lp30"),
    (lambda p: dataclasses.replace(p, chip="lp99", meta={"path": "v.lpx"}),
     "unknown chip 'lp99'"),
    (lambda p: dataclasses.replace(p, segments=p.segments + (Segment("MEM_W5", 0, 0, b"\0" * 320),),
                                   meta={"path": "v.lpx"}),
     "the data segment at MEM_W5 bank 0 address 0 belongs to no tensor"),
    (lambda p: dataclasses.replace(p, segments=(Segment("MEM_W0", 0, 4, b"\0" * 320),),
                                   meta={"path": "v.lpx"}),
     "the data segments of tensor 'x' do not match its layout"),
    (lambda p: dataclasses.replace(p, lanemaps=(), meta={"path": "v.lpx"}),
     "lane map 0 has no .lanemap"),
    (lambda p: dataclasses.replace(p, cycle=p.cycle[:2], meta={"path": "v.lpx"}),
     "the instruction arrays differ in length"),
    (lambda p: dataclasses.replace(p, symbols=(dataclasses.replace(p.symbols[0], name="x y"),)
                                   + p.symbols[1:], meta={"path": "v.lpx"}),
     "tensor name 'x y' is not a valid assembly name"),
], ids=["opcode", "stray-bits", "dtype", "queue", "chip", "stray-segment", "segment-size",
        "lanemap", "lengths", "name"])
def test_undisassemblable_programs(make, expected):
    with pytest.raises(LoadError) as info:
        disassemble(make(base()))
    assert info.value.render() == f"error: v.lpx: cannot disassemble: {expected}\n{HINT}"


def test_out_of_preset_values_print_and_fail_on_reassembly():
    p = base()
    # bank 1, address 5200 does not exist on lp30 but has a syntax: printed, rejected later
    word = 0x10 | 1 << 8 | 1 << 37 | 5200 << 39
    text = disassemble(replace_word(p, 1, word))
    assert "MEM_W0  @3   Read.int8        1:5200, S0E" in text
    with pytest.raises(AsmError) as info:
        assemble_text(text, "d.lpu")
    assert info.value.message == ("address 5200 is out of range: MEM slices of lp30 have 5120 "
                                  "addresses per bank (0..5119)")
