"""Kernels: the unit the scheduler places in time.

A `Kernel` is a few `Pipe`s (an iteration template of `Slot`s run `count` times, one iteration
every `period` cycles) at offsets relative to the kernel's start. What it uses, instruction
queues and stream codes, each over a span of its cycles (`schedule.spans`), is what the
scheduler keeps apart, so a schedule built from kernels is free of conflicts by construction
(the core checks it anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lpu_emu.compiler.dataflow import Slot
from lpu_emu.compiler.target import Target


@dataclass
class Pipe:
    slots: list[Slot]
    count: int
    start: int = 0
    period: int = 1
    placements: dict | None = None  # cache of kernels.placements
    reads: dict | None = None  # cache of kernels.last_reads

    def first(self) -> int:
        return self.start + min(s.t for s in self.slots)

    def last(self, target: Target) -> int:
        """The cycle after the last effect of the last iteration lands."""
        tail = (self.count - 1) * self.period
        return self.start + tail + max(
            s.t + max(target.latency(s.mnemonic), target.occupancy(s.mnemonic, s.dtype))
            for s in self.slots)


@dataclass
class Kernel:
    name: str  # the graph op it comes from (comments in the assembly, the report)
    pipes: list[Pipe]
    kind: str = "vxm"  # "mxm" | "vxm" | "sxm": what the report books its time to
    stats: dict[str, int] = field(default_factory=dict)  # work done: macs, alu ops, ...

    def normalise(self) -> None:
        """Shift every pipe so that the kernel's first issue is at 0."""
        lo = min(p.first() for p in self.pipes)
        for p in self.pipes:
            p.start -= lo

    def length(self, target: Target) -> int:
        """Cycles from the first issue until the kernel's last effect has landed: a write
        landing at cycle c is visible to reads from c + 1 (design.md section 10.2)."""
        return max(p.last(target) for p in self.pipes) + 1
