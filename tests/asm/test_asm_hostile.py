"""Hostile and accidental inputs to the assembler (issue 11): files that are not source, devices,
huge or lying .npy headers, runaway macros and includes, sandboxed paths. Each is one short
AsmError, refused before the work it would cost, quoting nothing of a file that is not source."""

from __future__ import annotations

import os
import struct
import time

import numpy as np
import pytest

from lpu_emu.asm import assemble_file, assemble_text
from lpu_emu.asm import source as S
from lpu_emu.errors import AsmError, Span
from lpu_emu.files import MAX_NPY_BYTES

TENSOR = ".tensor x, int8, (320), MEM_W0, 0, 0\n"


def fails(path, **kw) -> AsmError:
    with pytest.raises(AsmError) as e:
        assemble_file(path, **kw)
    return e.value


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- files that are not source ----
def test_an_include_of_a_non_source_file_quotes_none_of_it(tmp_path):
    write(tmp_path / "secret.txt", "TOPSECRET password line\n")
    main = write(tmp_path / "m.lpu", '.include "secret.txt"\n')
    err = fails(main)
    assert err.message == "cannot include 'secret.txt': not an assembly source file"
    assert err.hint == "included files end in .lpu or .inc"
    assert "TOPSECRET" not in err.render()


def test_including_etc_passwd_is_refused_by_name(tmp_path):
    err = fails(write(tmp_path / "m.lpu", '.include "/etc/passwd"\n'))
    assert err.message == "cannot include '/etc/passwd': not an assembly source file"


def test_a_binary_source_is_one_short_error(tmp_path):
    (tmp_path / "b.lpu").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 40)
    err = fails(tmp_path / "b.lpu")
    assert err.render() == (f"error: {tmp_path / 'b.lpu'} is a binary file, not assembly source "
                            "(byte 0x7f at line 1)")


def test_a_binary_include_points_at_the_include(tmp_path):
    (tmp_path / "b.inc").write_bytes(b"VXM0 @0 NOP 1\n\x00\x01\x02")
    err = fails(write(tmp_path / "m.lpu", 'VXM1 @0 NOP 1\n.include "b.inc"\n'))
    assert str(err.span) == f"{tmp_path / 'm.lpu'}:2:10"
    assert err.message == (f"{tmp_path / 'b.inc'} is a binary file, not assembly source (byte "
                           "0x00 at line 2)")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_are_refused_before_reading(tmp_path):
    t0 = time.perf_counter()
    err = fails("/dev/zero")
    assert err.message == ("cannot read /dev/zero: it is not a regular file (a device, FIFO or "
                           "socket)")
    (tmp_path / "zero.inc").symlink_to("/dev/zero")
    err = fails(write(tmp_path / "m.lpu", '.include "zero.inc"\n'))
    assert err.message == ("cannot open include file 'zero.inc': it is not a regular file (a "
                           "device, FIFO or socket)")
    assert time.perf_counter() - t0 < 1


def test_a_source_over_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("lpu_emu.files.MAX_SOURCE_BYTES", 100)
    err = fails(write(tmp_path / "big.lpu", "; " + "x" * 200 + "\n"))
    assert err.message == f"cannot read {tmp_path / 'big.lpu'}: it is 203 bytes, more than the " \
                          "100 allowed"


def test_control_characters_in_a_shown_line_are_neutralised():
    err = AsmError("bad", Span("f.lpu", 1, 5, 1, "ab\x1b[2Jcd"))
    assert err.render().splitlines()[1] == "  ab\ufffd[2Jcd"


# ---- .npy headers ----
def npy_with_header(path, header: str, data: bytes = b"") -> None:
    head = header.encode("latin1")
    pad = 64 - (10 + len(head) + 1) % 64
    head += b" " * pad + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + data)


def npy_error(tmp_path, name: str = "x.npy") -> str:
    main = write(tmp_path / "n.lpu", TENSOR + f'.npy x, "{name}"\n')
    return fails(main).message


def test_a_npy_claiming_a_trillion_elements_is_refused_before_allocating(tmp_path):
    npy_with_header(tmp_path / "x.npy",
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000, 1000000), }")
    assert npy_error(tmp_path) == (
        "cannot load 'x.npy': its header claims 1,000,000,000,000 elements "
        f"(8,000,000,000,000 bytes), more than the {MAX_NPY_BYTES:,} bytes allowed")


def test_a_npy_whose_data_is_shorter_than_its_header_says(tmp_path):
    npy_with_header(tmp_path / "x.npy",
                    "{'descr': '|i1', 'fortran_order': False, 'shape': (320,), }", b"\x01" * 10)
    assert npy_error(tmp_path) == (
        "cannot load 'x.npy': it holds 10 bytes of data; its header says 320")


def test_a_malformed_npy_header(tmp_path):
    npy_with_header(tmp_path / "x.npy", "{'descr': '<i8', 'shape': (((((")
    assert npy_error(tmp_path).startswith("cannot load 'x.npy': its .npy header is malformed (")


