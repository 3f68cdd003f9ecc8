"""Decode a Program's words for a chip, vectorised, and validate every field against the chip.

A `.lpx` is untrusted input (a course hand-in, a compiler's output, a file from a bug report): its
checksum only proves it was not corrupted in transit. So every field a core will use as an index
is checked here, once, when a Program becomes a Plan, and neither core ever sees an index this
module has not checked: the opcode is known, the dtype allowed, no stray bits; the queue exists
and is of the instruction's kind (a large ALU for Exp and friends); stream groups exist, are
aligned and fit; banks, accumulators, links and lane maps are in the chip's (or the
program's) range; operand minimums (NOP n, Repeat n and d) hold; issue cycles are non-negative and
far from int64 overflow. A bad word is a LoadError naming the instruction index and its source
line. SRAM addresses are the exception: the address field is wider than a bank and Repeat steps
move it, so an address outside the bank is the `address` schedule violation of the Plan's static
checks (design.md section 7), which both cores honour, not a load error.

The work is numpy over whole columns, one pass per opcode present, never a Python loop per
instruction: a program of 10^6 instructions decodes in a fraction of a second (bench/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lpu_emu.errors import LoadError
from lpu_emu.program import Program
from lpu_emu.spec import Chip, Isa
from lpu_emu.spec.encoding import STREAM_INDEX_MASK, STREAM_WEST, decode
from lpu_emu.spec.isa import PAIRED_WIDTH, SG16, Instruction, Operand

# Issue cycles above this are refused: Repeat spans (< 2^32), latencies and occupancies added to
# a cycle then stay far inside int64.
MAX_CYCLE = 1 << 62
# Integer fields that index something the chip has a fixed number of: field -> (param, noun, what
# the chip has); as the assembler's PRESET_BOUNDS. Shift amounts are bounded by the assembler but
# not here: they index nothing, and both cores define amounts >= lanes (all zeros).
CHIP_BOUNDS = {
    "acc": ("mxm_accumulators", "accumulator", "accumulators per MXM plane"),
}
ACC_WIDTH = 4  # an MXM accumulator (int32 or fp32) is a 4-stream group
WIDTH_KINDS = ("dtype", "dtype2", "one", "acc", "sg16", "load")


@dataclass(frozen=True)
class Fields:
    """Each instruction's decoded fields, one int64 array per field (in program order)."""

    op: np.ndarray
    dtype: np.ndarray  # dtype code, 0 untyped
    dtype2: np.ndarray  # Cvt's target dtype code, else 0
    streams: np.ndarray  # int64[n, 6]: SA, SB, SC codes (-1 unused), then WA, WB, WC widths
    bank: np.ndarray
    addr: np.ndarray
    imm: np.ndarray
    lat: np.ndarray
    occ: np.ndarray
    repeat: np.ndarray  # bool: a Repeat (expanded by the Plan, never an issue itself)
    rep_n: np.ndarray  # Repeat n, d, step (0 for other instructions)
    rep_d: np.ndarray
    rep_step: np.ndarray


