"""One located diagnostic per class of mistake: the exact `file:line:col: error: message`, the
source line, the caret under the offending token, and the hint."""

import textwrap

import numpy as np
import pytest

from lpu_emu.asm import assemble_file, assemble_text
from lpu_emu.errors import AsmError

X = ".tensor x, int8, (2, 320), MEM_W0, 0, 0\n"  # line 1 of most sources below


def render(src: str, chip: str | None = None) -> str:
    with pytest.raises(AsmError) as info:
        assemble_text(src, "t.lpu", chip=chip)
    return info.value.render()


def diag(*lines: str) -> str:
    return "\n".join(lines)


CASES = {
    "syntax": (
        "VXM0 @0 Add.int8 S0E S1E, S2E\n",
        diag("t.lpu:1:22: error: expected ',' between operands, got 'S1E'",
             "  VXM0 @0 Add.int8 S0E S1E, S2E",
             "                       ^^^",
             "hint: syntax: Add.<dtype> x, y, z"),
    ),
    "unexpected-character": (
        ".equ a, 1 $ 2\n",
        diag("t.lpu:1:11: error: unexpected character '$'",
             "  .equ a, 1 $ 2",
             "            ^"),
    ),
    "unknown-mnemonic": (
        "VXM0 @0 Ad.int8 S0E, S1E, S2E\n",
        diag("t.lpu:1:9: error: unknown mnemonic 'Ad'",
             "  VXM0 @0 Ad.int8 S0E, S1E, S2E",
             "          ^^",
             "hint: did you mean 'Add' or 'Read' or 'AddI'?"),
    ),
    "unknown-directive": (
        ".tensr y, int8, (320), MEM_W1, 0, 0\n",
        diag("t.lpu:1:1: error: unknown directive '.tensr'",
             "  .tensr y, int8, (320), MEM_W1, 0, 0",
             "  ^^^^^^",
             "hint: did you mean '.tensor'?"),
    ),
    "wrong-operand-kind": (
        "SXM_W0 @0 ShiftUp.int8 S0E, S1E, S2E\n",
        diag("t.lpu:1:29: error: operand n of ShiftUp must be an integer, got stream 'S1E'",
             "  SXM_W0 @0 ShiftUp.int8 S0E, S1E, S2E",
             "                              ^^^",
             "hint: syntax: ShiftUp.<dtype> x, n, z"),
    ),
    "missing-operand": (
        "VXM0 @0 Add.int8 S0E, S1E\n",
        diag("t.lpu:1:26: error: Add expects 3 operand(s), got 2",
             "  VXM0 @0 Add.int8 S0E, S1E",
             "                           ^",
             "hint: syntax: Add.<dtype> x, y, z"),
    ),
    "unknown-slice": (
        ".tensor y, int8, (320), MEM_W78, 0, 0\n",
        diag("t.lpu:1:25: error: unknown MEM slice 'MEM_W78' on lp30",
             "  .tensor y, int8, (320), MEM_W78, 0, 0",
             "                          ^^^^^^^",
             "hint: did you mean 'MEM_W8' or 'MEM_W7' or 'MEM_W77'?"),
    ),
    "stream-out-of-range": (
        "VXM0 @0 Add.int8 S32E, S1E, S2E\n",
        diag("t.lpu:1:18: error: stream S32E does not exist: lp30 has 32 streams per direction "
             "(S0E..S31E)",
             "  VXM0 @0 Add.int8 S32E, S1E, S2E",
             "                   ^^^^"),
    ),
    "stream-misaligned": (
        "VXM0 @0 Add.fp32 S0E, S6W, S8E\n",
        diag("t.lpu:1:23: error: S6W cannot start a 4-stream group (fp32): the index must be a "
             "multiple of 4",
             "  VXM0 @0 Add.fp32 S0E, S6W, S8E",
             "                        ^^^"),
    ),
    "address-out-of-range": (
        "MEM_W0 @0 Read.int8 1:5120, S0E\n",
        diag("t.lpu:1:23: error: address 5120 is out of range: MEM slices of lp30 have 5120 "
             "addresses per bank (0..5119)",
             "  MEM_W0 @0 Read.int8 1:5120, S0E",
             "                        ^^^^"),
    ),
    "bank-out-of-range": (
        "MEM_W0 @0 Read.int8 2:0, S0E\n",
        diag("t.lpu:1:21: error: bank 2 does not exist: MEM slices of lp30 have 2 banks (0..1)",
             "  MEM_W0 @0 Read.int8 2:0, S0E",
             "                      ^"),
    ),
    "outside-tensor": (
        X + "MEM_W0 @0 Read.int8 x[2], S0E\n",
        diag("t.lpu:2:21: error: x[2] is outside tensor 'x': it spans 2 address(es) in MEM_W0 "
             "(x[0]..x[1])",
             "  MEM_W0 @0 Read.int8 x[2], S0E",
             "                      ^^^^"),
    ),
    "tensor-in-another-slice": (
        X + "MEM_W1 @0 Read.int8 x, S0E\n",
        diag("t.lpu:2:21: error: tensor 'x' is not in MEM_W1: it is in MEM_W0",
             "  MEM_W1 @0 Read.int8 x, S0E",
             "                      ^",
             "hint: 'x' is defined at t.lpu:1"),
    ),
    "immediate-out-of-range": (
        "VXM7 @3 MaxI.int32 S0E, 2147483648, S8E\n",
        diag("t.lpu:1:25: error: immediate 2147483648 does not fit int32 "
             "(-2147483648..2147483647)",
             "  VXM7 @3 MaxI.int32 S0E, 2147483648, S8E",
             "                          ^^^^^^^^^^"),
    ),
    "field-out-of-range": (
        "VXM0 @0 NOP 0x100000000\n",
        diag("t.lpu:1:13: error: NOP n = 4294967296 does not fit its 32-bit field (1..4294967295)",
             "  VXM0 @0 NOP 0x100000000",
             "              ^^^^^^^^^^^"),
    ),
    "accumulator-out-of-range": (
        "MXM_W0 @350 ABC 64\n",
        diag("t.lpu:1:17: error: accumulator 64 is out of range: lp30 has 64 accumulators per "
             "MXM plane (0..63)",
             "  MXM_W0 @350 ABC 64",
             "                  ^^"),
    ),
    "link-out-of-range": (
        "C2C_E @10 Send.int8 S0E, 8\n",
        diag("t.lpu:1:26: error: link 8 does not exist: tsp-v1 has 8 C2C links per edge (0..7)",
             "  C2C_E @10 Send.int8 S0E, 8",
             "                           ^"),
    ),
    "wrong-dtype": (
        "VXM0 @3 Exp.int8 S0E, S4W\n",
        diag("t.lpu:1:13: error: Exp does not take dtype int8",
             "  VXM0 @3 Exp.int8 S0E, S4W",
             "              ^^^^",
             "hint: allowed: fp16, bf16, fp8e4m3, fp32"),
    ),
    "missing-dtype": (
        "VXM0 @3 Add S0E, S1E, S2E\n",
        diag("t.lpu:1:9: error: Add needs a dtype: Add.<dtype> with <dtype> one of int8, int32, "
             "fp16, bf16, fp8e4m3, fp32",
             "  VXM0 @3 Add S0E, S1E, S2E",
             "          ^^^"),
    ),
    "dtype-on-untyped": (
        "MXM_W0 @3 IW.int8\n",
        diag("t.lpu:1:14: error: IW takes no dtype",
             "  MXM_W0 @3 IW.int8",
             "               ^^^^",
             "hint: syntax: IW"),
    ),
    "large-alu": (
        "VXM1 @3 Exp.fp32 S0E, S4W\n",
        diag("t.lpu:1:1: error: Exp needs a large ALU; VXM1 is not one on lp30",
             "  VXM1 @3 Exp.fp32 S0E, S4W",
             "  ^^^^",
             "hint: large ALUs: VXM0, VXM5, VXM10, VXM15"),
    ),
    "wrong-queue-kind": (
        "VXM0 @0 Read.int8 0:0, S0E\n",
        diag("t.lpu:1:9: error: Read is a MEM instruction; VXM0 is a VXM queue",
             "  VXM0 @0 Read.int8 0:0, S0E",
             "          ^^^^^^^^^",
             "hint: MEM queues on lp30: MEM_W77, MEM_W76, ..., MEM_E77"),
    ),
    "unknown-queue": (
        "vxm16 @0 NOP 1\n",
        diag("t.lpu:1:1: error: unknown queue 'vxm16' on lp30",
             "  vxm16 @0 NOP 1",
             "  ^^^^^",
             "hint: did you mean 'VXM6' or 'VXM1' or 'VXM15'?"),
    ),
    "out-of-order": (
        "VXM0 @5 NOP 1\nVXM1 @1 NOP 1\nVXM0 @4 NOP 1\n",
        diag("t.lpu:3:7: error: VXM0 issues in order: cycle 4 is not after cycle 5, the previous "
             "VXM0 instruction at t.lpu:1",
             "  VXM0 @4 NOP 1",
             "        ^"),
    ),
    "out-of-order-after-repeat": (
        X + "MEM_W0 @0 Read.int8 x, S0E\nMEM_W0 +1 Repeat 4, 2\nMEM_W0 @7 NOP 1\n",
        diag("t.lpu:4:9: error: MEM_W0 issues in order: cycle 7 is not after cycle 7, the last "
             "repetition of the Repeat at t.lpu:3",
             "  MEM_W0 @7 NOP 1",
             "          ^"),
    ),
    "repeat-after-icu": (
        "VXM0 @0 NOP 2\nVXM0 @2 Repeat 2, 1\n",
        diag("t.lpu:2:9: error: Repeat must follow a non-ICU instruction on VXM0, not NOP",
             "  VXM0 @2 Repeat 2, 1",
             "          ^^^^^^"),
    ),
    "negative-cycle": (
        ".equ T, 3\nVXM0 @T-4 NOP 1\n",
        diag("t.lpu:2:7: error: issue cycle -1 is negative",
             "  VXM0 @T-4 NOP 1",
             "        ^^^"),
    ),
    "undefined-symbol": (
        ".equ start, 4\nVXM0 @strat+1 NOP 1\n",
        diag("t.lpu:2:7: error: undefined symbol 'strat'",
             "  VXM0 @strat+1 NOP 1",
             "        ^^^^^",
             "hint: did you mean 'start'?"),
    ),
    "duplicate-symbol": (
        "loop: VXM0 @0 NOP 1\n.equ loop, 2\n",
        diag("t.lpu:2:6: error: duplicate symbol 'loop'",
             "  .equ loop, 2",
             "       ^^^^",
             "hint: first defined at t.lpu:1 (as a label)"),
    ),
    "circular": (
        ".equ A, B + 1\n.equ B, A * 2\nVXM0 @A NOP 1\n",
        diag("t.lpu:2:9: error: circular definition: A -> B -> A",
             "  .equ B, A * 2",
             "          ^"),
    ),
    "division-by-zero": (
        ".equ A, 4 / (2 - 2)\nVXM0 @A NOP 1\n",
        diag("t.lpu:1:11: error: division by zero",
             "  .equ A, 4 / (2 - 2)",
             "            ^"),
    ),
    "tensor-overlap": (
        X + ".tensor y, fp16, (320), MEM_W1..MEM_W0, 0, 1\n",
        diag("t.lpu:2:9: error: tensor 'y' overlaps tensor 'x' in MEM_W0 bank 0: addresses 1..1 "
             "and 0..1",
             "  .tensor y, fp16, (320), MEM_W1..MEM_W0, 0, 1",
             "          ^",
             "hint: 'x' is defined at t.lpu:1"),
    ),
    "tensor-range-width": (
        ".tensor y, fp32, (320), MEM_E0..MEM_E2, 0, 0\n",
        diag("t.lpu:1:25: error: a spread fp32 tensor needs 4 MEM slice(s), one per byte plane; "
             "MEM_E0..MEM_E2 has 3",
             "  .tensor y, fp32, (320), MEM_E0..MEM_E2, 0, 0",
             "                          ^^^^^^^^^^^^^^",
             "hint: or place it in one slice: MEM_E0"),
    ),
    "values-out-of-range": (
        X + ".values x, 1, -129\n",
        diag("t.lpu:2:15: error: value -129 is out of range for int8 (-128..127)",
             "  .values x, 1, -129",
             "                ^^^^"),
    ),
    "non-permutation": (
        ".lanemap bc, 0, 0\nSXM_W1 @3 Permute.int8 S0E, bc, S1E\n",
        diag("t.lpu:2:29: error: lane map 'bc' is not a permutation of the 320 lanes: lane 0 "
             "appears 2 times",
             "  SXM_W1 @3 Permute.int8 S0E, bc, S1E",
             "                              ^^",
             "hint: Permute needs every lane exactly once; Distribute allows repeats and -1"),
    ),
    "label-at-end": (
        "VXM0 @0 NOP 1\nend:\n",
        diag("t.lpu:2:1: error: label 'end' is not followed by an instruction",
             "  end:",
             "  ^^^",
             "hint: a label names the issue cycle of the next instruction line"),
    ),
    "chip-mismatch": (
        ".chip lp30\n",
        diag("t.lpu:1:7: error: the source is for chip lp30, but chip tsp-v1 was requested",
             "  .chip lp30",
             "        ^^^^",
             "hint: remove the .chip line or request the same chip"),
    ),
    "octal-looking": (
        ".equ a, 010\n",
        diag("t.lpu:1:9: error: invalid number '010': leading zeros are not allowed",
             "  .equ a, 010",
             "          ^^^",
             "hint: octal is not supported; write 10 or 0xa"),
    ),
    "float-for-int": (
        "VXM5 @3 AddI.int8 S0E, 1.5, S1E\n",
        diag("t.lpu:1:24: error: AddI.int8 takes an integer immediate, not a float",
             "  VXM5 @3 AddI.int8 S0E, 1.5, S1E",
             "                         ^^^",
             "hint: float immediates go with float dtypes"),
    ),
    "macro-body": (
        ".macro add3 a, b\n\tVXM0 +1 Add.int8 \\a, \\b, S2E\n.endm\nadd3 S0E, 7\n",
        diag("t.lpu:2:23: error: operand y of Add must be a stream (S<i>E or S<i>W), got '7'",
             "  \tVXM0 +1 Add.int8 \\a, \\b, S2E",
             "  \t                     ^^",
             "hint: syntax: Add.<dtype> x, y, z (in macro 'add3' expanded at t.lpu:4)"),
    ),
    "unterminated-macro": (
        ".macro m\nVXM0 +1 NOP 1\n",
        diag("t.lpu:1:8: error: unterminated .macro 'm': no .endm before the end of t.lpu",
             "  .macro m",
             "         ^"),
    ),
}
CHIPS = {"link-out-of-range": "tsp-v1", "chip-mismatch": "tsp-v1"}