def test_a_npy_of_python_objects_is_never_unpickled(tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}] * 320, dtype=object), allow_pickle=True)
    assert npy_error(tmp_path) == ("cannot load 'x.npy': it holds Python objects (pickles are "
                                   "never loaded)")


def test_a_good_npy_still_loads(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(320) % 100)
    p = assemble_file(write(tmp_path / "n.lpu", TENSOR + '.npy x, "x.npy"\n'))
    assert p.segments[0].data[:4] == bytes([0, 1, 2, 3])


# ---- the sandbox ----
def test_the_sandbox_confines_includes_and_npy(tmp_path):
    write(tmp_path / "lib" / "ok.inc", ".equ T, 1\n")
    write(tmp_path / "outside.inc", ".equ U, 2\n")
    np.save(tmp_path / "x.npy", np.zeros(320, np.int8))
    main = write(tmp_path / "hand-in" / "m.lpu", '.include "../outside.inc"\n')
    assert assemble_file(main).chip == "lp30"  # without --sandbox: allowed
    err = fails(main, sandbox=True)
    assert err.message == ("cannot include '../outside.inc': it is outside the sandbox "
                           f"{(tmp_path / 'hand-in').resolve()}")
    assert err.hint == ("--sandbox confines .include and .npy files to the program's directory "
                        "tree")
    main = write(tmp_path / "hand-in" / "n.lpu", TENSOR + f'.npy x, "{tmp_path / "x.npy"}"\n')
    assert fails(main, sandbox=True).message == (
        f"'{tmp_path / 'x.npy'}' is outside the sandbox {(tmp_path / 'hand-in').resolve()}")
    (tmp_path / "hand-in" / "link.inc").symlink_to(tmp_path / "outside.inc")
    main = write(tmp_path / "hand-in" / "l.lpu", '.include "link.inc"\n')
    assert "outside the sandbox" in fails(main, sandbox=True).message  # links are followed
    write(tmp_path / "hand-in" / "sub" / "in.inc", ".equ V, 3\n")
    main = write(tmp_path / "hand-in" / "s.lpu", '.include "sub/in.inc"\n')
    assert assemble_file(main, sandbox=True).chip == "lp30"  # inside the tree: fine


# ---- macros and includes: bounded in bytes, time and depth ----
def message(src: str) -> str:
    with pytest.raises(AsmError) as e:
        assemble_text(src, "t.lpu")
    return e.value.render()


def test_runaway_macro_recursion_prints_the_chain_once():
    text = message(".macro r\nr\n.endm\nr\n")
    assert text.splitlines()[-1] == (
        "hint: in macro 'r' expanded at t.lpu:2, ... 62 more expansions ..., in macro 'r' "
        "expanded at t.lpu:4")
    assert text.count("expanded at") == 2


def test_macro_expansion_is_bounded_in_bytes(monkeypatch):
    monkeypatch.setattr(S, "MAX_EXPANDED_BYTES", 1000)
    src = ".macro m a\n; \\a \\a \\a \\a\n.endm\nm " + "x" * 300 + "\n"
    assert message(src).splitlines()[0] == (
        "t.lpu:4:1: error: macro expansion produces more than 1,000 bytes of text")


def test_includes_are_bounded_in_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "MAX_INCLUDED_BYTES", 100)
    write(tmp_path / "a.inc", "; " + "y" * 60 + "\n")
    main = write(tmp_path / "m.lpu", '.include "a.inc"\n.include "a.inc"\n')
    err = fails(main)
    assert err.message == "includes read more than 100 bytes in all"
    assert err.span.line == 2


def test_preprocessing_is_bounded_in_time(monkeypatch):
    monkeypatch.setattr(S, "MAX_SECONDS", -1)
    assert message(".macro m\nVXM0 +1 NOP 1\n.endm\nm\n").splitlines()[0] == (
        "t.lpu:4:1: error: preprocessing takes more than -1 s (includes and macro expansions)")


# ---- first-time user's rough edges ----
@pytest.mark.parametrize(("src", "first"), [
    (".equ A, 1/0\nVXM0 @0 NOP 1\n", "t.lpu:1:10: error: division by zero"),
    (".equ B, nope + 1\n", "t.lpu:1:9: error: undefined symbol 'nope'"),
    (".equ C, D\n.equ D, C\n", "t.lpu:2:9: error: circular definition: C -> D -> C"),
])
def test_unused_constants_are_checked(src, first):
    assert message(src).splitlines()[0] == first


def test_a_bad_name_hint_states_the_rule():
    assert message(".tensor 9, int8, (320), MEM_W0, 0, 0\n").splitlines()[-1] == (
        "hint: a name is ASCII: a letter, '_' or '.' first, then letters, digits and '_', with "
        "single dots between parts (x, _t0, .L1, a.b)")
