"""The interactive UI, driven by textual's test harness (App.run_test and its Pilot)."""

from __future__ import annotations

import asyncio

from textual.widgets import Static
from trace_helpers import traced

from lpu_emu.trace.app import TraceApp
from lpu_emu.trace.session import Session


def typed(line: str) -> list[str]:
    """The keys that type `line` into the command input and press Enter."""
    return ["space" if ch == " " else ch for ch in line] + ["enter"]


def drive(keys: list[str], size=(100, 50)):
    async def go():
        app = TraceApp(Session(traced("vecadd")))
        async with app.run_test(size=size) as pilot:
            await pilot.press(*keys)
            await pilot.pause()
            return app, str(app.query_one("#cycle", Static).content)
    return asyncio.run(go())


def test_page_down_and_up_step_forward_and_back() -> None:
    app, head = drive(["pagedown", "pagedown", "pagedown", "pageup"])
    assert app.session.cycle == 2
    assert head.startswith("cycle 2 ")


def test_typed_commands_run_and_enter_repeats_the_last() -> None:
    keys = typed("break op Write") + typed("goto 1") + ["f5"]
    app, head = drive(keys)
    assert app.session.cycle == 6 and head.startswith("cycle 6 ")
    app, _ = drive(typed("step 2") + ["enter"])
    assert app.session.cycle == 4


def test_quit_ends_the_app() -> None:
    app, _ = drive(typed("quit"))
    assert app.session.done
