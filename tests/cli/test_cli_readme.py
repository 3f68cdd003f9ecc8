"""README.md states the two commands exactly, CI runs the same ones, and the headline numbers of
the presets are the ones lpu_emu.spec.chip derives."""

from __future__ import annotations

from pathlib import Path

import pytest

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
