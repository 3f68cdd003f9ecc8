"""Scripted sessions: every command, with the cycles it lands on and the lines it prints."""

from __future__ import annotations

from trace_helpers import render, run_script, traced

from lpu_emu.trace.session import Session


def block(session: Session, line: str) -> list[str]:
    return render(*session.run(line)).splitlines()


def test_every_block_starts_with_the_cycle_and_the_command() -> None:
    text, _ = run_script(traced("vecadd"), ["step 3", "# a comment", "", "back", "goto 6"])
    blocks = text.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [
        "cycle 3  (step 3)", "cycle 2  (back)", "cycle 6  (goto 6)"]


def test_step_lists_what_happens_at_the_cycle() -> None:
    s = Session(traced("vecadd"))
    assert block(s, "step 3") == [
        "cycle 3  (step 3)",
        "1 issue, 3 events (of cycles 0..7)",
        "  issue VXM0 Add.int8 S0E, S1E, S2E (programs/vecadd.lpu:22)",
        "  take S0E at 81 from 79 int8 (VXM0 Add.int8)",
        "  take S1E at 81 from 80 int8 (VXM0 Add.int8)",
    ]


def test_step_and_back_stop_at_the_ends_of_the_run() -> None:
    s = Session(traced("vecadd"))
    assert block(s, "step 100")[:2] == ["cycle 7  (step 100)", "the run ends at cycle 7"]
    assert block(s, "back 100")[:2] == ["cycle 0  (back 100)", "the run starts at cycle 0"]
    assert block(s, "goto 8") == [
        "cycle 0  (goto 8)", "error: goto: cycle 8 is past the end of the run (cycles 0..7)"]
    assert s.cycle == 0 and s.errors == 1


def test_continue_and_reverse_continue_visit_the_breakpoints_in_order() -> None:
    s = Session(traced("repeat"))
    assert block(s, "break queue VXM1") == ["cycle 0  (break queue VXM1)",
                                            "breakpoint 1: queue VXM1 (8 hits, first at cycle 3)"]
    assert block(s, "break cycle 5")[1] == "breakpoint 2: cycle 5 (1 hit, first at cycle 5)"
    cycles = []
    for _ in range(10):
        s.run("continue")
        cycles.append(s.cycle)
    assert cycles == [3, 4, 5, 6, 7, 8, 9, 10, 14, 14]  # then the last cycle, and stays
    assert block(s, "continue")[1] == "no breakpoint ahead: at the last cycle"
    back = []
    for _ in range(3):
        s.run("reverse-continue")
        back.append(s.cycle)
    assert back == [10, 9, 8]
    assert block(s, "reverse-continue")[:2] == ["cycle 7  (reverse-continue)",
                                                "breakpoint 1: queue VXM1"]


def test_both_breakpoints_at_one_cycle_are_named() -> None:
    s = Session(traced("repeat"))
    s.run("break queue VXM1")
    s.run("break cycle 3")
    assert block(s, "continue")[1:3] == ["breakpoint 1: queue VXM1", "breakpoint 2: cycle 3"]


