"""The lexer: one source line to tokens.

Token rules (design.md section 9 fixes the vocabulary; these are the details it leaves open):
- `;` starts a comment to the end of the line. Whitespace is space, tab, CR, FF, VT.
- Identifiers: a letter, `_` or `.` then letters, digits, `_`; a `.` inside a name must be followed
  by a letter, digit or `_` (so `Read.int8` and `.tensor` are one token each, and
  `MEM_W0..MEM_W3` is three: `MEM_W0`, `..`, `MEM_W3`).
- Integers: decimal (`0` or no leading zero: `010` is rejected rather than read as octal or
  decimal, since GNU as and C would disagree with a reader), `0x` hex, `0b` binary; at most
  64 bits of magnitude (larger literals are an error, never silently wrapped).
- Floats: `1.5`, `.5`, `5.`, `2e-3`, `1.5E+7` (decimal only; `inf` and `nan` are identifiers that
  float contexts recognise).
- Strings: double quotes, escapes `\\\\ \\" \\n \\t \\r \\0 \\xHH \\uHHHH`.
- Operators: `<< >> .. + - * / % & | ^ ~ ( ) [ ] , : @ =`.
Anything else (a stray `\\`, `$`, a non-ASCII letter outside strings and comments) is an error at
that character.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lpu_emu.asm.diag import Where, error

WHITESPACE = " \t\r\f\v"
OPERATORS = ("<<", ">>", "..", "+", "-", "*", "/", "%", "&", "|", "^", "~", "(", ")", "[", "]",
             ",", ":", "@", "=")
_IDENT = re.compile(r"[A-Za-z_.][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_OPERATORS_AT: dict[str, tuple[str, ...]] = {  # first character -> operators, longest first
    c: tuple(op for op in OPERATORS if op[0] == c) for c in {op[0] for op in OPERATORS}}
_SPACES = re.compile(f"[{WHITESPACE}]+")
_PLAIN = re.compile(r'[^"\\]+')  # string characters that stand for themselves
NAME_RULE = ("a name is ASCII: a letter, '_' or '.' first, then letters, digits and '_', with "
             "single dots between parts (x, _t0, .L1, a.b)")
_HEX = re.compile(r"0[xX]([0-9A-Fa-f]+)")
_BIN = re.compile(r"0[bB]([01]+)")
_DEC = re.compile(r"0|[1-9][0-9]*")
_FLOAT = re.compile(r"(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+")
_HEXDIGITS = "0123456789abcdefABCDEF"
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
MAX_LITERAL_CHARS = 1000  # longer numbers are rejected before Python converts them
INT_LIMIT = 1 << 64


@dataclass(frozen=True)
class Token:
    """kind: ident | int | float | str | op | eol; col is 0-based in the (expanded) line."""

    kind: str
    text: str
    col: int
    value: object = None  # int for int, str for str (decoded), the literal text for float

    @property
    def end(self) -> int:
        return self.col + len(self.text)

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.text in ops


WhereFn = Callable[[int, int], Where]


def string_end(text: str, i: int, stop: int | None = None) -> int:
    """Index of the quote closing the string that opens at text[i] (a backslash escapes the next
    character), or `stop` (default len(text)) when it is not closed before."""
    stop = len(text) if stop is None else stop
    i += 1
    while i < stop:
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return stop


def comment_start(text: str) -> int:
    """Index of the `;` that starts the comment (outside strings), or len(text)."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = string_end(text, i)
        elif c == ";":
            return i
        i += 1
    return len(text)


