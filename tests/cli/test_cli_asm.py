"""`lpu asm` and `lpu disasm`: files in and out, the summary line, errors as diagnostics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import SOURCE


@pytest.fixture
def src(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cli.lpu"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_asm_writes_the_object_beside_the_source(lpu, src: Path) -> None:
    from lpu_emu.program import Program

    r = lpu("asm", "cli.lpu")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "cli.lpu -> cli.lpx: 4 instructions, 3 tensors, cycles 0..6 on lp30\n"
    program = Program.load(src.with_suffix(".lpx"))
    assert len(program) == 4 and program.chip == "lp30"
    assert program.cycle.tolist() == [0, 1, 3, 6]
    assert sorted(p.name for p in src.parent.iterdir()) == ["cli.lpu", "cli.lpx"]


def test_asm_output_option(lpu, src: Path) -> None:
    (src.parent / "out").mkdir()
    r = lpu("asm", "cli.lpu", "-o", "out/prog.lpx")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("cli.lpu -> out/prog.lpx: 4 instructions")
    assert (src.parent / "out" / "prog.lpx").is_file()
    assert not src.with_suffix(".lpx").exists()


def test_asm_chip_option_without_chip_directive(lpu, src: Path) -> None:
    src.write_text(SOURCE.replace(".chip lp30\n", ""), encoding="utf-8")
    r = lpu("asm", "cli.lpu", "--chip", "tsp-v1")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.endswith(" on tsp-v1\n")


def test_asm_chip_option_contradicting_the_source(lpu, src: Path) -> None:
    r = lpu("asm", "cli.lpu", "--chip", "tsp-v1")
    assert r.exit_code == 2
    assert r.stderr.startswith("cli.lpu:") or "error" in r.stderr
    assert "Traceback" not in r.stderr
    assert not src.with_suffix(".lpx").exists()


def test_asm_unknown_chip(lpu, src: Path) -> None:
    r = lpu("asm", "cli.lpu", "--chip", "nope")
    assert r.exit_code == 2
    assert r.stderr == "error: unknown chip 'nope'\nhint: valid chips: lp30, tsp-v1\n"
    assert not src.with_suffix(".lpx").exists()


def test_asm_error_is_a_located_diagnostic(lpu, src: Path) -> None:
    src.write_text(SOURCE.replace("Add.int8", "Addd.int8"), encoding="utf-8")
    r = lpu("asm", "cli.lpu")
    assert r.exit_code == 2
    assert re.match(r"\S*cli\.lpu:9:\d+: error: ", r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    assert not src.with_suffix(".lpx").exists()


def test_asm_missing_input_is_a_usage_error(lpu, src: Path) -> None:
    r = lpu("asm", "absent.lpu")
    assert r.exit_code == 2
    assert "absent.lpu" in r.stderr and "does not exist" in r.stderr


def test_asm_refuses_to_overwrite_its_input(lpu, src: Path) -> None:
    r = lpu("asm", "cli.lpu", "-o", "cli.lpu")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: cli.lpu: the output would overwrite the source")
    assert src.read_text(encoding="utf-8") == SOURCE


def test_disasm_round_trip(lpu, src: Path) -> None:
    assert lpu("asm", "cli.lpu").exit_code == 0
    r = lpu("disasm", "cli.lpx")
    assert r.exit_code == 0, r.stderr
    assert "Add.int8" in r.stdout and "@3" in r.stdout
    Path("again.lpu").write_text(r.stdout, encoding="utf-8")
    assert lpu("asm", "again.lpu").exit_code == 0
    assert Path("again.lpx").read_bytes() == Path("cli.lpx").read_bytes()


def test_disasm_output_option(lpu, src: Path) -> None:
    assert lpu("asm", "cli.lpu").exit_code == 0
    text = lpu("disasm", "cli.lpx").stdout
    r = lpu("disasm", "cli.lpx", "-o", "back.lpu")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "cli.lpx -> back.lpu: 4 instructions, 3 tensors, cycles 0..6 on lp30\n"
    assert Path("back.lpu").read_text(encoding="utf-8") == text


def test_disasm_corrupted_object(lpu, src: Path) -> None:
    assert lpu("asm", "cli.lpu").exit_code == 0
    data = bytearray(Path("cli.lpx").read_bytes())
    data[-1] ^= 0xFF
    Path("bad.lpx").write_bytes(bytes(data))
    r = lpu("disasm", "bad.lpx")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("error: bad.lpx: corrupted .lpx: checksum mismatch")


def test_disasm_foreign_file(lpu, src: Path) -> None:
    r = lpu("disasm", "cli.lpu")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: cli.lpu: not an lpu-emu object file")