def test_break_line_op_stream_and_watch_hit_the_cycles_of_the_schedule() -> None:
    s = Session(traced("vecadd"))
    assert block(s, "break line 22")[1] == "breakpoint 1: line 22 (1 hit, first at cycle 3)"
    assert block(s, "break line vecadd.lpu:20")[1] == \
        "breakpoint 2: line vecadd.lpu:20 (1 hit, first at cycle 1)"
    assert block(s, "break op Write")[1] == "breakpoint 3: op Write (1 hit, first at cycle 6)"
    # S2E placed at 81 at cycle 5 passes MEM_E0 (82) at 6
    assert block(s, "break stream S2E at MEM_E0")[1] == \
        "breakpoint 4: stream S2E at MEM_E0 (1 hit, first at cycle 6)"
    # the Write issued at 6 commits at 7
    assert block(s, "watch z")[1] == "breakpoint 5: watch z (1 hit, first at cycle 7)"
    assert block(s, "watch MEM_E0 0:0")[1] == \
        "breakpoint 6: watch MEM_E0 0:0 (1 hit, first at cycle 7)"
    assert block(s, "watch 0:1")[1] == "breakpoint 7: watch 0:1 (0 hits)"
    assert block(s, "info breakpoints")[1:] == [
        "num  what                          hits  next",
        "1    line 22                       1     3",
        "2    line vecadd.lpu:20            1     1",
        "3    op Write                      1     6",
        "4    stream S2E at MEM_E0          1     6",
        "5    watch z                       1     7",
        "6    watch MEM_E0 0:0              1     7",
        "7    watch 0:1                     0     -",
    ]
    assert block(s, "delete 3") == ["cycle 0  (delete 3)", "deleted breakpoint 3"]
    assert block(s, "delete 3")[1] == \
        "error: delete: no breakpoint 3 (breakpoints: 1, 2, 4, 5, 6, 7)"
    assert block(s, "delete")[1] == "deleted 6 breakpoints"
    assert block(s, "info breakpoints")[1] == "no breakpoints"


def test_break_violation_stops_at_the_schedule_bug() -> None:
    s = Session(traced("late"))
    s.run("break violation")
    lines = block(s, "continue")
    assert lines[:3] == ["cycle 2  (continue)", "breakpoint 1: violation",
                         "1 issue, 4 events, 1 violation (of cycles 0..6)"]
    assert "! violation cycle 2: VXM0: no-value: nothing passes on stream S0E at position 81" \
        in " ".join(lines)


def test_the_fixed_program_has_no_violation_to_stop_at() -> None:
    s = Session(traced("vecadd"))
    assert block(s, "break violation")[1] == "breakpoint 1: violation (0 hits)"
    assert block(s, "continue")[:2] == ["cycle 7  (continue)",
                                        "no breakpoint ahead: at the last cycle"]


def test_unknown_names_get_the_nearest_valid_one_and_the_session_goes_on() -> None:
    s = Session(traced("vecadd"))
    assert block(s, "break queue VXM00")[1] == \
        "error: no queue named 'VXM00' on lp30; did you mean 'VXM0'?"
    assert block(s, "break op Ad")[1] == "error: no instruction 'Ad'; did you mean 'Add'?"
    assert block(s, "watch zz")[1] == "error: no tensor named 'zz'; did you mean 'z'?"
    assert block(s, "show sram VXM0 0:0")[1] == "error: no MEM slice named 'VXM0' on lp30"
    assert block(s, "show sram MEM_E00 0:0")[1] == \
        "error: no MEM slice named 'MEM_E00' on lp30; did you mean 'MEM_E0'?"
    assert block(s, "break line nope.lpu:3")[1] == \
        "error: no source file 'nope.lpu' in the program; files: programs/vecadd.lpu"
    assert block(s, "show stream S0E at 999")[1] == \
        "error: position 999 is off the chip (positions 0..162)"
    assert block(s, "step")[0] == "cycle 1  (step)"
    assert s.errors == 7


def test_help_lists_every_command_and_explains_one() -> None:
    s = Session(traced("vecadd"))
    words = [line.split()[0] for line in block(s, "help")[1:-1]]
    assert words == ["step", "back", "goto", "continue", "reverse-continue", "break", "watch",
                     "show", "info", "delete", "help", "quit"]
    assert block(s, "help watch") == ["cycle 0  (help watch)", "watch TENSOR | [SLICE] BANK:ADDR",
                                      "  stop where an SRAM write lands in a tensor or a row"]


def test_quit_ends_a_script() -> None:
    text, s = run_script(traced("vecadd"), ["step", "quit", "step"])
    assert s.done and s.cycle == 1
    assert text.splitlines()[-2:] == ["cycle 1  (quit)", "bye"]
