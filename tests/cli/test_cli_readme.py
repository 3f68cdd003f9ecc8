"""README.md states the two commands exactly, CI runs the same ones, the headline numbers of
the presets are the ones lpu_emu.spec.chip derives, and every sample of a command's output (a
fenced block opening with `$ lpu ...`) is what the command prints (`...` stands for any lines)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from lpu_emu.cli import main
from lpu_emu.render.fmt import si
from lpu_emu.spec.chip import chip_names, get_chip

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_gives_the_two_commands() -> None:
    assert "pip install . && lpu demo" in README
    assert "pip install '.[test]' && pytest" in README


def test_ci_installs_and_tests_as_the_readme_says() -> None:
    assert "\npip install '.[test]'\n" in CI
    assert "\npytest -q -p no:cacheprovider" in CI
    assert "\nruff check ." in CI
    assert CI.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in CI


@pytest.mark.parametrize("name", chip_names())
def test_readme_headline_numbers_are_the_derived_ones(name: str) -> None:
    chip = get_chip(name)
    row = next(line for line in README.splitlines() if line.startswith(f"| `{name}`"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[2] == si(chip.clock_hz, "Hz")
    assert cells[3].startswith(si(chip.sram_bytes, "B"))
    assert cells[4] == si(chip.sram_bytes_per_s, "B/s")
    assert cells[5] == si(chip.mxm_int8_ops_per_s, "ops/s")


def samples(text: str) -> list[tuple[list[str], list[str]]]:
    """(command arguments, expected output lines) of every fenced `$ lpu ...` block."""
    out = []
    for block in re.findall(r"^```\n(.*?)^```$", text, flags=re.S | re.M):
        lines = block.splitlines()
        if lines and lines[0].startswith("$ lpu "):
            out.append((shlex.split(lines[0][len("$ lpu "):]), lines[1:]))
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line (trailing blanks ignored); a `...` line matches any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and expected[0].rstrip() == actual[0].rstrip() \
        and matches(expected[1:], actual[1:])


def test_matches_ellipsis_rules() -> None:
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "...", "b"], ["a", "b"])
    assert not matches(["a", "...", "d"], ["a", "b", "c"])
    assert not matches(["a", "b"], ["a", "b", "c"])


SAMPLES = samples(README)


def test_the_readme_has_output_samples() -> None:
    assert [args[:2] for args, _ in SAMPLES] == [
        ["run", "programs/vecadd.lpu"], ["run", "programs/broken/late.lpu"],
        ["trace", "programs/vecadd.lpu"]]


@pytest.mark.parametrize(("args", "expected"), SAMPLES, ids=[" ".join(a) for a, _ in SAMPLES])
def test_readme_sample_output_is_what_the_command_prints(args, expected, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    columns = "100" if args[0] == "trace" else "80"  # the tracer's views are laid out for 100
    runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": columns, "FORCE_COLOR": None})
    result = runner.invoke(main, args, catch_exceptions=False)
    actual = result.output.splitlines()
    assert matches(expected, actual), "\n".join(["README:", *expected, "printed:", *actual])
