"""MXM semantics on one plane's state in the Machine (lpu_emu/core/state.py).

Weights are stationary: LW appends a load group's rows to a buffer, IW installs the buffer (after
its latency), ABC clears an accumulator, ACC multiplies a streaming vector by the installed
weights and adds into an accumulator. Weights stay raw bytes; ACC decodes them as its own dtype.
"""

from __future__ import annotations

import numpy as np

from lpu_emu.core.ops import vxm
from lpu_emu.core.ops.lanes import width
from lpu_emu.core.state import Machine
from lpu_emu.numerics import from_planes, from_storage


def lw(m: Machine, plane: int, group: np.ndarray, width: int) -> None:
    """Append the rows of a load group ([rows * width, lanes] bytes, row r in planes
    r*width .. r*width + width - 1) to the plane's weight buffer; rows past mxm_rows are dropped."""
    for first in range(0, group.shape[0], width):
        r = int(m.wbuf_rows[plane])
        if r >= m.wbuf.shape[1]:
            return
        m.wbuf[plane, r] = 0
        m.wbuf[plane, r, :width] = group[first:first + width]
        m.wbuf_rows[plane] = r + 1


def land(m: Machine, plane: int, cycle: int) -> None:
    """Let a pending install whose cycle has come (<= cycle) become the installed weights."""
    if 0 <= m.pending_at[plane] <= cycle:
        m.weights[plane] = m.pending[plane]
        m.weights_at[plane] = m.pending_at[plane]
        m.pending_at[plane] = -1


def iw(m: Machine, plane: int, cycle: int, lands_at: int, transposed: bool = False) -> None:
    """Take the buffered rows (missing rows zero) as the weights that land at `lands_at`, or
    (IWT) their transpose: W[k][j] = buffer row j, lane k; the buffer empties now."""
    land(m, plane, cycle)
    buf = m.wbuf[plane]
    if transposed:
        out = np.zeros_like(buf)
        n = min(buf.shape[0], buf.shape[2])
        out[:n, :, :n] = buf[:n, :, :n].transpose(2, 1, 0)
        buf = out
    m.pending[plane] = buf
    m.pending_at[plane] = lands_at
    m.wbuf[plane] = 0
    m.wbuf_rows[plane] = 0


def iwt(m: Machine, plane: int, cycle: int, lands_at: int) -> None:
    """IW of the buffered rows transposed: row j becomes column j of the weights."""
    iw(m, plane, cycle, lands_at, transposed=True)


def abc(m: Machine, plane: int, acc: int) -> None:
    """Clear accumulator `acc` of the plane."""
    m.acc[plane, acc % m.acc.shape[1]] = 0


def weights_for(m: Machine, plane: int, cycle: int) -> np.ndarray | None:
    """The raw weights [rows, 2, lanes] an ACC at `cycle` uses: the latest landed by then."""
    if 0 <= m.pending_at[plane] <= cycle:
        return m.pending[plane]
    return m.weights[plane] if m.weights_at[plane] >= 0 else None


def weight_values(raw: np.ndarray, dtype: str) -> np.ndarray:
    """Raw weights [rows, 2, lanes] decoded as dtype: [rows, lanes] values (floats as fp32)."""
    stored = from_planes(np.ascontiguousarray(raw[:, : width(dtype)]), dtype)
    values = from_storage(stored, dtype)
    return values.astype(np.float32) if dtype != "int8" else values


def acc(bits: np.ndarray, x: np.ndarray, w: np.ndarray, dtype: str) -> np.ndarray:
    """The accumulator after `acc_j += sum_k x[k] * W[k, j]`, as uint32 bits.

    int8: exact products and sums, added into the int32 accumulator with wrap-around.
    floats: in fp32, k ascending, one rounding per step: acc_j = fp32(acc_j + x[k] * W[k, j])
    (the products of fp16/bf16/fp8 inputs are exact in fp32)."""
    rows, cols = w.shape
    if dtype == "int8":
        dot = x[:rows].astype(np.int64) @ w.astype(np.int64)
        total = bits[:cols].view(np.int32).astype(np.int64) + dot
        out = bits.copy()
        out[:cols] = (total & 0xFFFFFFFF).astype(np.uint32)
        return out
    a = bits[:cols].view(np.float32).copy()
    xs = x.astype(np.float32)
    for k in range(rows):
        a = vxm.add(a, vxm.mul(xs[k], w[k]))  # the NaN rule of the VXM ops, step by step
    out = bits.copy()
    out[:cols] = a.view(np.uint32)
    return out
