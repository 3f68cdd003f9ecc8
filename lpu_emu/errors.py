"""The project's own error types: every user mistake becomes one of these, never a traceback.

An error knows where it happened (a `Span` into a source file) so that the CLI can print the
GNU-style `file:line:col: error: message`, the source line and a caret under the span.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A place in a source file: 1-based line and column, a length in characters, the line."""

    file: str
    line: int
    col: int
    length: int = 1
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class LpuError(Exception):
    """Base of every error lpu-emu reports to a user (exit code `exit_code`)."""

    exit_code = 2
    kind = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def render(self) -> str:
        """The full diagnostic: location, message, source line with a caret, hint."""
        where = f"{self.span}: " if self.span else ""
        lines = [f"{where}{self.kind}: {self.message}"]
        if self.span and self.span.text:
            text = _printable(self.span.text.rstrip("\n"))
            lines.append(f"  {text}")
            pad = "".join("\t" if c == "\t" else " " for c in text[: self.span.col - 1])
            lines.append(f"  {pad}{'^' * max(1, self.span.length)}")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _printable(text: str) -> str:
    """A source line safe to print: control characters (a terminal escape, a carriage return)
    become U+FFFD one for one, so the caret below stays aligned."""
    return "".join(c if c == "\t" or (c >= " " and c != "\x7f") else "\ufffd" for c in text)


class SpecError(LpuError):
    """The ISA or a chip preset under isa/ is malformed (names the file and the entry)."""


class AsmError(LpuError):
    """An assembly source cannot be assembled."""


class LoadError(LpuError):
    """A `.lpx` (or `.npy`) file cannot be loaded: truncated, corrupted, foreign, wrong version."""


class UsageError(LpuError):
    """A bad option, name or input file given to the CLI or the library."""