class _Faults:
    """The first bad instruction (lowest index; for one instruction, the first check) wins."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.first: tuple[int, int, Callable[[int], str]] | None = None
        self.checks = 0

    def add(self, rows: np.ndarray, bad: np.ndarray, message: Callable[[int], str]) -> None:
        """`bad` masks `rows` (program indices); message(i) says what is wrong with row i."""
        self.checks += 1
        hit = np.flatnonzero(bad)
        if not len(hit):
            return
        i = int(rows[hit[0]])
        if self.first is None or (i, self.checks) < self.first[:2]:
            self.first = (i, self.checks, message)

    def raise_first(self) -> None:
        if self.first is not None:
            i, _, message = self.first
            raise LoadError(f"{self.program.where(i)}: instruction {i}: {message(i)}")


def _bits(words: np.ndarray, lsb: int, width: int) -> np.ndarray:
    return ((words >> np.uint64(lsb)) & np.uint64((1 << width) - 1)).astype(np.int64)


def _field(isa: Isa, words: np.ndarray, name: str, signed: bool = False) -> np.ndarray:
    f = isa.fields[name]
    v = _bits(words, f.lsb, f.width)
    if signed:
        v = np.where(v & (1 << (f.width - 1)), v - (1 << f.width), v)
    return v


def _latency(ins: Instruction, chip: Chip) -> int:
    if ins.latency == "link":
        return int(chip.p("c2c_link_latency"))
    return int(chip.latency.get(ins.mnemonic.lower(), ins.latency))


def slice_units(chip: Chip) -> np.ndarray:
    """UNIT of each queue: MEM: ordinal among MEM slices (the SRAM array's first axis); MXM: plane
    ordinal; C2C: 0 west, 1 east; VXM/SXM: the unit at the position."""
    units, seen = [], {"MEM": 0, "MXM": 0}
    for s in chip.slices:
        if s.kind in seen:
            units.append(seen[s.kind])
            seen[s.kind] += 1
        elif s.kind == "C2C":
            units.append(0 if s.hemisphere == "W" else 1)
        else:
            units.append(s.unit)
    return np.array(units, dtype=np.int64)


class _Decoder:
    """One decode of one program: the columns being filled and the faults found."""

    def __init__(self, program: Program, chip: Chip, isa: Isa) -> None:
        self.program, self.chip, self.isa = program, chip, isa
        n = len(program)
        self.words = np.ascontiguousarray(program.word, dtype=np.uint64)
        self.queue = program.queue.astype(np.int64)
        self.cycle = program.cycle.astype(np.int64)
        self.faults = _Faults(program)
        self.op = _field(isa, self.words, "opcode")
        z = np.zeros(n, dtype=np.int64)
        self.dtype, self.dtype2, self.bank, self.addr, self.imm = z.copy(), z.copy(), z.copy(), \
            z.copy(), z.copy()
        self.lat, self.occ = z.copy(), z.copy()
        self.rep_n, self.rep_d, self.rep_step = z.copy(), z.copy(), z.copy()
        self.repeat = np.zeros(n, dtype=bool)
        self.streams = np.zeros((n, 6), dtype=np.int64)
        self.streams[:, :3] = -1
        codes = isa.dtype_by_code()
        self.dtype_width = np.ones(isa.fields["dtype"].mask + 1, dtype=np.int64)
        self.dtype_known = np.zeros(isa.fields["dtype"].mask + 1, dtype=bool)
        for code, d in codes.items():
            self.dtype_width[code], self.dtype_known[code] = d.width, True
        self.kinds = np.array([s.kind for s in chip.slices])

    def undecodable(self, i: int) -> str:
        """Why word i does not decode, in the words of the scalar decoder (the disassembler
        and the assembler use the same one)."""
        try:
            decode(self.isa, int(self.words[i]))
        except ValueError as exc:
            return f"cannot be decoded: {exc}"
        raise AssertionError("a word flagged undecodable decoded")  # pragma: no cover

    def run(self) -> Fields:
        n = len(self.words)
        rows = np.arange(n)
        chip = self.chip
        self.faults.add(rows, (self.cycle < 0) | (self.cycle > MAX_CYCLE),
                        lambda i: f"issue cycle {int(self.cycle[i])} is outside 0..{MAX_CYCLE}")
        bad_q = (self.queue < 0) | (self.queue >= len(chip.slices))
        by_opcode = self.isa.by_opcode()
        known = np.isin(self.op, list(by_opcode))
        self.faults.add(rows, ~known, self.undecodable)
        self.faults.add(rows, known & bad_q,
                        lambda i: f"queue index {int(self.queue[i])} is not a slice of {chip.name}")
        ok_q = ~bad_q
        order = np.argsort(self.op.astype(np.uint8), kind="stable")  # a radix sort
        ops_sorted = self.op[order]
        for opcode in np.unique(self.op[known]).tolist():
            lo, hi = np.searchsorted(ops_sorted, [opcode, opcode + 1])
            idx = order[lo:hi]
            self._instruction(by_opcode[opcode], idx[ok_q[idx]])
        self.faults.raise_first()
        return Fields(self.op, self.dtype, self.dtype2, self.streams, self.bank, self.addr,
                      self.imm, self.lat, self.occ, self.repeat, self.rep_n, self.rep_d,
                      self.rep_step)

    # ---- one instruction kind, all its rows at once ----
    def _instruction(self, ins: Instruction, idx: np.ndarray) -> None:
        isa, w = self.isa, self.words[idx]
        used = isa.fields["opcode"].mask << isa.fields["opcode"].lsb
        if ins.typed:
            f = isa.fields["dtype"]
            used |= f.mask << f.lsb
            code = _field(isa, w, "dtype")
            allowed = np.array([isa.dtypes[d].code for d in ins.dtypes])
            self.faults.add(idx, ~np.isin(code, allowed), self.undecodable)
            self.dtype[idx] = code
        for op in ins.operands:
            for name in op.fields:
                f = isa.fields[name]
                used |= f.mask << f.lsb
        self.faults.add(idx, (w & ~np.uint64(used)) != 0, self.undecodable)
        self._queue_kind(ins, idx)
        self.lat[idx] = _latency(ins, self.chip)
        self.occ[idx] = ins.occupancy if isinstance(ins.occupancy, int) else 1
        if ins.occupancy == "mxm":  # fp16/bf16 products hold their plane pair (design.md 14)
            paired = self.dtype_width[self.dtype[idx]] == PAIRED_WIDTH
            self.occ[idx] = np.where(paired, self.chip.mxm_float_occupancy, 1)
        if ins.mnemonic == "Repeat":
            self.repeat[idx] = True
        in_cols = iter((0, 1))
        for op in ins.operands:
            if op.kind == "stream":
                col = 2 if op.role == "out" else next(in_cols, None)
                if col is not None:
                    self._stream(ins, op, idx, w, col)
            elif op.kind == "mem":
                self._mem(idx, w, op)
            elif op.kind == "dtype2":
                self._dtype2(idx, w, op)
            else:
                self._integer(ins, op, idx, w)

    def _queue_kind(self, ins: Instruction, idx: np.ndarray) -> None:
        chip, kinds = self.chip, self.kinds[self.queue[idx]]
        if ins.slice != "ICU":
            self.faults.add(idx, kinds != ins.slice, lambda i: (
                f"{ins.mnemonic} is a {ins.slice} instruction; "
                f"{chip.slices[int(self.queue[i])].name} is a "
                f"{chip.slices[int(self.queue[i])].kind} queue"))
        if ins.alu == "large":
            large = [int(k) for k in chip.p("vxm_large_alus")]
            units = np.array([s.unit for s in chip.slices])[self.queue[idx]]
            self.faults.add(idx, ~np.isin(units, large), lambda i: (
                f"{ins.mnemonic} needs a large ALU; {chip.slices[int(self.queue[i])].name} is "
                f"not one on {chip.name} (large ALUs: "
                + ", ".join(f"VXM{k}" for k in large) + ")"))

    def _stream(self, ins: Instruction, op: Operand, idx: np.ndarray, w: np.ndarray,
                col: int) -> None:
        code = _field(self.isa, w, op.fields[0])
        align = None
        if op.width == "dtype":
            width = self.dtype_width[self.dtype[idx]] if ins.typed else np.ones(len(idx), np.int64)
        elif op.width == "dtype2":
            width = self.dtype_width[_field(self.isa, w, "dtype2")]
        elif op.width == "load":  # LW: the group is aligned to mxm_load_streams; it reads the
            # streams of the rows it takes (rows x width), at most the whole group
            align = np.full(len(idx), self.chip.mxm_load_streams)
            dw = self.dtype_width[self.dtype[idx]]
            rows = _field(self.isa, w, "rows")
            self.faults.add(idx, (rows < 1) | (rows * dw > align), lambda i: (
                f"{ins.mnemonic} rows = {self._value(ins_rows(ins), i)} is out of range: a load "
                f"group of {self.chip.name} ({self.chip.mxm_load_streams} streams) holds "
                f"{self.chip.mxm_load_streams // int(self.dtype_width[self.dtype[i]])} rows"))
            width = rows * dw
        else:
            width = np.full(len(idx), {"one": 1, "acc": ACC_WIDTH, "sg16": SG16}[op.width])
        self.streams[idx, col], self.streams[idx, col + 3] = code, width
        streams = int(self.chip.p("streams_per_direction"))
        index = code & STREAM_INDEX_MASK
        group = width if align is None else align
        bad = (index % np.maximum(group, 1) != 0) | (index + group > streams)
        width = group

        def message(i: int) -> str:
            k = int(np.flatnonzero(idx == i)[0])
            s, g = int(index[k]), int(width[k])
            d = "W" if int(code[k]) & STREAM_WEST else "E"
            if s >= streams:
                return (f"{ins.mnemonic} {op.name}: stream S{s}{d} does not exist: "
                        f"{self.chip.name} has {streams} streams per direction")
            if s % g:
                return (f"{ins.mnemonic} {op.name}: S{s}{d} cannot start a {g}-stream group: "
                        f"the index must be a multiple of {g}")
            return (f"{ins.mnemonic} {op.name}: the {g}-stream group S{s}{d}..S{s + g - 1}{d} "
                    f"runs past S{streams - 1}{d}")
        self.faults.add(idx, bad, message)

    def _mem(self, idx: np.ndarray, w: np.ndarray, op: Operand) -> None:
        bank = _field(self.isa, w, op.fields[0])
        self.bank[idx], self.addr[idx] = bank, _field(self.isa, w, op.fields[1])
        banks = int(self.chip.p("mem_banks"))
        self.faults.add(idx, bank >= banks, lambda i: (
            f"bank {int(self.bank[i])} does not exist: MEM slices of {self.chip.name} have "
            f"{banks} banks (0..{banks - 1})"))

    def _dtype2(self, idx: np.ndarray, w: np.ndarray, op: Operand) -> None:
        code = _field(self.isa, w, op.fields[0])
        self.faults.add(idx, ~self.dtype_known[code], self.undecodable)
        self.dtype2[idx] = code

    def _integer(self, ins: Instruction, op: Operand, idx: np.ndarray, w: np.ndarray) -> None:
        v = _field(self.isa, w, op.fields[0], signed=op.kind == "simm")
        mn = ins.mnemonic
        if op.min:
            self.faults.add(idx, v < op.min, lambda i: (
                f"{mn} {op.name} must be at least {op.min}, got {int(self._value(op, i))}"))
        limit = self._limit(op)
        if limit is not None:
            self.faults.add(idx, v >= limit, lambda i: self._out_of_range(op, self._value(op, i)))
        if mn == "NOP" and op.name == "n":
            self.occ[idx] = v
        elif mn == "Repeat":
            {"n": self.rep_n, "d": self.rep_d, "step": self.rep_step}[op.name][idx] = v
        else:
            self.imm[idx] = v

    def _value(self, op: Operand, i: int) -> int:
        (v,) = _field(self.isa, self.words[i : i + 1], op.fields[0], signed=op.kind == "simm")
        return int(v)

    def _limit(self, op: Operand) -> int | None:
        """The chip's (or the program's) bound on an integer operand, if any."""
        if op.kind == "link":
            return int(self.chip.p("c2c_links_per_edge"))
        if op.kind == "lanemap":
            return len(self.program.lanemaps)
        bound = CHIP_BOUNDS.get(op.fields[0])
        return None if bound is None else int(self.chip.p(bound[0]))

    def _out_of_range(self, op: Operand, v: int) -> str:
        limit, chip = self._limit(op), self.chip.name
        if op.kind == "link":
            return f"link {v} does not exist: {chip} has {limit} C2C links per edge"
        if op.kind == "lanemap":
            return f"lane map {v} does not exist (the program has {limit})"
        _, noun, plural = CHIP_BOUNDS[op.fields[0]]
        return f"{noun} {v} is out of range: {chip} has {limit} {plural} (0..{limit - 1})"


def ins_rows(ins: Instruction) -> Operand:
    """LW's `rows` operand."""
    return next(op for op in ins.operands if op.name == "rows")


