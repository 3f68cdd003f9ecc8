"""MEM slice semantics on the SRAM array (uint8[slices, banks, addresses, lanes]).

Addresses are already resolved (in range, after the lenient modulo) by the interpreter.
"""

from __future__ import annotations

import numpy as np


def read(sram: np.ndarray, unit: int, bank: int, addr: int) -> np.ndarray:
    """The 320-byte vector at bank:addr of the slice."""
    return sram[unit, bank, addr].copy()


def write(sram: np.ndarray, unit: int, bank: int, addr: int, data: np.ndarray) -> None:
    """Store one vector at bank:addr (when the write commits)."""
    sram[unit, bank, addr] = data


def gather(sram: np.ndarray, unit: int, bank: int, addrs: np.ndarray) -> np.ndarray:
    """Per lane l: SRAM[bank][addrs[l]][l]."""
    lanes = np.arange(sram.shape[3])
    return sram[unit, bank, addrs, lanes].copy()


def scatter(sram: np.ndarray, unit: int, bank: int, addrs: np.ndarray, data: np.ndarray) -> None:
    """Per lane l: SRAM[bank][addrs[l]][l] = data[l] (each lane its own column: no collisions)."""
    lanes = np.arange(sram.shape[3])
    sram[unit, bank, addrs, lanes] = data
