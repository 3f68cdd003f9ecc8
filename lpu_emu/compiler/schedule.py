"""Scheduling: every kernel gets a start cycle.

List scheduling in program order: a kernel starts when the kernels it depends on (it reads what
they write, or writes what they read or write) have finished and every resource it holds is free.
Kernels that share no resource and no data overlap in time, which is where the chip's
parallelism comes from (four MXM planes, two hemispheres, sixteen ALUs).
"""

from __future__ import annotations

from dataclasses import dataclass

from lpu_emu.compiler.kernel import Kernel
from lpu_emu.compiler.target import Target


@dataclass(frozen=True)
class Placed:
    kernel: Kernel
    start: int
    end: int


def schedule(kernels: list[Kernel], target: Target, origin: int = 0) -> list[Placed]:
    """Start cycles for kernels, in order; a kernel never starts before `origin`."""
    free: dict = {}
    written: dict[str, int] = {}  # tensor -> when its last writer ends
    read: dict[str, int] = {}  # tensor -> when its last reader ends
    out = []
    for k in kernels:
        k.normalise()
        length = k.length(target)
        res = k.resources()
        start = max([origin] + [free.get(r, 0) for r in res]
                    + [written.get(t, 0) for t in k.reads | k.writes]
                    + [read.get(t, 0) for t in k.writes])
        end = start + length
        for r in res:
            free[r] = end
        for t in k.writes:
            written[t] = end
        for t in k.reads:
            read[t] = max(read.get(t, 0), end)
        out.append(Placed(k, start, end))
    return out
