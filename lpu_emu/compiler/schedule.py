"""Scheduling: every kernel gets a start cycle.

List scheduling in program order, resource by resource. A kernel uses each resource over a span
of its own cycles: an instruction queue from its first issue there to the end of its last
(occupancy included), a stream from the first value it places on it to the last one it places or
reads. A kernel starts at the earliest cycle where each of its spans begins after the same
resource's span in every kernel before it has ended. So the order of everything that touches
one queue or one stream is the program's order, and a kernel overlaps the ones before it where
they are done with what it needs: its weights load while the kernel before it drains, a VXM
pass runs beside an MXM kernel that leaves its ALUs and streams alone.

Data needs nothing more: a tensor lives in MEM slices, and every read or write of a slice is an
instruction on that slice's queue. A Write's span on its queue lasts until the value lands
(design.md section 10.2: visible to reads from the next cycle), so a read that follows it in
program order sees it; a write that follows a read issues after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpu_emu.compiler.kernel import Kernel
from lpu_emu.compiler.kernels import consumed, placements
from lpu_emu.compiler.target import Target
from lpu_emu.core.plan import pair_partners
from lpu_emu.spec.isa import PAIRED_WIDTH

Span = tuple[int, int]  # first and last cycle a resource is in use, relative to the kernel


@dataclass(frozen=True)
class Placed:
    kernel: Kernel
    start: int
    end: int


def schedule(kernels: list[Kernel], target: Target, origin: int = 0) -> list[Placed]:
    """Start cycles for kernels, in order; a kernel never starts before `origin`."""
    busy: dict = {}  # resource -> last cycle a kernel placed so far uses it
    out = []
    for k in kernels:
        k.normalise()
        length = k.length(target)
        used = spans(k, target)
        start = max([origin] + [busy[r] + 1 - a for r, (a, _) in used.items() if r in busy])
        for r, (_, b) in used.items():
            busy[r] = max(busy.get(r, b + start), b + start)
        out.append(Placed(k, start, start + length))
    return out


def spans(kernel: Kernel, target: Target) -> dict:
    """Resource -> its Span in the kernel: ("q", queue) and ("s", stream code)."""
    out: dict = {}

    def use(r, a: int, b: int) -> None:
        lo, hi = out.get(r, (a, b))
        out[r] = (min(lo, a), max(hi, b))

    paired = int(target.chip.p("mxm_fp16_planes")) == PAIRED_WIDTH
    partners = pair_partners(target.chip) if paired else {}
    land = target.latency("Write")
    for p in kernel.pipes:
        tail = (p.count - 1) * p.period
        for s in p.slots:
            first = p.start + s.t
            last = first + tail + target.occupancy(s.mnemonic, s.dtype) - 1
            if s.mnemonic == "Write":
                last = max(last, first + tail + land)
            use(("q", s.queue), first, last)
            if (s.mnemonic == "ACC" and s.queue in partners
                    and target.width(s.dtype) == PAIRED_WIDTH):
                use(("q", partners[s.queue]), first, last)
            for code in consumed(target, s):
                use(("s", code), first, first + tail)
        for code, (_, lo, hi) in placements(target, p).items():
            use(("s", code), p.start + lo, p.start + hi + tail)
    return out


def data_bound(placed: list[Placed], target: Target) -> int:
    """The length of a schedule of the same kernels, in the same order, that only data orders:
    each kernel as early as the kernels before it have written what it reads (the writes landed)
    and read or written what it writes, with queues, streams, ALUs and planes unlimited. It
    tells the cycles the kernels' chain of tensors costs from those the scheduler's resources
    add (a kernel's access to a tensor waits for the whole of the access before it: the
    lowering's granularity). Kernels pass data only through MEM (Reads and Writes)."""
    data: dict = {}
    end = 0
    for pl in placed:
        mine = _accesses(pl.kernel, target)
        start = max(0, _after(mine, data))
        _record(mine, start, data)
        end = max(end, start + pl.end - pl.start)
    return end


def _accesses(kernel: Kernel, target: Target) -> list[tuple]:
    """A kernel's MEM accesses: ((slice queue, bank), first and last address, a write?, the
    cycle its first access takes effect and the cycle its last does, relative to the kernel's
    start: a read at its issue, a write when it lands)."""
    land = target.latency("Write")
    out = []
    for p in kernel.pipes:
        tail = (p.count - 1) * p.period
        for s in p.slots:
            if s.mnemonic not in ("Read", "Write"):
                continue
            write = s.mnemonic == "Write"
            bank, addr = dict(s.operands)["dst" if write else "src"]
            span = (p.count - 1) * s.step if s.vary == "mem" else 0
            first = p.start + s.t + (land if write else 0)
            out.append(((s.queue, bank), min(addr, addr + span), max(addr, addr + span), write,
                        first, first + tail))
    return out


def _after(mine: list[tuple], data: dict) -> int:
    """The earliest start at which the kernel's accesses come after every access of the
    kernels before it to the same SRAM rows where either writes: a read after the write lands
    (visible from the next cycle), a write landing after the reads and writes before it."""
    start = -(1 << 40)
    for key, lo, hi, write, first, _ in mine:
        for plo, phi, pwrite, pend in data.get(key, ()):
            if (write or pwrite) and lo <= phi and plo <= hi:
                start = max(start, pend + 1 - first)
    return start


def _record(mine: list[tuple], start: int, data: dict) -> None:
    for key, lo, hi, write, _, last in mine:
        data.setdefault(key, []).append((lo, hi, write, start + last))
