"""Run `lpu` in-process with click's CliRunner: colour off, 100 columns, stdout and stderr apart."""

from __future__ import annotations

import pytest
from cli_helpers import WIDTH
from click.testing import CliRunner, Result

from lpu_emu.cli import main


@pytest.fixture
def lpu():
    runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": str(WIDTH), "FORCE_COLOR": None})

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke
