"""The CLI's hardening (issue 11): outputs checked before the run and written all or none, no
overwriting the program, bounded .npy inputs, the sandbox, --max-issues, and the rough edges a
first-time user meets (demo on another chip, "1 cycle", no tensor values from a stopped run)."""

from __future__ import annotations

import os
import struct

import pytest
from cli_helpers import SOURCE


@pytest.fixture
def prog(tmp_path, monkeypatch):
    import contextlib
    import io

    from lpu_emu.core.fast import warm_up

    with contextlib.redirect_stderr(io.StringIO()):
        warm_up()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cli.lpu").write_text(SOURCE)
    (tmp_path / "late.lpu").write_text(SOURCE.replace("VXM0    @3", "VXM0    @4"))
    return tmp_path


def files(path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (["--output", "z=cli.lpu"],
     "error: --output z=cli.lpu: the output would overwrite the input program\n"
     "hint: name another file\n"),
    (["--output", "z=a.npy", "--save-outputs", "a.npy"],
     "error: --save-outputs a.npy: --output z=a.npy writes the same file\n"),
    (["--output", "z=z.npy", "--trace-out", "nodir/e.npz"],
     "error: --trace-out nodir/e.npz: the directory nodir does not exist\n"),
    (["--output", "z=sub"], "error: --output z=sub: is a directory\n"),
    (["--output", "z=" + "n" * 300 + ".npy"],
     f"error: --output z={'n' * 300}.npy: the file name is longer than 255 bytes\n"),
    (["--max-issues", "3"],
     "error: the program expands to 4 issues (Repeats included, 0.0 GiB of Plan), more than "
     "max_issues 3\nhint: raise --max-issues (library: max_issues=) if that is intended\n"),
])
def test_outputs_and_limits_are_checked_before_the_run(lpu, prog, args, message):
    (prog / "sub").mkdir()
    before = files(prog)
    r = lpu("run", "cli.lpu", *args)
    assert (r.exit_code, r.stderr, r.stdout) == (2, message, "")
    assert files(prog) == before  # nothing written, nothing left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_directory_is_refused_before_the_run(lpu, prog):
    (prog / "ro").mkdir(mode=0o500)
    r = lpu("run", "cli.lpu", "--output", "z=ro/z.npy")
    assert r.stderr == "error: --output z=ro/z.npy: the directory ro is not writable\n"


def test_outputs_and_trace_are_written_together(lpu, prog):
    name = "s" * 240 + ".npz"  # near the name limit: temporary names must not be longer
    r = lpu("run", "cli.lpu", "--output", "z=z.npy", "--save-outputs", name,
            "--trace-out", "e.npz")
    assert r.exit_code == 0
    assert files(prog) == sorted(["cli.lpu", "late.lpu", "z.npy", name, "e.npz"])


def test_a_stopped_run_prints_and_writes_no_tensor(lpu, prog):
    r = lpu("run", "late.lpu", "--output", "z", "--output", "x=x.npy")
    assert r.exit_code == 1
    assert "z (int8" not in r.stdout
    assert r.stderr.splitlines()[-1] == ("note: no tensor printed and no file written: the run "
                                         "stopped at its first violation (--lenient runs to the "
                                         "end)")
    assert not (prog / "x.npy").exists()


def test_an_input_npy_claiming_too_much_is_refused_before_reading(lpu, prog):
    head = b"{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000000,), }"
    head += b" " * (64 - (10 + len(head) + 1) % 64) + b"\n"
    (prog / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head)
    r = lpu("run", "cli.lpu", "--input", "x=huge.npy")
    assert r.exit_code == 2
    assert r.stderr == ("error: --input x=huge.npy: its header claims 10,000,000,000,000 "
                        "elements (80,000,000,000,000 bytes), more than the 1,073,741,824 bytes "
                        "allowed\n")


def test_disasm_refuses_to_overwrite_its_input(lpu, prog):
    assert lpu("asm", "cli.lpu").exit_code == 0
    data = (prog / "cli.lpx").read_bytes()
    r = lpu("disasm", "cli.lpx", "-o", "cli.lpx")
    assert r.exit_code == 2
    assert r.stderr == ("error: -o cli.lpx: the output would overwrite the input program\n"
                        "hint: name another file\n")
    assert (prog / "cli.lpx").read_bytes() == data


def test_asm_and_run_sandbox(lpu, prog):
    (prog / "outside.inc").write_text(".equ T, 1\n")
    (prog / "in").mkdir()
    (prog / "in" / "m.lpu").write_text('.include "../outside.inc"\n' + SOURCE)
    for command in ("asm", "run"):
        r = lpu(command, "in/m.lpu", "--sandbox")
        assert r.exit_code == 2
        assert r.stderr.splitlines()[0] == (
            "in/m.lpu:1:10: error: cannot include '../outside.inc': it is outside the sandbox "
            f"{(prog / 'in').resolve()}")
    assert lpu("asm", "in/m.lpu").exit_code == 0


def test_demo_on_another_chip_lists_what_runs_where(lpu, prog):
    r = lpu("demo", "--chip", "tsp-v1")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "lpu demo: 0 of 7 example programs from programs/ run on tsp-v1",
        "written for lp30 (`lpu demo --chip lp30`): vecadd, matvec, gelu, transpose, repeat, "
        "sync, mxm4"]


def test_one_cycle_is_singular(lpu, prog):
    (prog / "one.lpu").write_text("VXM0 @0 NOP 1\n")
    assert lpu("run", "one.lpu").stdout.splitlines()[0] == (
        "one.lpu on lp30: 1 cycle, 0.6667 ns at 1.5 GHz")
