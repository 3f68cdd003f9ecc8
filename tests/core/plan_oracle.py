"""The Plan as lpu-emu built it before the vectorised decoder: one Python row per instruction.

Kept verbatim (minus the Plan dataclass) as an independent oracle: tests/core/test_plan.py holds
the vectorised lpu_emu.core.plan.make_plan equal to it on random and example programs.
"""

from __future__ import annotations

import numpy as np

from lpu_emu.core.plan import (
    ADDR,
    BANK,
    CYCLE,
    DTYPE,
    DTYPE2,
    IMM,
    LAT,
    MXM_PAIR,
    NCOL,
    OCC,
    OP,
    POS,
    QUEUE,
    QUEUE_BUSY,
    SA,
    SB,
    SC,
    SRC,
    SYNC,
    UNIT,
    VIOL,
    VIOL_A,
    VIOL_B,
    WA,
    WB,
    WC,
    Plan,
)
from lpu_emu.core.plan import ADDRESS as ADDRESS_VIOLATION
from lpu_emu.errors import LoadError
from lpu_emu.program import Program
from lpu_emu.spec import Chip, Isa
from lpu_emu.spec.encoding import decode
from lpu_emu.spec.isa import PAIRED_WIDTH, SG16


def _width(kind: str, dtype, dtype2) -> int:
    return {"dtype": dtype.width if dtype else 1, "dtype2": dtype2.width if dtype2 else 1,
            "one": 1, "acc": 4, "sg16": SG16, "load": 0}[kind]  # load: rows x width, in _row


def _latency(ins, chip: Chip) -> int:
    if ins.latency == "link":
        return int(chip.p("c2c_link_latency"))
    return int(chip.latency.get(ins.mnemonic.lower(), ins.latency))


def _unit(chip: Chip, q: int) -> int:
    """MEM: ordinal among MEM slices (the SRAM array's first axis); MXM: plane ordinal;
    C2C: 0 west, 1 east; VXM/SXM: the unit at the position."""
    s = chip.slices[q]
    if s.kind in ("MEM", "MXM"):
        return sum(1 for t in chip.slices[:q] if t.kind == s.kind)
    if s.kind == "C2C":
        return 0 if s.hemisphere == "W" else 1
    return s.unit


def _row(isa: Isa, chip: Chip, program: Program, i: int) -> tuple[np.ndarray, object]:
    """One issue row for program instruction i (before Repeat expansion and static checks)."""
    try:
        d = decode(isa, int(program.word[i]))
    except ValueError as exc:
        raise LoadError(f"{program.where(i)}: instruction {i} cannot be decoded: {exc}") from None
    q = int(program.queue[i])
    if not 0 <= q < len(chip.slices):
        raise LoadError(f"{program.where(i)}: queue index {q} is not a slice of {chip.name}")
    row = np.zeros(NCOL, dtype=np.int64)
    row[[SA, SB, SC]] = -1
    row[CYCLE], row[SRC], row[OP] = int(program.cycle[i]), i, d.ins.opcode
    row[DTYPE] = d.dtype.code if d.dtype else 0
    row[DTYPE2] = d.dtype2.code if d.dtype2 else 0
    row[QUEUE], row[POS], row[UNIT] = q, chip.slices[q].position, _unit(chip, q)
    row[LAT] = _latency(d.ins, chip)
    occ = d.ins.occupancy
    row[OCC] = d.values["n"] if occ == "n" else (1 if occ in ("repeat", "mxm") else int(occ))
    streams_in = [op for op in d.ins.operands if op.kind == "stream" and op.role == "in"]
    for op, (code_col, width_col) in zip(streams_in, ((SA, WA), (SB, WB)), strict=False):
        row[code_col], row[width_col] = d.values[op.name], _width(op.width, d.dtype, d.dtype2)
        if op.width == "load":  # LW reads only the streams of the rows it takes
            row[width_col] = d.values["rows"] * d.dtype.width
    if occ == "mxm":
        row[OCC] = chip.mxm_float_occupancy if d.dtype.width == PAIRED_WIDTH else 1
    for op in d.ins.operands:
        if op.kind == "stream" and op.role == "out":
            row[SC], row[WC] = d.values[op.name], _width(op.width, d.dtype, d.dtype2)
        elif op.kind == "mem":
            row[BANK], row[ADDR] = d.values[op.name]
        elif (op.kind in ("uimm", "simm", "imm32", "lanemap", "link")
              and not (d.ins.mnemonic in ("NOP", "Repeat") and op.name in ("n", "d", "step"))):
            # NOP/Repeat counts live in OCC and the expansion; every other immediate (a shift
            # amount `n` included) goes to IMM
            row[IMM] = d.values[op.name]
    return row, d


def _expand(isa: Isa, chip: Chip,
            program: Program) -> tuple[list[np.ndarray], dict[int, list[int]]]:
    """Rows in program order, Repeats expanded; also each queue's row indices in queue order."""
    rows: list[np.ndarray] = []
    by_queue: dict[int, list[int]] = {}
    for i in range(len(program)):
        row, d = _row(isa, chip, program, i)
        q = int(row[QUEUE])
        if d.ins.mnemonic == "Repeat":
            prev = by_queue.get(q)
            if not prev:
                raise LoadError(
                    f"{program.where(i)}: Repeat has no previous instruction on its queue")
            base = rows[prev[-1]]
            n, step_d, step = d.values["n"], d.values["d"], d.values["step"]
            for k in range(1, n + 1):
                rep = base.copy()
                rep[CYCLE] = row[CYCLE] + (k - 1) * step_d
                rep[SRC] = i  # violations of a repetition point at the Repeat line
                rep[ADDR] = base[ADDR] + k * step
                by_queue[q].append(len(rows))
                rows.append(rep)
            continue
        by_queue.setdefault(q, []).append(len(rows))
        rows.append(row)
    return rows, by_queue


