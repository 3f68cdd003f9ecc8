"""`lpu isa`: the instruction set overview (one table per slice kind) and one instruction in full.

The facts come from lpu_emu.spec.docs, which docs/isa.md is generated from as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from lpu_emu.spec.docs import (
    SLICE_SUMMARY,
    dtypes_text,
    encoding_rows,
    instruction_facts,
    operand_rows,
    slice_groups,
)
from lpu_emu.spec.isa import Instruction, Isa


def table(*headers: str, right: tuple[str, ...] = (), wrap: tuple[str, ...] = ()) -> Table:
    """The house table: a header underlined, no outer frame, columns 3 spaces apart. Only the
    columns named in `wrap` (prose) wrap when the terminal is narrow."""
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for h in headers:
        t.add_column(h, justify="right" if h in right else "left", no_wrap=h not in wrap)
    return t


def row(t: Table, *cells: str) -> None:
    t.add_row(*(Text(c) for c in cells))  # Text: no markup, so "[step]" stays literal


def heading(text: str) -> Text:
    return Text(text, style="bold")


@dataclass(frozen=True)
class IsaOverview:
    """Every instruction, grouped by slice kind."""

    isa: Isa

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for kind, group in slice_groups(self.isa):
            yield heading(f"{kind}: {SLICE_SUMMARY[kind]}")
            t = table("syntax", "opcode", "dtypes", "lat", "occ", "origin", right=("lat", "occ"),
                      wrap=("dtypes",))
            for ins in group:
                dtypes = dtypes_text(self.isa, ins, short=True).replace(",", "")
                row(t, ins.syntax(), f"0x{ins.opcode:02x}", dtypes, str(ins.latency),
                    str(ins.occupancy), ins.origin)
            yield t
            large = [i.mnemonic for i in group if i.alu == "large"]
            if large:
                yield Text(f"large ALUs only: {', '.join(large)}")
            yield Text("")
        yield Text(
            f"{len(self.isa.instructions)} instructions; lat/occ: latency and occupancy in cycles; "
            f"dtypes \"all\": every dtype ({' '.join(self.isa.dtypes)}), \"-\": untyped; origin: "
            "published (Groq's ISCA 2020 paper, Table I) or chosen (added by lpu-emu); "
            "`lpu isa MNEMONIC` shows one in full."
        )


@dataclass(frozen=True)
class InstructionEntry:
    """One instruction: syntax, semantics, facts, operands, encoding."""

    isa: Isa
    ins: Instruction

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        ins = self.ins
        yield heading(ins.syntax())
        yield Text(ins.semantics)
        yield Text("")
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        for what, value in instruction_facts(self.isa, ins):
            row(facts, what, value)
        yield facts
        yield Text("")
        if ins.operands:
            ops = table("operand", "kind", "field", "bits", "notes", wrap=("notes",))
            for r in operand_rows(self.isa, ins):
                row(ops, *r)
            yield Group(heading("Operands"), ops, Text(""))
        enc = table("bits", "field", "content")
        for r in encoding_rows(self.isa, ins):
            row(enc, *r)
        yield Group(heading(f"Encoding ({self.isa.word_bits}-bit word, little-endian)"), enc)
