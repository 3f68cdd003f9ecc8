"""Every screen of docs/tracer.md and the README's `lpu trace` sample is what the command prints.

A fenced block whose first line is `$ lpu trace ARGS` must hold exactly that command's output (at
100 columns, colour off, run from the repository root); `$ cat FILE` must hold the file, so the
scripts the tutorial shows are the ones shipped in docs/tracer/.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from lpu_emu.cli import main

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```(?:text)?\n\$ ((?:lpu trace|cat) [^\n]*)\n(.*?)```", re.S)


def samples(doc: str) -> list[tuple[str, str]]:
    text = (ROOT / doc).read_text(encoding="utf-8")
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def output(command: str) -> str:
    words = shlex.split(command)
    if words[0] == "cat":
        return (ROOT / words[1]).read_text(encoding="utf-8")
    runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "100", "FORCE_COLOR": None})
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        r = runner.invoke(main, words[1:], catch_exceptions=False)
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, r.output
    return r.stdout


def plain(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


CASES = [(doc, cmd, body) for doc in ("docs/tracer.md", "README.md")
         for cmd, body in samples(doc)]


def test_the_tutorial_has_a_screen_per_idea() -> None:
    commands = [cmd for doc, cmd, _ in CASES if doc == "docs/tracer.md"]
    for script in ("streams", "matvec", "late", "fixed", "pipeline"):
        assert any(f"docs/tracer/{script}.cmds" in c and c.startswith("lpu") for c in commands)
        assert f"cat docs/tracer/{script}.cmds" in commands or script in ("fixed", "pipeline")
    assert any(doc == "README.md" and cmd.startswith("lpu trace") for doc, cmd, _ in CASES)


@pytest.mark.parametrize("doc, command, body", CASES, ids=[f"{d}:{c}" for d, c, _ in CASES])
def test_sample_is_what_the_command_prints(doc: str, command: str, body: str) -> None:
    assert plain(body) == plain(output(command))
