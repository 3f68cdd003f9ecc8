"""CLI conventions: help with examples, colour only on a terminal without NO_COLOR, the error
boundary (diagnostic on stderr, exit code, no traceback), atomic output."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import click
import pytest
from cli_helpers import lines
from click.testing import CliRunner

from lpu_emu.cli import COMMANDS, available, main
from lpu_emu.cli.common import did_you_mean, make_console, reporting_errors, write_atomically
from lpu_emu.errors import LoadError, SpecError, UsageError


def test_group_help_lists_available_commands_with_examples(lpu) -> None:
    r = lpu("--help")
    assert r.exit_code == 0
    out = lines(r.stdout)
    block = out[out.index("Commands:") + 1 : out.index("  Examples:")]
    listed = [line.split()[0] for line in block if line.strip()]
    assert listed == [n for n in COMMANDS if available(n)]
    assert out[out.index("  Examples:") + 1].startswith("    lpu ")
    assert {"isa", "chips", "asm", "disasm"} <= set(listed)


@pytest.mark.parametrize("name", [n for n in COMMANDS if available(n)])
def test_command_help_shows_an_example(lpu, name: str) -> None:
    r = lpu(name, "--help")
    assert r.exit_code == 0
    out = lines(r.stdout)
    i = out.index("  Examples:")
    assert out[i + 1].startswith(f"    lpu {name}")


@pytest.mark.parametrize("name", [n for n in COMMANDS if available(n)])
def test_registry_help_matches_the_command(name: str) -> None:
    # `lpu --help` lists COMMANDS without importing the modules; it must say what they say
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert command.get_short_help_str(limit=200) == COMMANDS[name]


def test_unknown_command_is_a_usage_error(lpu) -> None:
    r = lpu("frobnicate")
    assert r.exit_code == 2
    assert "No such command 'frobnicate'" in r.stderr


def test_version(lpu) -> None:
    r = lpu("--version")
    assert r.exit_code == 0 and r.stdout == "lpu, version 0.1.0\n"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _styled(monkeypatch, stream, no_color: str | None) -> str:
    monkeypatch.setattr("sys.stdout", stream)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    console = make_console()
    console.print("bold words", style="bold red")
    return stream.getvalue()


def test_console_colours_a_terminal(monkeypatch) -> None:
    assert "\x1b[" in _styled(monkeypatch, FakeTerminal(), None)


def test_console_no_colour_under_no_color(monkeypatch) -> None:
    assert _styled(monkeypatch, FakeTerminal(), "1") == "bold words\n"


def test_console_no_colour_when_piped(monkeypatch) -> None:
    assert _styled(monkeypatch, io.StringIO(), None) == "bold words\n"


def test_console_keeps_brackets_literal(monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    make_console().print("Repeat n, d, [step] [bold]x[/bold]")
    assert stream.getvalue() == "Repeat n, d, [step] [bold]x[/bold]\n"


def _boundary(exc: BaseException, debug: bool = False) -> click.Command:
    @click.command()
    def boom() -> None:
        with reporting_errors(debug):
            raise exc

    return boom


@pytest.mark.parametrize("exc", [
    SpecError("bad.toml: instruction Foo: missing key 'example'"),
    UsageError("unknown chip 'x'", hint="valid chips: lp30, tsp-v1"),
    LoadError("p.lpx: corrupted .lpx: checksum mismatch"),
])
def test_boundary_renders_lpu_errors(exc) -> None:
    r = CliRunner().invoke(_boundary(exc))
    assert r.exit_code == exc.exit_code == 2
    assert r.stderr == exc.render() + "\n"
    assert r.stdout == ""
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_boundary_reports_os_errors_without_traceback() -> None:
    r = CliRunner().invoke(_boundary(FileNotFoundError(2, "No such file or directory", "in.npy")))
    assert r.exit_code == 2
    assert r.stderr == "error: in.npy: No such file or directory\n"


def test_boundary_reports_a_bug_in_one_line(monkeypatch) -> None:
    monkeypatch.delenv("LPU_DEBUG", raising=False)
    r = CliRunner().invoke(_boundary(ZeroDivisionError("bug")))
    assert r.exit_code == 70
    assert r.stderr == ("internal error: ZeroDivisionError: bug -- this is a bug in lpu-emu; "
                        "please report it with the command that caused it (`lpu --debug ...` "
                        "prints the traceback)\n")


@pytest.mark.parametrize("how", ["option", "env"])
def test_boundary_prints_the_traceback_of_a_bug_with_debug(how, monkeypatch) -> None:
    monkeypatch.setenv("LPU_DEBUG", "1" if how == "env" else "0")
    r = CliRunner().invoke(_boundary(ZeroDivisionError("bug"), debug=how == "option"))
    assert r.exit_code == 70
    lines = r.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2] == "ZeroDivisionError: bug"
    assert lines[-1].startswith("internal error: ZeroDivisionError: bug -- ")


def test_lpu_debug_option_reaches_the_boundary(monkeypatch) -> None:
    import lpu_emu.cli.chips
    from lpu_emu.cli import main

    monkeypatch.delenv("LPU_DEBUG", raising=False)
    monkeypatch.setattr(lpu_emu.cli.chips, "chip_names", lambda: 1 / 0)  # a bug in `lpu chips`
    quiet = CliRunner().invoke(main, ["chips"])
    loud = CliRunner().invoke(main, ["--debug", "chips"])
    assert quiet.exit_code == loud.exit_code == 70
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "lpu_emu", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "lpu, version 0.1.0\n"


def test_did_you_mean() -> None:
    assert did_you_mean("ad", ["Add", "Sub"]) == "did you mean 'Add'?"
    assert did_you_mean("ADDI", ["Add", "AddI", "Sub"]) == "did you mean 'AddI' or 'Add'?"
    assert did_you_mean("zzz", ["Add"]) is None


def test_write_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left behind
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_write_atomically_failure_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write .*missing/out.bin"):
        write_atomically(tmp_path / "missing" / "out.bin", b"x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(UsageError, match="cannot write"):
        write_atomically(tmp_path / "dir", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["dir"]
    assert list((tmp_path / "dir").iterdir()) == []
