"""Diagnostics shared by every assembler pass: where a token came from, and did-you-mean hints.

A `Where` wraps the `lpu_emu.errors.Span` the user sees plus a note for lines that come out of a
macro expansion ("in macro 'm' expanded at f.lpu:12"), so that an error raised long after parsing
(e.g. a range check in the second pass) still says how the line was reached.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from lpu_emu.errors import AsmError, Span


@dataclass(frozen=True)
class Where:
    """A located piece of source: the span shown with a caret, and the macro expansion note."""

    span: Span
    note: str = ""

    def __str__(self) -> str:
        return f"{self.span.file}:{self.span.line}"


def error(where: Where | None, message: str, hint: str | None = None) -> AsmError:
    """An AsmError at `where`; the macro expansion note (if any) joins the hint."""
    if where is not None and where.note:
        hint = f"{hint} ({where.note})" if hint else where.note
    return AsmError(message, where.span if where is not None else None, hint)


def did_you_mean(word: str, candidates: Iterable[str], fold_case: bool = False) -> str | None:
    """'did you mean X?' over the closest candidates (difflib), or None when nothing is close.

    fold_case: compare case-insensitively (mnemonics, queues, dtypes, directives) but suggest
    the canonical spelling.
    """
    canon: dict[str, str] = {}
    for c in candidates:
        canon.setdefault(c.lower() if fold_case else c, c)
    key = word.lower() if fold_case else word
    close = difflib.get_close_matches(key, list(canon), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{canon[c]}'" for c in close) + "?"
