"""The command parser: every command's forms, and one-line errors naming the nearest command."""

from __future__ import annotations

import pytest

from lpu_emu.trace.commands import Command, CommandError, parse


@pytest.mark.parametrize("line, name, args", [
    ("step", "step", (1,)),
    ("step 5", "step", (5,)),
    ("s 2", "step", (2,)),
    ("back", "back", (1,)),
    ("back 0x10", "back", (16,)),
    ("goto 40", "goto", (40,)),
    ("continue", "continue", ()),
    ("c", "continue", ()),
    ("reverse-continue", "reverse-continue", ()),
    ("rc", "reverse-continue", ()),
    ("break cycle 7", "break", ("cycle", 7)),
    ("break line 22", "break", ("line", None, 22)),
    ("break line vecadd.lpu:22", "break", ("line", "vecadd.lpu", 22)),
    ("break queue VXM0", "break", ("queue", "VXM0")),
    ("break op Add", "break", ("op", "Add")),
    ("break stream S4E at MEM_W3", "break", ("stream", 4, "MEM_W3")),
    ("break stream s1w at VXM0", "break", ("stream", 65, "VXM0")),
    ("break violation", "break", ("violation",)),
    ("watch z", "watch", ("tensor", "z")),
    ("watch 0:5", "watch", ("row", None, 0, 5)),
    ("watch MEM_E0 1:16", "watch", ("row", "MEM_E0", 1, 16)),
    ("show chip", "show", ("chip", {})),
    ("show chip at 81 zoom 2", "show", ("chip", {"at": 81, "zoom": 2})),
    ("show source", "show", ("source", {})),
    ("show stream S0E at VXM0 as hex lanes 0..7", "show",
     ("stream", 0, "VXM0", {"as": "hex", "lanes": (0, 7)})),
    ("show sram MEM_E0 0:0..3", "show", ("sram", "MEM_E0", 0, 0, 3, {})),
    ("show tensor y 2..3 as int8", "show", ("tensor", "y", (2, 3), {"as": "int8"})),
    ("show queue VXM1", "show", ("queue", "VXM1", {})),
    ("show mxm", "show", ("mxm", None, {})),
    ("show mxm MXM_W0", "show", ("mxm", "MXM_W0", {})),
    ("info breakpoints", "info", ("breakpoints",)),
    ("delete", "delete", (None,)),
    ("delete 2", "delete", (2,)),
    ("help", "help", (None,)),
    ("help rc", "help", ("reverse-continue",)),
    ("quit", "quit", ()),
    ("  STEP 2   # a comment", "step", (2,)),
])
def test_parse_gives_the_command_and_its_arguments(line: str, name: str, args: tuple) -> None:
    cmd = parse(line)
    assert isinstance(cmd, Command)
    assert (cmd.name, cmd.args) == (name, args)


@pytest.mark.parametrize("line", ["", "   ", "# only a comment"])
def test_parse_of_blank_lines_is_none(line: str) -> None:
    assert parse(line) is None


@pytest.mark.parametrize("line, message", [
    ("stpe", "unknown command 'stpe'; did you mean 'step'?"),
    ("contnue", "unknown command 'contnue'; did you mean 'continue'?"),
    ("frobnicate", "unknown command 'frobnicate'; type 'help' for the commands"),
    ("step x", "step: expected a number of cycles, got 'x' (usage: step [N])"),
    ("step 0", "step: a number of cycles must be at least 1, got 0 (usage: step [N])"),
    ("back 1 2", "back: one number at most (usage: back [N])"),
    ("goto", "goto: expected one cycle (usage: goto CYCLE)"),
    ("break", "break: what to break on? (usage: break cycle N | line [FILE:]N | queue NAME | op"
              " MNEMONIC | stream S4E at QUEUE | violation)"),
    ("break opp Add", "break: unknown kind 'opp'; did you mean 'op'?"),
    ("break stream S4E MEM_W3", "break: expected 'break stream S4E at QUEUE', got 'break stream"
                                " S4E MEM_W3' (usage: break cycle N | line [FILE:]N | queue NAME"
                                " | op MNEMONIC | stream S4E at QUEUE | violation)"),
    ("show strem S0E at 3", "show: unknown view 'strem'; did you mean 'stream'?"),
    ("show tensor z as fp64", "show: unknown format 'fp64'; did you mean 'fp16'?"),
    ("info", "info: unknown subject '' (usage: info breakpoints)"),
    ("help stpe", "help: unknown command 'stpe'; did you mean 'step'?"),
    ("help xyzzy", "help: unknown command 'xyzzy'; type 'help' for the commands"),
    ("quit now", "quit: takes no arguments, got 'now' (usage: quit)"),
])
def test_parse_errors_are_one_line_with_the_nearest_command(line: str, message: str) -> None:
    with pytest.raises(CommandError) as err:
        parse(line)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
