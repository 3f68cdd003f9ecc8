"""Emission: placed kernels -> a Program (arrays, vectorised) and its readable assembly.

Each slot of a pipe becomes one instruction plus a `Repeat` (its SRAM address stepping by the
slot's step) when the slot's queue has no other slot in the pipe; otherwise (an accumulator that
advances, or a queue used twice per iteration) one instruction per iteration, made with numpy by
patching the field that changes into a word encoded once. Instructions are ordered by issue
cycle, so a Repeat directly follows its instruction on its queue and every queue is in order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from lpu_emu.compiler.dataflow import Slot
from lpu_emu.compiler.schedule import Placed
from lpu_emu.compiler.target import Target
from lpu_emu.program import LaneMap, Program, Segment, Tensor
from lpu_emu.spec.encoding import encode


@dataclass
class Emitted:
    cycle: np.ndarray
    queue: np.ndarray
    word: np.ndarray
    note: np.ndarray  # index into notes


class Encoder:
    """Words for slots, each (mnemonic, dtype, operands) encoded once."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.cache: dict = {}

    def word(self, slot: Slot) -> int:
        key = (slot.mnemonic, slot.dtype, slot.operands)
        w = self.cache.get(key)
        if w is None:
            t = self.target
            ins = t.ins(slot.mnemonic)
            dtype = t.isa.dtypes[slot.dtype] if slot.dtype else None
            w = self.cache[key] = encode(t.isa, ins, dtype, dict(slot.operands))
        return w

    def repeat(self, n: int, d: int, step: int) -> int:
        return self.word(Slot(0, "Repeat", None, (("n", n), ("d", d), ("step", step)), 0))

    def field(self, name: str) -> tuple[int, int]:
        f = self.target.isa.fields[name]
        return f.lsb, (1 << f.width) - 1


def _vary(enc: Encoder, slot: Slot, base: int, count: int) -> np.ndarray:
    """Words of `count` copies of slot with its varying operand advanced by step each time."""
    if slot.vary == "acc":
        lsb, mask = enc.field("acc")
        start = dict(slot.operands)["acc"]
    else:
        lsb, mask = enc.field("addr")
        start = dict(slot.operands)[next(k for k, v in slot.operands if isinstance(v, tuple))][1]
    values = (start + slot.step * np.arange(count, dtype=np.int64)).astype(np.uint64)
    cleared = np.uint64(base) & ~np.uint64(mask << lsb)
    return cleared | ((values & np.uint64(mask)) << np.uint64(lsb))


def emit(placed: list[Placed], target: Target) -> tuple[Emitted, list[str]]:
    enc = Encoder(target)
    max_n = (1 << target.isa.fields["rep_n"].width) - 1
    cyc, que, wrd, nts = [], [], [], []
    notes: list[str] = []
    note_ix: dict[str, int] = {}

    def add(cycles, queue: int, words, note: str) -> None:
        k = note_ix.setdefault(note, len(notes))
        if k == len(notes):
            notes.append(note)
        cycles = np.atleast_1d(np.asarray(cycles, dtype=np.int64))
        cyc.append(cycles)
        que.append(np.full(len(cycles), queue, dtype=np.int16))
        wrd.append(np.atleast_1d(np.asarray(words, dtype=np.uint64)))
        nts.append(np.full(len(cycles), k, dtype=np.int32))

    for pl in placed:
        for pipe in pl.kernel.pipes:
            per_queue = Counter(s.queue for s in pipe.slots)
            for s in pipe.slots:
                note = s.note or pl.kernel.name
                t0 = pl.start + pipe.start + s.t
                base = enc.word(s)
                if pipe.count == 1:
                    add(t0, s.queue, base, note)
                elif s.vary != "acc" and per_queue[s.queue] == 1 and pipe.count - 1 <= max_n:
                    add(t0, s.queue, base, note)
                    add(t0 + pipe.period, s.queue, enc.repeat(pipe.count - 1, pipe.period,
                                                             s.step if s.vary else 0), note)
                else:
                    cycles = t0 + pipe.period * np.arange(pipe.count, dtype=np.int64)
                    words = (_vary(enc, s, base, pipe.count) if s.vary
                             else np.full(pipe.count, base, dtype=np.uint64))
                    add(cycles, s.queue, words, note)
    if not cyc:
        empty = np.zeros(0, dtype=np.int64)
        return Emitted(empty, empty.astype(np.int16), empty.astype(np.uint64),
                       empty.astype(np.int32)), notes
    cycle = np.concatenate(cyc)
    order = np.argsort(cycle, kind="stable")
    return Emitted(cycle[order], np.concatenate(que)[order], np.concatenate(wrd)[order],
                   np.concatenate(nts)[order]), notes


def program(em: Emitted, target: Target, name: str, symbols: list[Tensor],
            segments: list[Segment], lanemaps: list[LaneMap], first_line: int) -> Program:
    """The Program; instruction i's source line is first_line + i of the assembly text."""
    n = len(em.word)
    return Program(
        chip=target.chip.name, cycle=em.cycle, queue=em.queue, word=em.word,
        src_file=np.zeros(n, dtype=np.int16),
        src_line=(first_line + np.arange(n)).astype(np.int32),
        src_col=np.full(n, 9, dtype=np.int16), files=(name,), symbols=tuple(symbols),
        segments=tuple(segments), lanemaps=tuple(lanemaps))
