"""SXM semantics: lane movement. Every function takes and returns a [w, lanes] byte-plane array:
an element's bytes (all planes of a lane) move together, so moving planes is moving elements."""

from __future__ import annotations

import numpy as np


def shiftup(x: np.ndarray, n: int) -> np.ndarray:
    """z[l] = x[l + n], zero past the last lane."""
    z = np.zeros_like(x)
    lanes = x.shape[1]
    if n < lanes:
        z[:, : lanes - n] = x[:, n:]
    return z


def shiftdown(x: np.ndarray, n: int) -> np.ndarray:
    """z[l] = x[l - n], zero before lane n."""
    z = np.zeros_like(x)
    lanes = x.shape[1]
    if n < lanes:
        z[:, n:] = x[:, : lanes - n]
    return z


def rotate(x: np.ndarray, n: int) -> np.ndarray:
    """z[l] = x[(l + n) mod lanes]."""
    lanes = x.shape[1]
    return x[:, (np.arange(lanes) + n) % lanes]


def distribute(x: np.ndarray, lanemap: np.ndarray) -> np.ndarray:
    """z[l] = x[map[l]], zero where map[l] is -1; lanes may repeat."""
    z = x[:, np.maximum(lanemap, 0)]
    z[:, lanemap < 0] = 0
    return z


def permute(x: np.ndarray, lanemap: np.ndarray) -> np.ndarray:
    """z[l] = x[map[l]] (a permutation; a -1 entry gives zero, as for Distribute)."""
    return distribute(x, lanemap)


def transpose(x: np.ndarray, block: int = 16) -> np.ndarray:
    """16x16 blocks of a 16-stream group: z[i][16k + j] = x[j][16k + i] for every superlane k."""
    streams, lanes = x.shape
    blocks = x.reshape(streams, lanes // block, block)  # [j, k, i]
    return np.ascontiguousarray(blocks.transpose(2, 1, 0)).reshape(streams, lanes)
