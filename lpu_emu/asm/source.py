"""Source text to lines: UTF-8 decoding, `.include`, `.macro`/`.endm` expansion, line tracking.

Choices where design.md section 9 is silent (GNU as habits, where they are unambiguous):
- Lines end at `\\n` only (a trailing `\\r` is dropped); a UTF-8 byte-order mark is skipped.
- `.include "f"` resolves f against the directory of the file holding the directive (for text
  given without a file: `base_dir`, else the working directory). Program.files shows it as that
  directory joined with f, the path a user recognises from where they ran the assembler. The same
  file included twice is read twice (there is no include guard); a file including itself,
  directly or through others, is an error listing the chain.
- `.macro NAME [P[=DEFAULT]][, P...]` ... `.endm`: parameters are separated by commas or blanks;
  in the body `\\P` is replaced by the argument text, `\\@` by the number of macro expansions
  before this one, `\\()` by nothing (to join a parameter to following letters). Any other
  backslash is left as it is. Invocation: `NAME a, b` (arguments split at top-level commas; a
  missing argument without default is an error rather than GNU's silent blank). Macro names are
  case-sensitive and may not be directives or queue names; defining a name twice is an error.
  `.macro` inside a macro body defines a macro when the body is expanded. A `.macro` without
  `.endm` before the end of its file (or macro body) is an error.
- A line produced by a macro keeps the location of its line in the macro body (errors and the
  source map point there); the expansion site is carried as a note that errors print in the hint.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from lpu_emu.asm.diag import Where, error
from lpu_emu.asm.lexer import Token, comment_start, string_end, tokenize
from lpu_emu.errors import AsmError, Span
from lpu_emu.files import FileRefused, read_bounded, within

MAX_INCLUDE_DEPTH = 64
MAX_MACRO_DEPTH = 64
MAX_EXPANDED_LINES = 1_000_000
MAX_EXPANDED_BYTES = 64 * 2**20  # text produced by macro expansion, in all
MAX_INCLUDED_BYTES = 256 * 2**20  # text read by .include, in all
MAX_SECONDS = 300  # preprocessing one program (a 10^6-line source takes ~10 s)
SOURCE_SUFFIXES = (".lpu", ".inc")  # what .include reads: never a file that is not source
CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")  # bytes no source holds
_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*"
_HEAD = re.compile(rf"[ \t]*((?:{_NAME}[ \t]*:[ \t]*)*)({_NAME})(?=[ \t;]|$)")
_MACRO_LINE = re.compile(rf"[ \t]*(?:{_NAME}[ \t]*:[ \t]*)*\.(macro|endm)(?![A-Za-z0-9_.])", re.I)
_PARAM_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class SrcLine:
    """One line as the parser sees it, and where to point when it is wrong."""

    text: str  # after macro substitution
    file: str  # display name of the file holding the line (a macro body line: the definition)
    file_id: int
    lineno: int
    origin: str  # the line as written in its file, shown under the error
    directory: Path  # for relative paths in .include / .npy
    colmap: tuple[tuple[int, int], ...] | None = None  # text index -> (start, end) in origin
    note: str = ""
    tokens: list[Token] = field(default_factory=list)

    def where(self, col0: int, length: int = 1) -> Where:
        """A Where for text[col0:col0+length], mapped back into the origin line."""
        if self.colmap is None:
            start, end = col0, col0 + max(1, length)
        elif not self.colmap:
            start = end = 0
        elif col0 >= len(self.colmap):
            start = end = self.colmap[-1][1]
        else:
            parts = self.colmap[col0 : col0 + max(1, length)]
            start, end = min(p[0] for p in parts), max(p[1] for p in parts)
        span = Span(self.file, self.lineno, start + 1, max(1, end - start), self.origin)
        return Where(span, self.note)


@dataclass
class Macro:
    name: str
    params: list[tuple[str, str | None]]
    body: list[SrcLine]
    where: Where


@dataclass
class _Frame:
    lines: list[SrcLine]
    key: object = None  # resolved path of a file frame; None for a macro expansion
    display: str = ""
    pos: int = 0
    collecting: Macro | None = None
    nest: int = 0


def decode_source(data: bytes, display: str, hint: str | None = None,
                  where: Where | None = None) -> str:
    """UTF-8 bytes to text; an invalid byte is an AsmError at its line and column. A binary
    file (a NUL or other control byte in its first 64 KiB) is one short error that quotes none
    of it, at `where` (the .include naming it) if given."""
    control = CONTROL.search(data, 0, 65536)
    if control:
        at = control.start()
        lineno = data.count(b"\n", 0, at) + 1
        message = (f"{display} is a binary file, not assembly source (byte "
                   f"0x{data[at]:02x} at line {lineno})")
        if where is not None:
            raise error(where, message, hint)
        raise AsmError(message, hint=hint)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
        start = data.rfind(b"\n", 0, bad) + 1
        stop = data.find(b"\n", bad)
        line_text = data[start : stop if stop >= 0 else len(data)].decode("utf-8", "replace")
        col = len(data[start:bad].decode("utf-8", "replace")) + 1
        lineno = data.count(b"\n", 0, bad) + 1
        span = Span(display, lineno, col, 1, line_text.rstrip("\r"))
        raise AsmError(f"invalid UTF-8 byte 0x{data[bad]:02x}", span, hint) from None
    return text[1:] if text.startswith("\ufeff") else text


def file_lines(text: str, display: str, file_id: int, directory: Path) -> list[SrcLine]:
    out = []
    for n, raw in enumerate(text.split("\n"), start=1):
        raw = raw[:-1] if raw.endswith("\r") else raw
        out.append(SrcLine(raw, display, file_id, n, raw, directory))
    return out


class Preprocessor:
    """Yields the lines to parse, with includes read and macros expanded (see module doc)."""

    def __init__(self, reserved_names: frozenset[str] = frozenset(),
                 sandbox: Path | None = None):
        self.files: list[str] = []  # display names, in the order first read
        self.sandbox = sandbox  # includes must resolve inside this tree (--sandbox)
        self.included_bytes = 0
        self.expanded_bytes = 0
        self.deadline = time.monotonic() + MAX_SECONDS
        self._file_ids: dict[object, int] = {}
        self._display_dirs: dict[int, str] = {}  # file id -> directory shown for its includes
        self.macros: dict[str, Macro] = {}
        self.reserved = reserved_names  # upper-case names a macro may not take (queues)
        self.expansions = 0
        self.expanded_lines = 0

    def file_id(self, key: object, display: str, display_dir: str) -> int:
        if key not in self._file_ids:
            self._file_ids[key] = len(self.files)
            self._display_dirs[len(self.files)] = display_dir
            self.files.append(display)
        return self._file_ids[key]

    def run(self, text: str, display: str, key: object, directory: Path,
            display_dir: str) -> Iterator[SrcLine]:
        fid = self.file_id(key, display, display_dir)
        stack = [_Frame(file_lines(text, display, fid, directory), key, display)]
        while stack:
            frame = stack[-1]
            if frame.pos >= len(frame.lines):
                if frame.collecting is not None:
                    m = frame.collecting
                    raise error(m.where, f"unterminated .macro '{m.name}': no .endm before the end "
                                f"of {'the macro body' if frame.key is None else frame.display}")
                stack.pop()
                continue
            line = frame.lines[frame.pos]
            frame.pos += 1
            if frame.collecting is not None:
                self._collect(frame, line)
                continue
            head = _HEAD.match(line.text)
            if head and head.group(2) in self.macros:
                if head.group(1).strip():
                    yield self._prefix(line, head.start(2))
                self._expand(stack, line, head)
                continue
            line.tokens = tokenize(line.text, line.where)
            toks = line.tokens
            i = 0
            while toks[i].kind == "ident" and toks[i + 1].is_op(":"):
                i += 2
            word = toks[i].text.lower() if toks[i].kind == "ident" else ""
            if word not in (".include", ".macro", ".endm"):
                yield line
                continue
            if i:
                yield self._prefix(line, toks[i].col)
            if word == ".include":
                self._include(stack, line, toks, i + 1)
            elif word == ".macro":
                frame.collecting = self._macro_header(line, toks, i + 1)
                frame.nest = 0
            else:
                raise error(line.where(toks[i].col, len(toks[i].text)), ".endm without .macro")

    # ---- pieces ----
    def _prefix(self, line: SrcLine, end: int) -> SrcLine:
        """The labels in front of a macro call or .include, as a line of their own."""
        cmap = line.colmap[:end] if line.colmap is not None else None
        short = replace(line, text=line.text[:end], colmap=cmap)
        short.tokens = tokenize(short.text, short.where)
        return short

    def _collect(self, frame: _Frame, line: SrcLine) -> None:
        m = _MACRO_LINE.match(line.text)
        macro = frame.collecting
        assert macro is not None
        if m and m.group(1).lower() == "macro":
            frame.nest += 1
        elif m and m.group(1).lower() == "endm":
            if frame.nest == 0:
                self.macros[macro.name] = macro
                frame.collecting = None
                return
            frame.nest -= 1
        macro.body.append(line)

    def _macro_header(self, line: SrcLine, toks: list[Token], i: int) -> Macro:
        name_tok = toks[i]
        if name_tok.kind != "ident":
            raise error(line.where(name_tok.col, len(name_tok.text) or 1),
                        "expected a macro name after .macro")
        name = name_tok.text
        w = line.where(name_tok.col, len(name))
        if name.startswith("."):
            raise error(w, f"macro name '{name}' cannot start with '.' (that is a directive)")
        if name.upper() in self.reserved:
            raise error(w, f"macro name '{name}' is a queue name")
        if name in self.macros:
            raise error(w, f"macro '{name}' is already defined",
                        f"first defined at {self.macros[name].where}")
        params: list[tuple[str, str | None]] = []
        j = i + 1
        if toks[j].is_op(","):
            j += 1
        while toks[j].kind != "eol":
            p = toks[j]
            if p.kind != "ident" or "." in p.text:
                raise error(line.where(p.col, len(p.text)),
                            f"expected a macro parameter name, got '{p.text}'")
            if any(p.text == q for q, _ in params):
                raise error(line.where(p.col, len(p.text)), f"duplicate macro parameter '{p.text}'")
            j += 1
            default = None
            if toks[j].is_op("="):
                start = toks[j].end
                j += 1
                while toks[j].kind != "eol" and not toks[j].is_op(","):
                    j += 1
                default = line.text[start : toks[j].col].strip()
            params.append((p.text, default))
            if toks[j].is_op(","):
                j += 1
        return Macro(name, params, [], w)

    def _expand(self, stack: list[_Frame], line: SrcLine, head: re.Match) -> None:
        macro = self.macros[head.group(2)]
        name_where = line.where(head.start(2), len(head.group(2)))
        depth = sum(1 for f in stack if f.key is None)
        if depth >= MAX_MACRO_DEPTH:
            raise error(Where(name_where.span, short_note(name_where.note)),
                        f"macro expansion nested more than {MAX_MACRO_DEPTH} deep "
                        f"(does '{macro.name}' expand itself?)")
        self._check_time(name_where)
        args = split_args(line.text, head.end(2), comment_start(line.text))
        if len(args) > len(macro.params):
            extra = args[len(macro.params)]
            raise error(line.where(extra[1], max(1, len(extra[0]))),
                        f"macro '{macro.name}' takes {len(macro.params)} argument(s), "
                        f"got {len(args)}",
                        _usage(macro))
        values: dict[str, str] = {}
        for k, (pname, default) in enumerate(macro.params):
            if k < len(args):
                values[pname] = args[k][0]
            elif default is not None:
                values[pname] = default
            else:
                end = len(line.text[: comment_start(line.text)].rstrip())
                raise error(line.where(end), f"macro '{macro.name}' needs argument '{pname}'",
                            _usage(macro))
        self.expanded_lines += len(macro.body)
        if self.expanded_lines > MAX_EXPANDED_LINES:
            raise error(name_where,
                        f"macro expansion produces more than {MAX_EXPANDED_LINES} lines")
        note = f"in macro '{macro.name}' expanded at {line.file}:{line.lineno}"
        if line.note:
            note += f", {line.note}"
        body = [substitute(b, values, self.expansions, note) for b in macro.body]
        self.expanded_bytes += sum(len(b.text) for b in body)
        if self.expanded_bytes > MAX_EXPANDED_BYTES:
            raise error(name_where, f"macro expansion produces more than {MAX_EXPANDED_BYTES:,} "
                        "bytes of text")
        self.expansions += 1
        stack.append(_Frame(body))

    def _include(self, stack: list[_Frame], line: SrcLine, toks: list[Token], i: int) -> None:
        tok = toks[i]
        if tok.kind != "str":
            raise error(line.where(tok.col, len(tok.text) or 1),
                        "expected a file name in quotes after .include")
        if toks[i + 1].kind != "eol":
            t = toks[i + 1]
            raise error(line.where(t.col, len(t.text)),
                        f"unexpected '{t.text}' after the .include file name")
        w = line.where(tok.col, len(tok.text))
        name = str(tok.value)
        if sum(1 for f in stack if f.key is not None) >= MAX_INCLUDE_DEPTH:
            raise error(w, f"includes nested more than {MAX_INCLUDE_DEPTH} deep")
        try:
            path = Path(name) if os.path.isabs(name) else line.directory / name
            key = path.resolve()
            if os.path.isabs(name):
                display = name
            else:
                display = os.path.normpath(os.path.join(self._display_dirs[line.file_id], name))
        except (OSError, ValueError, RuntimeError) as exc:
            raise error(w, f"cannot open include file '{name}': {exc}") from None
        chain = [f for f in stack if f.key is not None]
        for k, f in enumerate(chain):
            if f.key == key:
                names = [g.display for g in chain[k:]] + [display]
                raise error(w, "include cycle: " + " -> ".join(names))
        self._check_include(w, name, path)
        try:
            data = read_bounded(path)
        except FileRefused as exc:
            raise error(w, f"cannot open include file '{name}': {exc}") from None
        self.included_bytes += len(data)
        if self.included_bytes > MAX_INCLUDED_BYTES:
            raise error(w, f"includes read more than {MAX_INCLUDED_BYTES:,} bytes in all")
        text = decode_source(data, display, f"included at {line.file}:{line.lineno}", w)
        fid = self.file_id(key, display, os.path.dirname(display))
        lines = file_lines(text, self.files[fid], fid, path.parent)
        stack.append(_Frame(lines, key, self.files[fid]))


    def _check_include(self, w: Where, name: str, path: Path) -> None:
        """Only source files, inside the sandbox if there is one; and not forever."""
        self._check_time(w)
        if path.suffix.lower() not in SOURCE_SUFFIXES:
            raise error(w, f"cannot include '{name}': not an assembly source file",
                        "included files end in " + " or ".join(SOURCE_SUFFIXES))
        if self.sandbox is not None and not within(path, self.sandbox):
            raise error(w, f"cannot include '{name}': it is outside the sandbox {self.sandbox}",
                        "--sandbox confines .include and .npy files to the program's directory "
                        "tree")

    def _check_time(self, w: Where) -> None:
        if time.monotonic() > self.deadline:
            raise error(w, f"preprocessing takes more than {MAX_SECONDS} s (includes and macro "
                        "expansions)")


def short_note(note: str) -> str:
    """A macro expansion note of many frames as its first and last ones (runaway recursion
    would otherwise print the same frame 64 times)."""
    frames = note.split(", in macro ")
    if len(frames) <= 3:
        return note
    return (f"{frames[0]}, ... {len(frames) - 2} more expansions ..., in macro {frames[-1]}")


def _usage(macro: Macro) -> str:
    params = ", ".join(p if d is None else f"{p}={d}" for p, d in macro.params)
    return f"usage: {macro.name} {params}".rstrip()


def split_args(text: str, start: int, stop: int) -> list[tuple[str, int]]:
    """Macro call arguments in text[start:stop]: split at top-level commas (not inside quotes,
    parentheses or brackets), stripped; each with its 0-based column. No text: no arguments."""
    if not text[start:stop].strip():
        return []
    args, depth, begin = [], 0, start
    i = start
    while i < stop:
        c = text[i]
        if c == '"':
            i = string_end(text, i, stop)
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            args.append(_arg(text, begin, i))
            begin = i + 1
        i += 1
    args.append(_arg(text, begin, stop))
    return args


def _arg(text: str, begin: int, end: int) -> tuple[str, int]:
    raw = text[begin:end]
    stripped = raw.strip()
    col = begin + (len(raw) - len(raw.lstrip())) if stripped else begin
    return stripped, col


def substitute(body: SrcLine, values: dict[str, str], counter: int, note: str) -> SrcLine:
    """A body line with \\param, \\@ and \\() replaced; the column map follows the origin."""
    text = body.text
    bmap = body.colmap
    out: list[str] = []
    cmap: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        rep = None
        if text[i] == "\\":
            if text.startswith("\\@", i):
                rep, stop = str(counter), i + 2
            elif text.startswith("\\()", i):
                rep, stop = "", i + 3
            else:
                m = _PARAM_REF.match(text, i + 1)
                if m and m.group() in values:
                    rep, stop = values[m.group()], m.end()
        if rep is None:
            out.append(text[i])
            cmap.append(bmap[i] if bmap is not None else (i, i + 1))
            i += 1
            continue
        parts = bmap[i:stop] if bmap is not None else [(i, stop)]
        span = (min(p[0] for p in parts), max(p[1] for p in parts))
        out.append(rep)
        cmap.extend([span] * len(rep))
        i = stop
    return SrcLine("".join(out), body.file, body.file_id, body.lineno, body.origin, body.directory,
                   tuple(cmap), note)
