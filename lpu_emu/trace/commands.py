"""The tracer's command language: one parser for the interactive UI, --script files and stdin.

A line is words separated by blanks; `#` starts a comment. `parse` returns a Command (its name
and its arguments, already checked for shape: numbers are ints, `[FILE:]N` is split) or raises
CommandError with one line: what is wrong and the nearest valid command or the usage. Names of
things in the program (queues, tensors, mnemonics) are checked by the Session, which knows them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# command -> (usage, one-line help); the order is the order `help` lists them in
COMMANDS: dict[str, tuple[str, str]] = {
    "step": ("step [N]", "go forward N cycles (default 1)"),
    "back": ("back [N]", "go back N cycles (default 1), from the log: nothing is re-run"),
    "goto": ("goto CYCLE", "go to a cycle"),
    "continue": ("continue", "go forward to the next breakpoint (or the last cycle)"),
    "reverse-continue": ("reverse-continue", "go back to the previous breakpoint (or cycle 0)"),
    "break": ("break cycle N | line [FILE:]N | queue NAME | op MNEMONIC | stream S4E at QUEUE"
              " | violation", "stop at a cycle, a line, queue or op issuing, a value passing, "
              "a violation"),
    "watch": ("watch TENSOR | [SLICE] BANK:ADDR", "stop where an SRAM write lands in a tensor or "
              "a row"),
    "show": ("show chip [at POS] [zoom N] | source | stream S4E at QUEUE|POS | sram SLICE "
             "BANK:ADDR[..ADDR] | tensor NAME [ROW[..ROW]] | queue NAME | mxm [PLANE]"
             "  (stream, sram, tensor: [as DTYPE|hex] [lanes A..B])",
             "one view at this cycle"),
    "info": ("info breakpoints", "list the breakpoints and watchpoints"),
    "delete": ("delete [N]", "delete breakpoint N (default: all)"),
    "help": ("help [COMMAND]", "the commands, or one in full"),
    "quit": ("quit", "end the session"),
}
ALIASES = {"s": "step", "c": "continue", "rc": "reverse-continue", "q": "quit", "exit": "quit"}
BREAK_KINDS = ("cycle", "line", "queue", "op", "stream", "violation")
SHOW_KINDS = ("chip", "source", "stream", "sram", "tensor", "queue", "mxm")
DTYPES = ("int8", "int32", "fp16", "bf16", "fp8e4m3", "fp32", "hex")

_STREAM = re.compile(r"^[sS](\d+)([eEwW])$")
_BANKADDR = re.compile(r"^(\d+):(\d+)(?:\.\.(\d+))?$")
_RANGE = re.compile(r"^(\d+)(?:\.\.(\d+))?$")


class CommandError(ValueError):
    """A bad command line: the message is one line, ready to print after `error: `."""


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple = ()
    text: str = ""


def nearest(word: str, choices) -> str:
    """`; did you mean 'X'?` for the closest choice, or ''."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.5)
    return f"; did you mean '{by_lower[close[0]]}'?" if close else ""


def usage(name: str) -> str:
    return COMMANDS[name][0]


def _bad(name: str, what: str) -> CommandError:
    return CommandError(f"{name}: {what} (usage: {usage(name)})")


def _int(name: str, word: str, what: str, minimum: int = 0) -> int:
    try:
        value = int(word, 0)
    except ValueError:
        raise _bad(name, f"expected {what}, got '{word}'") from None
    if value < minimum:
        raise _bad(name, f"{what} must be at least {minimum}, got {value}")
    return value


def stream_code(word: str) -> int | None:
    """S4E -> 4, S4W -> 64 + 4; None if `word` is not a stream."""
    m = _STREAM.match(word)
    if not m:
        return None
    return int(m.group(1)) + (64 if m.group(2) in "wW" else 0)