@pytest.mark.parametrize("name", CASES)
def test_located_message(name):
    src, expected = CASES[name]
    assert render(src, CHIPS.get(name)) == expected


def test_error_carries_span_fields():
    with pytest.raises(AsmError) as info:
        assemble_text("VXM0 @0 NOP 1\nVXM0 @0 Ad.int8 S0E\n", "f.lpu")
    span = info.value.span
    assert (span.file, span.line, span.col, span.length) == ("f.lpu", 2, 9, 2)
    assert span.text == "VXM0 @0 Ad.int8 S0E"


# ---- errors that involve files ----

def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_include_cycle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.lpu", '.include "inc/b.inc"\n')
    write(tmp_path / "inc/b.inc", '.equ B, 1\n.include "../a.lpu"\n')
    with pytest.raises(AsmError) as info:
        assemble_file("a.lpu")
    assert info.value.render() == diag(
        "inc/b.inc:2:10: error: include cycle: a.lpu -> inc/b.inc -> a.lpu",
        '  .include "../a.lpu"',
        "           ^^^^^^^^^^")


def test_missing_include(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "p.lpu", '; uses a header\n.include "nothere.inc"\n')
    with pytest.raises(AsmError) as info:
        assemble_file("p.lpu")
    assert info.value.render() == diag(
        "p.lpu:2:10: error: cannot open include file 'nothere.inc': No such file or directory",
        '  .include "nothere.inc"',
        "           ^^^^^^^^^^^^^")