def decode_program(program: Program, chip: Chip, isa: Isa) -> Fields:
    """Every instruction's fields, validated against `chip` (LoadError at the first bad one)."""
    n = len(program)
    lengths = {k: len(getattr(program, k)) for k in ("cycle", "queue", "src_file", "src_line",
                                                      "src_col")}
    if any(v != n for v in lengths.values()):
        raise LoadError(f"the program's instruction arrays differ in length: {n} words, "
                        + ", ".join(f"{v} {k}" for k, v in lengths.items()))
    return _Decoder(program, chip, isa).run()


def check_data(program: Program, chip: Chip, isa: Isa) -> None:
    """Tensors, data segments and lane maps inside the chip: MEM slices that exist, banks, the
    extent of every tensor and segment within its slice, lane counts (LoadError naming the entry).
    The .lpx loader has checked types and signs; this is what depends on the chip."""
    mem = {s.name for s in chip.mem_slices}
    banks, size = int(chip.p("mem_banks")), int(chip.p("mem_addresses_per_bank"))
    lanes = chip.lanes

    def fits(what: str, slices: tuple[str, ...], bank: int, addr: int, span: int) -> None:
        for name in slices:
            if name.upper() not in mem:
                raise LoadError(f"{what}: {name!r} is not a MEM slice of {chip.name}")
        if not 0 <= bank < banks:
            raise LoadError(f"{what}: bank {bank} does not exist: MEM slices of {chip.name} have "
                            f"{banks} banks (0..{banks - 1})")
        if addr < 0 or addr + span > size:
            raise LoadError(f"{what}: addresses {addr}..{addr + span - 1} do not fit a bank of "
                            f"{chip.name} (0..{size - 1})")

    for t in program.symbols:
        what = f"tensor {t.name!r}"
        dtype = isa.dtypes.get(t.dtype)
        if dtype is None:
            raise LoadError(f"{what}: unknown dtype {t.dtype!r}")
        if len(t.slices) not in (1, dtype.width):
            raise LoadError(f"{what}: {len(t.slices)} slices; a {t.dtype} tensor lives in 1 or "
                            f"{dtype.width}")
        if t.shape[-1] > lanes:
            raise LoadError(f"{what}: its last dimension {t.shape[-1]} is more than the "
                            f"{lanes} lanes of {chip.name}")
        span = t.vectors() * (dtype.width if len(t.slices) == 1 else 1)
        fits(what, t.slices, t.bank, t.addr, span)
    for k, seg in enumerate(program.segments):
        what = f"data segment {k} ({seg.slice} bank {seg.bank} address {seg.addr})"
        if len(seg.data) % lanes:
            raise LoadError(f"{what}: {len(seg.data)} bytes are not whole {lanes}-byte vectors")
        fits(what, (seg.slice,), seg.bank, seg.addr, len(seg.data) // lanes)
    for m in program.lanemaps:
        if len(m.values) > lanes:
            raise LoadError(f"lane map {m.name!r}: {len(m.values)} entries, more than the "
                            f"{lanes} lanes of {chip.name}")
        bad = next((k for k, v in enumerate(m.values) if not -1 <= v < lanes), None)
        if bad is not None:
            raise LoadError(f"lane map {m.name!r}: entry {bad} is {m.values[bad]}, neither -1 "
                            f"nor a lane (0..{lanes - 1})")
