"""C2C semantics. One chip: every link is looped back to the slice that sent on it, so a link is
a delay line from Send to Receive (the interpreter keeps the vectors in flight)."""

from __future__ import annotations

import numpy as np


def deskew() -> None:
    """Align the link's lanes: no data moves (only the occupancy counts)."""


def send(x: np.ndarray) -> np.ndarray:
    """The vector that goes onto the link: src's byte planes, as they are."""
    return x.copy()


def receive(arrived: np.ndarray, width: int) -> np.ndarray:
    """The arriving vector as `width` planes (planes the sender did not carry are zero)."""
    z = np.zeros((width, arrived.shape[1]), dtype=np.uint8)
    n = arrived.shape[0] if arrived.shape[0] < width else width
    z[:n] = arrived[:n]
    return z
