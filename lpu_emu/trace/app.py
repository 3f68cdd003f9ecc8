"""The interactive tracer: a textual App over the same Session the scripts use.

Panels, top to bottom: the current cycle, the chip strip, the source listing with the lines
issuing now, what happened this cycle, the output of the last command, and the command line.
Every panel is one of the pure views of lpu_emu.trace.views; the App only decides which to show.
Keys: PageDown / PageUp step forward / back, F5 / F6 continue / reverse-continue, Ctrl+Left /
Ctrl+Right scroll the chip strip, Ctrl+Q quits; Enter on an empty line repeats the last command.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Static

from lpu_emu.trace.session import Session
from lpu_emu.trace.views import ChipView, SourceView, StepView

SCROLL = 40  # positions the chip strip moves per Ctrl+Left / Ctrl+Right


class TraceApp(App):
    """`lpu trace PROG` on a terminal."""

    CSS = """
    #cycle { height: 1; background: $boost; text-style: bold; }
    #panels { height: 1fr; }
    #chip, #source, #events, #output { margin: 0 0 1 0; }
    """
    BINDINGS = [
        Binding("pagedown", "command('step')", "step", priority=True),
        Binding("pageup", "command('back')", "back", priority=True),
        Binding("f5", "command('continue')", "continue", priority=True),
        Binding("f6", "command('reverse-continue')", "reverse-continue", priority=True),
        Binding("ctrl+left", "scroll_chip(-1)", "chip west", priority=True),
        Binding("ctrl+right", "scroll_chip(1)", "chip east", priority=True),
        Binding("ctrl+q", "quit", "quit", priority=True),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.last = "step"

    def compose(self) -> ComposeResult:
        yield Static(id="cycle")
        with VerticalScroll(id="panels"):
            yield Static(id="chip")
            yield Static(id="source")
            yield Static(id="events")
            yield Static(id="output")
        yield Input(placeholder="command (help lists them; PageDown steps)", id="command")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_panels()
        self.query_one("#command", Input).focus()

    def refresh_panels(self) -> None:
        s, t = self.session, self.session.t
        self.query_one("#cycle", Static).update(Text(
            f"cycle {s.cycle}   {t.name} on {t.chip.name}, cycles 0..{t.last_cycle}"))
        self.query_one("#chip", Static).update(ChipView(t, s.cycle, s.chip_at, s.chip_zoom))
        self.query_one("#source", Static).update(SourceView(t, s.cycle))
        self.query_one("#events", Static).update(StepView(t, s.cycle))

    def action_command(self, line: str) -> None:
        self.run_line(line)

    def action_scroll_chip(self, direction: int) -> None:
        s = self.session
        centre = s.chip_at if s.chip_at is not None else s.t.index.positions // 2
        s.chip_at = min(max(0, centre + direction * SCROLL), s.t.index.positions - 1)
        s.chip_zoom = 1
        self.refresh_panels()

    def run_line(self, line: str) -> None:
        block = self.session.run(line)
        if block is not None:
            self.query_one("#output", Static).update(Group(*block))
        if self.session.done:
            self.exit()
            return
        self.refresh_panels()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        line = event.value.strip() or self.last
        self.last = line
        event.input.value = ""
        self.run_line(line)