def _flag(row: np.ndarray, kind: int, a: int = 0, b: int = 0) -> None:
    if row[VIOL] == 0:
        row[VIOL], row[VIOL_A], row[VIOL_B] = kind, a, b


def _check_queues(rows: list[np.ndarray], by_queue: dict[int, list[int]], isa: Isa) -> None:
    """Queue busy (occupancy, Sync parking) and Syncs that no Notify releases."""
    sync_op, notify_op = isa.lookup("Sync").opcode, isa.lookup("Notify").opcode
    notifies = sorted(int(r[CYCLE]) for r in rows if r[OP] == notify_op)
    notify_lat = {int(r[CYCLE]): int(r[LAT]) for r in rows if r[OP] == notify_op}
    for idx in by_queue.values():
        free, parked = -1, False
        for j in idx:
            r = rows[j]
            c = int(r[CYCLE])
            if c < free:
                _flag(r, QUEUE_BUSY, free, int(parked))
            parked = False
            free = c + int(r[OCC])
            if r[OP] == sync_op:
                k = int(np.searchsorted(notifies, c, side="left"))
                if k == len(notifies):
                    _flag(r, SYNC)
                else:
                    release = notifies[k] + notify_lat[notifies[k]]
                    free, parked = max(free, release), True


def _check_addresses(rows: list[np.ndarray], chip: Chip, isa: Isa) -> None:
    mem_ops = {ins.opcode for ins in isa.instructions
               if any(op.kind == "mem" for op in ins.operands)}
    size = int(chip.p("mem_addresses_per_bank"))
    for r in rows:
        if r[OP] in mem_ops and not 0 <= r[ADDR] < size:
            _flag(r, ADDRESS_VIOLATION, int(r[ADDR]), int(r[BANK]))


def pair_partners(chip: Chip) -> dict[int, int]:
    """Even MXM plane queue -> the next plane's queue in its hemisphere (a float pair)."""
    planes = {(s.hemisphere, s.unit): s.index for s in chip.slices if s.kind == "MXM"}
    return {q: planes[(h, u + 1)] for (h, u), q in planes.items()
            if u % PAIRED_WIDTH == 0 and (h, u + 1) in planes}


def _check_mxm_pairs(rows: list[np.ndarray], by_queue: dict[int, list[int]], chip: Chip,
                     isa: Isa) -> None:
    """fp16/bf16 ACCs take a plane pair (ISCA 2020): issued on the pair's even plane, they keep
    the odd plane's queue busy too. Flags a float ACC elsewhere, and the later (in Plan order) of
    a float ACC and an issue of the odd plane whose busy intervals overlap."""
    if int(chip.p("mxm_fp16_planes")) != PAIRED_WIDTH:
        return
    acc_op = isa.lookup("ACC").opcode
    paired = {d.code for d in isa.dtypes.values() if d.width == PAIRED_WIDTH}
    partners = pair_partners(chip)
    for q, idx in by_queue.items():
        if chip.slices[q].kind != "MXM":
            continue
        floats = [j for j in idx if rows[j][OP] == acc_op and rows[j][DTYPE] in paired]
        if q not in partners:
            for j in floats:
                _flag(rows[j], MXM_PAIR, -1, -1)
            continue
        if not floats:
            continue
        starts = np.array([rows[j][CYCLE] for j in floats])
        ends = starts + np.array([rows[j][OCC] for j in floats])
        for j2 in by_queue.get(partners[q], []):
            c2 = int(rows[j2][CYCLE])
            end2 = c2 + int(rows[j2][OCC])
            i = int(np.searchsorted(starts, end2, side="left")) - 1
            if i < 0 or ends[i] <= c2:
                continue
            j = floats[i]
            if (int(rows[j][CYCLE]), j) < (c2, j2):
                _flag(rows[j2], MXM_PAIR, int(ends[i]), q)
            else:
                _flag(rows[j], MXM_PAIR, end2, partners[q])


def oracle_plan(program: Program, chip: Chip, isa: Isa) -> Plan:
    """Decode, expand and check a program for a chip (LoadError if it was built for another)."""
    if program.chip != chip.name:
        raise LoadError(f"the program was assembled for chip {program.chip!r}, not {chip.name!r}",
                        hint=f"run it with --chip {program.chip}, or reassemble it for {chip.name}")
    rows, by_queue = _expand(isa, chip, program)
    _check_queues(rows, by_queue, isa)
    _check_addresses(rows, chip, isa)
    _check_mxm_pairs(rows, by_queue, chip, isa)
    issues = np.array(rows, dtype=np.int64).reshape(-1, NCOL)
    order = np.lexsort((np.arange(len(issues)), issues[:, CYCLE]))
    issues = np.ascontiguousarray(issues[order])
    ends = issues[:, CYCLE] + np.maximum(issues[:, LAT], issues[:, OCC])
    return Plan(issues, int(ends.max()) if len(issues) else 0, program, chip)