def test_bad_utf8(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "u.lpu").write_bytes(b".equ a, 1\n.equ b\xc3\xa9, 2 ; \xe9t\xe9\n")
    with pytest.raises(AsmError) as info:
        assemble_file("u.lpu")
    assert info.value.render() == diag(
        "u.lpu:2:14: error: invalid UTF-8 byte 0xe9",
        "  .equ b\u00e9, 2 ; \ufffdt\ufffd",
        "               ^")


def test_bad_utf8_in_include_names_the_included_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "m.lpu", '.include "h.inc"\n')
    (tmp_path / "h.inc").write_bytes(b"\xff\n")
    with pytest.raises(AsmError) as info:
        assemble_file("m.lpu")
    assert info.value.render() == diag(
        "h.inc:1:1: error: invalid UTF-8 byte 0xff",
        "  \ufffd",
        "  ^",
        "hint: included at m.lpu:1")


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b"not a numpy file"),
     "'y.npy' is not a .npy file (it does not start with the NumPy magic)"),
    (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00garbage"),
     "cannot load 'y.npy': ..."),  # the rest of the message is numpy's
    (lambda p: np.save(p, np.zeros((2, 320), dtype=np.int8)),
     "'y.npy' has shape (2, 320); tensor 'y' is (320)"),
    (lambda p: np.save(p, np.full(320, 200, dtype=np.int16)),
     "'y.npy' holds 200, out of range for int8 (-128..127)"),
    (lambda p: np.save(p, np.zeros(320, dtype=np.float32)),
     "'y.npy' holds float32 values; tensor 'y' is int8"),
    (lambda p: np.save(p, np.zeros(320, dtype=bool)),
     "'y.npy' holds bool data; a tensor needs integers or floats"),
    (lambda p: None, "cannot load 'y.npy': No such file or directory"),
], ids=["garbage", "bad-header", "shape", "range", "float-for-int", "bool", "missing"])
def test_bad_npy(tmp_path, monkeypatch, make, message):
    monkeypatch.chdir(tmp_path)
    make(tmp_path / "y.npy")
    write(tmp_path / "n.lpu", '.tensor y, int8, (320), MEM_W1, 0, 0\n.npy y, "y.npy"\n')
    with pytest.raises(AsmError) as info:
        assemble_file("n.lpu")
    first, *rest = info.value.render().splitlines()
    if message.endswith("..."):
        assert first.startswith(f"n.lpu:2:9: error: {message[:-3]}") and len(first) > 45
    else:
        assert first == f"n.lpu:2:9: error: {message}"
    assert rest == ['  .npy y, "y.npy"', "          ^^^^^^^"]


def test_unreadable_main_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AsmError) as info:
        assemble_file("absent.lpu")
    assert info.value.render() == "error: cannot read absent.lpu: No such file or directory"


def test_unknown_chip_argument():
    with pytest.raises(AsmError) as info:
        assemble_text("", chip="lp31")
    assert info.value.render() == "error: unknown chip 'lp31'\nhint: chips: lp30, tsp-v1"