def tokenize(text: str, where: WhereFn) -> list[Token]:
    """Tokens of one line, ending with an `eol` token placed just after the last token."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in WHITESPACE:
            i = _SPACES.match(text, i).end()  # a run at once: listings align their columns
            continue
        if c == ";":
            break
        if c.isascii() and (c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isascii()
                                            and text[i + 1].isdigit())):
            tok = _number(text, i, where)
        elif c == '"':
            tok = _string(text, i, where)
        elif c.isascii() and (c.isalpha() or c in "_."):
            m = _IDENT.match(text, i)
            if m and m.end() > i and not (m.group() == "." or text.startswith("..", i)):
                tok = Token("ident", m.group(), i)
            else:
                tok = _operator(text, i, where)
        else:
            tok = _operator(text, i, where)
        tokens.append(tok)
        i = tok.end
    end = tokens[-1].end if tokens else len(text[:i].rstrip(WHITESPACE))
    tokens.append(Token("eol", "", end))
    return tokens


def _operator(text: str, i: int, where: WhereFn) -> Token:
    for op in _OPERATORS_AT.get(text[i], ()):
        if text.startswith(op, i):
            return Token("op", op, i)
    c = text[i]
    shown = repr(c)[1:-1] if c.isprintable() else f"U+{ord(c):04X}"
    hint = NAME_RULE if c.isalpha() else None
    if c == "\\":
        hint = "macro parameters (\\name) are only substituted inside .macro bodies"
    raise error(where(i, 1), f"unexpected character '{shown}'", hint)


def _number(text: str, i: int, where: WhereFn) -> Token:
    j = i
    n = len(text)
    while j < n and text[j].isascii() and (text[j].isalnum() or text[j] in "_."):
        j += 1
        if (j < n and text[j] in "+-" and text[j - 1] in "eE"
                and not text.startswith(("0x", "0X"), i)):
            j += 1
    raw = text[i:j]
    if raw.endswith("..") or ".." in raw:  # `1..3`: a number followed by the range operator
        raw = raw[: raw.index("..")]
        j = i + len(raw)
    w = where(i, max(1, j - i))
    if len(raw) > MAX_LITERAL_CHARS:
        raise error(w, f"number literal of {len(raw)} characters is too long")
    if _FLOAT.fullmatch(raw):
        return Token("float", raw, i, raw)
    value: int | None = None
    if m := _HEX.fullmatch(raw):
        value = int(m.group(1), 16)
    elif m := _BIN.fullmatch(raw):
        value = int(m.group(1), 2)
    elif _DEC.fullmatch(raw):
        value = int(raw)
    elif re.fullmatch(r"0[0-9]+", raw):
        raise error(w, f"invalid number '{raw}': leading zeros are not allowed",
                    f"octal is not supported; write {int(raw)} or 0x{int(raw):x}")
    if value is None:
        raise error(w, f"invalid number '{raw}'",
                    "numbers are decimal, 0x hex, 0b binary, or decimal floats like 1.5e-3")
    if value >= INT_LIMIT:
        raise error(w, f"number {raw} does not fit in 64 bits")
    return Token("int", raw, i, value)


def _string(text: str, i: int, where: WhereFn) -> Token:
    out: list[str] = []
    j = i + 1
    n = len(text)
    while j < n:
        run = _PLAIN.match(text, j)  # a run of characters that need no escape: one slice
        if run:
            out.append(run.group())
            j = run.end()
            continue
        c = text[j]
        if c == '"':
            return Token("str", text[i : j + 1], i, "".join(out))
        if c == "\\":
            if j + 1 >= n:
                break
            e = text[j + 1]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                j += 2
                continue
            digits = {"x": 2, "u": 4}.get(e)
            hexpart = text[j + 2 : j + 2 + digits] if digits else ""
            if digits and len(hexpart) == digits and all(h in _HEXDIGITS for h in hexpart):
                out.append(chr(int(hexpart, 16)))
                j += 2 + digits
                continue
            raise error(where(j, 2), f"unknown escape '\\{e}' in string",
                        'escapes: \\\\ \\" \\n \\t \\r \\0 \\xHH \\uHHHH')
        out.append(c)
        j += 1
    raise error(where(i, 1), "unterminated string (no closing \")")
