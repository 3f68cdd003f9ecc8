"""What every `lpu` command shares: the console, the error boundary, atomic output.

The error boundary (`reporting_errors`) is applied once, by the group in lpu_emu/cli/__init__.py,
around whichever command runs: commands just raise lpu_emu.errors.LpuError and never print
tracebacks or call sys.exit themselves.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import tempfile
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
from rich.console import Console

from lpu_emu.errors import LpuError, UsageError


def colour_wanted(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("NO_COLOR", "") == ""


def make_console(stderr: bool = False) -> Console:
    """A rich Console on stdout (or stderr): plain text when piped or under NO_COLOR; the width
    is the terminal's, or COLUMNS, or 80 when not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    colour = colour_wanted(stream)
    return Console(
        file=stream, color_system="auto" if colour else None, no_color=not colour,
        markup=False, highlight=False, emoji=False,
    )


INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: a bug in lpu-emu, not in the user's input


@contextlib.contextmanager
def reporting_errors(debug: bool = False) -> Iterator[None]:
    """The CLI boundary: an LpuError becomes its rendered diagnostic on stderr and its exit code
    (2 for usage and input errors); an OSError about a file the user named is reported, not
    traced back; a closed pipe (`lpu isa | head`) ends the command quietly; running out of
    memory is one line. Anything else is a bug: one line asking for a report (exit 70), and the
    traceback only with `lpu --debug` (or LPU_DEBUG=1)."""
    try:
        yield
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except LpuError as err:
        click.echo(err.render(), err=True)
        raise click.exceptions.Exit(err.exit_code) from None
    except MemoryError:
        click.echo("error: out of memory", err=True)
        raise click.exceptions.Exit(2) from None
    except BrokenPipeError:
        _silence_stdout()
        raise click.exceptions.Exit(1) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        raise click.exceptions.Exit(2) from None
    except Exception as exc:
        if debug or os.environ.get("LPU_DEBUG", "") not in ("", "0"):
            traceback.print_exc(file=sys.stderr)
        click.echo(f"internal error: {type(exc).__name__}: {exc} -- this is a bug in lpu-emu; "
                   "please report it with the command that caused it (`lpu --debug ...` prints "
                   "the traceback)", err=True)
        raise click.exceptions.Exit(INTERNAL_ERROR_EXIT) from None


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush does not fail."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid names to `word` (case-insensitive), as a hint, or None."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return None
    names = [repr(by_lower[c]) for c in close]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"did you mean {listed}?"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half of one:
    a temporary file beside it, then a rename. UsageError if it cannot be written."""
    write_all_atomically({Path(path): data})


def check_outputs(outputs: Iterable[tuple[Path, str]], inputs: Iterable[Path] = ()) -> None:
    """Before any work: every output file (path, and the option naming it as the user wrote it,
    e.g. `--output z=z.npy`) can be written: its name fits, its directory exists and is
    writable, it is not a directory, no two options name the same file, and none is one of
    `inputs` (the program being run or disassembled)."""
    seen: dict[Path, str] = {}
    protected = {Path(p).resolve() for p in inputs}
    for path, where in outputs:
        parent = path.parent if str(path.parent) else Path(".")
        try:
            limit = os.pathconf(parent if parent.is_dir() else ".", "PC_NAME_MAX")
        except (OSError, ValueError):
            limit = 255
        if len(os.fsencode(path.name)) > limit:
            raise UsageError(f"{where}: the file name is longer than {limit} bytes")
        target = path.resolve()
        if target in protected:
            raise UsageError(f"{where}: the output would overwrite the input program",
                             hint="name another file")
        if target in seen:
            raise UsageError(f"{where}: {seen[target]} writes the same file")
        seen[target] = where
        if not parent.is_dir():
            raise UsageError(f"{where}: the directory {parent} does not exist")
        if path.is_dir():
            raise UsageError(f"{where}: is a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{where}: the directory {parent} is not writable")
        if path.exists() and not os.access(path, os.W_OK):
            raise UsageError(f"{where}: the file is not writable")


def write_all_atomically(files: dict[Path, bytes]) -> None:
    """Write several files, all or none: every one goes to a temporary file beside its target
    first, and only when all are written are they renamed into place."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            try:
                # a short temporary name: the target's own name may be near the length limit
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lpu-", suffix=".tmp")
                staged.append((tmp, path))
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(tmp, 0o666 & ~_umask())
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
