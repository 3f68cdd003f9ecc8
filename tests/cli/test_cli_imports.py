"""`lpu asm`, `disasm`, `isa`, `chips` and `trace --help` never import numba (the core's
cost), directly or not; nor does `lpu demo NAME` of a small example (the reference runs it).

Each check runs in a fresh interpreter, where sys.modules shows everything the commands pulled in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_helpers import SOURCE

SCRIPT = """
import sys
from click.testing import CliRunner
from lpu_emu.cli import main
runner = CliRunner()
for args in {args!r}:
    result = runner.invoke(main, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
{extra}
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "numba")
print("numba modules:", len(loaded))
assert not loaded, loaded[:5]
"""


def run_commands(args: list[list[str]], cwd: Path | None = None, extra: str = ""):
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(args=args, extra=extra)],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


def test_isa_and_chips_do_not_import_numba() -> None:
    args = [["--help"], ["isa"], ["isa", "Add"], ["chips"], ["chips", "lp30"],
            ["asm", "--help"], ["disasm", "--help"], ["trace", "--help"]]
    r = run_commands(args)
    assert r.returncode == 0, r.stderr
    assert "numba modules: 0" in r.stdout


def test_the_check_would_see_numba() -> None:
    r = run_commands([["isa", "NOP"]], extra="import numba")
    assert r.returncode != 0 and "AssertionError" in r.stderr


def test_asm_and_disasm_do_not_import_numba(tmp_path: Path) -> None:
    (tmp_path / "p.lpu").write_text(SOURCE, encoding="utf-8")
    r = run_commands([["asm", "p.lpu"], ["disasm", "p.lpx"], ["disasm", "p.lpx", "-o", "q.lpu"]],
                     cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "q.lpu").is_file()


def test_demo_of_small_examples_does_not_import_numba_or_the_compiler() -> None:
    extra = ('compiler = sorted(m for m in sys.modules if m.startswith("lpu_emu.compiler"))\n'
             'assert not compiler, compiler')
    r = run_commands([["demo", "vecadd"], ["demo", "gelu", "repeat", "--json"]],
                     extra=extra)
    assert r.returncode == 0, r.stderr
    assert "numba modules: 0" in r.stdout
