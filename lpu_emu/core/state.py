"""Machine state as plain numpy arrays, shared by both cores.

Everything a run mutates lives here: the SRAM, the MXM weight buffers, installed weights and
accumulators. Stream placements and C2C vectors in flight are per-run structures of each core.
The arrays are C-contiguous and of fixed dtypes so that the numba core can take them as they are.

The SRAM is an anonymous memory map, which the OS backs with untouched zero pages: lp30's ~511 MB
cost nothing until written, and a written 320-byte row costs one 4 KiB page. Not np.zeros: numpy
asks Linux for transparent huge pages on large arrays (madvise), so each row written made a 2 MiB
page resident; the compiled BERT layer at seq 128 touched 218 of 312 slice-banks and held 480 MB
of SRAM for 6 MB of data (bench/test_bench_memory.py). Nothing here may touch the whole array.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np

from lpu_emu.errors import LoadError
from lpu_emu.program import Program
from lpu_emu.spec import Chip

MXM_WEIGHT_PLANES = 2  # widest MXM input dtype (fp16/bf16) is 2 bytes


@dataclass(eq=False)
class Machine:
    """The state of one chip during a run."""

    chip: Chip
    sram: np.ndarray  # uint8[mem_slices, banks, addresses_per_bank, lanes]
    lanemaps: np.ndarray  # int64[n_maps, lanes]: source lane per lane, -1 zero
    wbuf: np.ndarray  # uint8[planes, rows, 2, lanes]: LW rows waiting for IW
    wbuf_rows: np.ndarray  # int64[planes]: rows in wbuf
    weights: np.ndarray  # uint8[planes, rows, 2, lanes]: installed weights (raw bytes)
    weights_at: np.ndarray  # int64[planes]: cycle they were installed, -1 none yet
    pending: np.ndarray  # uint8[planes, rows, 2, lanes]: weights an IW will install
    pending_at: np.ndarray  # int64[planes]: cycle the pending weights land, -1 none
    acc: np.ndarray  # uint32[planes, accumulators, lanes]: accumulator bits (int32 or fp32)


def new_sram(chip: Chip) -> np.ndarray:
    """The whole SRAM, zeroed lazily, in 4 KiB pages (see the module docstring)."""
    shape = (len(chip.mem_slices), int(chip.p("mem_banks")), int(chip.p("mem_addresses_per_bank")),
             chip.lanes)
    size = int(np.prod(shape))
    if not size:
        return np.zeros(shape, dtype=np.uint8)
    return np.frombuffer(mmap.mmap(-1, size), dtype=np.uint8).reshape(shape)


def mem_ordinal(chip: Chip, slice_name: str) -> int:
    """A MEM slice's index on the SRAM array's first axis: its ordinal among MEM slices, west to
    east (Plan's UNIT column for MEM queues)."""
    unit = chip.mem_ordinal(slice_name)
    if unit is None:
        raise LoadError(f"{slice_name!r} is not a MEM slice of {chip.name}")
    return unit


def load_segments(sram: np.ndarray, chip: Chip, program: Program) -> None:
    """Copy the program's initial SRAM images (whole 320-byte vectors) into place."""
    _, banks, size, lanes = sram.shape
    for seg in program.segments:
        unit = mem_ordinal(chip, seg.slice)
        n, rest = divmod(len(seg.data), lanes)
        if rest or not 0 <= seg.bank < banks or seg.addr < 0 or seg.addr + n > size:
            raise LoadError(f"data segment for {seg.slice} bank {seg.bank} address {seg.addr} "
                            f"({len(seg.data)} bytes) does not fit the slice "
                            f"({banks} banks x {size} addresses x {lanes} bytes)")
        vectors = np.frombuffer(seg.data, np.uint8).reshape(n, lanes)
        sram[unit, seg.bank, seg.addr:seg.addr + n] = vectors


def lanemap_table(chip: Chip, program: Program) -> np.ndarray:
    """The program's lane maps as one int64 table, padded with -1 (zero) to `lanes` entries."""
    table = np.full((max(1, len(program.lanemaps)), chip.lanes), -1, dtype=np.int64)
    for i, m in enumerate(program.lanemaps):
        values = np.asarray(m.values[:chip.lanes], dtype=np.int64)
        table[i, :len(values)] = np.where((values >= 0) & (values < chip.lanes), values, -1)
    return table


def new_machine(chip: Chip, program: Program) -> Machine:
    """A fresh machine for `program`: SRAM loaded from its segments, MXM state empty."""
    sram = new_sram(chip)
    load_segments(sram, chip, program)
    planes, rows = chip.mxm_planes, int(chip.p("mxm_rows"))
    wshape = (max(1, planes), rows, MXM_WEIGHT_PLANES, chip.lanes)
    return Machine(
        chip=chip,
        sram=sram,
        lanemaps=lanemap_table(chip, program),
        wbuf=np.zeros(wshape, np.uint8),
        wbuf_rows=np.zeros(wshape[0], np.int64),
        weights=np.zeros(wshape, np.uint8),
        weights_at=np.full(wshape[0], -1, np.int64),
        pending=np.zeros(wshape, np.uint8),
        pending_at=np.full(wshape[0], -1, np.int64),
        acc=np.zeros((wshape[0], int(chip.p("mxm_accumulators")), chip.lanes), np.uint32),
    )