def parse(line: str) -> Command | None:
    """One command line; None for a blank line or a comment."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    words = text.split()
    head = words[0].lower()
    name = ALIASES.get(head, head)
    if name not in COMMANDS:
        raise CommandError(f"unknown command '{words[0]}'"
                           + (nearest(head, list(COMMANDS)) or "; type 'help' for the commands"))
    args = _PARSERS[name](name, words[1:])
    return Command(name, args, text)


def _no_args(name: str, rest: list[str]) -> tuple:
    if rest:
        raise _bad(name, f"takes no arguments, got '{' '.join(rest)}'")
    return ()


def _count(name: str, rest: list[str]) -> tuple:
    if len(rest) > 1:
        raise _bad(name, "one number at most")
    return (_int(name, rest[0], "a number of cycles", 1) if rest else 1,)


def _goto(name: str, rest: list[str]) -> tuple:
    if len(rest) != 1:
        raise _bad(name, "expected one cycle")
    return (_int(name, rest[0], "a cycle"),)


def _break(name: str, rest: list[str]) -> tuple:
    if not rest:
        raise _bad(name, "what to break on?")
    kind = rest[0].lower()
    if kind not in BREAK_KINDS:
        raise CommandError(f"break: unknown kind '{rest[0]}'" + (nearest(kind, BREAK_KINDS) or
                           f"; kinds: {', '.join(BREAK_KINDS)}"))
    args = rest[1:]
    if kind == "violation":
        if args:
            raise _bad(name, "'break violation' takes no arguments")
        return (kind,)
    if kind == "stream":
        if len(args) != 3 or args[1].lower() != "at" or stream_code(args[0]) is None:
            raise _bad(name, f"expected 'break stream S4E at QUEUE', got "
                       f"'break {' '.join(rest)}'")
        return (kind, stream_code(args[0]), args[2])
    if len(args) != 1:
        raise _bad(name, f"'break {kind}' takes one argument")
    if kind == "cycle":
        return (kind, _int(name, args[0], "a cycle"))
    if kind == "line":
        file, _, n = args[0].rpartition(":")
        return (kind, file or None, _int(name, n, "a line number", 1))
    return (kind, args[0])


def _watch(name: str, rest: list[str]) -> tuple:
    if len(rest) == 1 and not _BANKADDR.match(rest[0]):
        return ("tensor", rest[0])
    if len(rest) in (1, 2) and (m := _BANKADDR.match(rest[-1])) and not m.group(3):
        return ("row", rest[0] if len(rest) == 2 else None, int(m.group(1)), int(m.group(2)))
    raise _bad(name, f"expected a tensor or [SLICE] BANK:ADDR, got '{' '.join(rest)}'")


def _options(name: str, words: list[str]) -> tuple[list[str], dict]:
    """Split `as DTYPE` and `lanes A..B` off the end of a show command."""
    opts: dict = {}
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i].lower()
        if w in ("as", "lanes", "zoom") and i + 1 < len(words):
            value = words[i + 1]
            if w == "as":
                if value.lower() not in DTYPES:
                    hint = nearest(value, DTYPES) or f"; formats: {', '.join(DTYPES)}"
                    raise CommandError(f"show: unknown format '{value}'{hint}")
                opts["as"] = value.lower()
            elif w == "zoom":
                opts["zoom"] = _int(name, value, "a zoom (positions per column)", 1)
            else:
                m = _RANGE.match(value)
                if not m:
                    raise _bad(name, f"expected lanes A..B, got '{value}'")
                a = int(m.group(1))
                opts["lanes"] = (a, int(m.group(2)) if m.group(2) else a)
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out, opts


def _show(name: str, rest: list[str]) -> tuple:
    if not rest:
        raise _bad(name, "show what?")
    kind = rest[0].lower()
    if kind not in SHOW_KINDS:
        raise CommandError(f"show: unknown view '{rest[0]}'" + (nearest(kind, SHOW_KINDS) or
                           f"; views: {', '.join(SHOW_KINDS)}"))
    args, opts = _options(name, rest[1:])
    if kind == "chip":
        if args and (len(args) != 2 or args[0].lower() != "at"):
            raise _bad(name, f"expected 'show chip [at POS] [zoom N]', got '{' '.join(rest)}'")
        if args:
            opts["at"] = _int(name, args[1], "a position")
        return (kind, opts)
    if kind == "source":
        if args:
            raise _bad(name, "'show source' takes no arguments")
        return (kind, opts)
    if kind == "stream":
        if len(args) != 3 or args[1].lower() != "at" or stream_code(args[0]) is None:
            raise _bad(name, f"expected 'show stream S4E at QUEUE|POS', got '{' '.join(rest)}'")
        return (kind, stream_code(args[0]), args[2], opts)
    if kind == "sram":
        m = _BANKADDR.match(args[1]) if len(args) == 2 else None
        if not m:
            raise _bad(name, f"expected 'show sram SLICE BANK:ADDR[..ADDR]', got "
                       f"'{' '.join(rest)}'")
        first = int(m.group(2))
        last = int(m.group(3)) if m.group(3) else first
        if last < first:
            raise _bad(name, f"address range {first}..{last} is empty")
        return (kind, args[0], int(m.group(1)), first, last, opts)
    if kind == "tensor":
        if len(args) not in (1, 2):
            raise _bad(name, f"expected 'show tensor NAME [ROW[..ROW]]', got '{' '.join(rest)}'")
        rows = None
        if len(args) == 2:
            m = _RANGE.match(args[1])
            if not m:
                raise _bad(name, f"expected rows A..B, got '{args[1]}'")
            rows = (int(m.group(1)), int(m.group(2)) if m.group(2) else int(m.group(1)))
        return (kind, args[0], rows, opts)
    if kind == "queue":
        if len(args) != 1:
            raise _bad(name, "expected 'show queue NAME'")
        return (kind, args[0], opts)
    if len(args) > 1:
        raise _bad(name, "expected 'show mxm [PLANE]'")
    return (kind, args[0] if args else None, opts)


def _info(name: str, rest: list[str]) -> tuple:
    if [w.lower() for w in rest] not in (["breakpoints"], ["break"], ["b"]):
        raise _bad(name, f"unknown subject '{' '.join(rest)}'")
    return ("breakpoints",)


def _delete(name: str, rest: list[str]) -> tuple:
    if len(rest) > 1:
        raise _bad(name, "one breakpoint number at most")
    return (_int(name, rest[0], "a breakpoint number", 1),) if rest else (None,)


def _help(name: str, rest: list[str]) -> tuple:
    if len(rest) > 1:
        raise _bad(name, "one command at most")
    if rest:
        word = ALIASES.get(rest[0].lower(), rest[0].lower())
        if word not in COMMANDS:
            raise CommandError(f"help: unknown command '{rest[0]}'" + (
                nearest(word, COMMANDS) or "; type 'help' for the commands"))
        return (word,)
    return (None,)


_PARSERS = {
    "step": _count, "back": _count, "goto": _goto, "continue": _no_args,
    "reverse-continue": _no_args, "break": _break, "watch": _watch, "show": _show,
    "info": _info, "delete": _delete, "help": _help, "quit": _no_args,
}
