"""Attention's context, two ways: the one with fewer MXM plane cycles for the shapes at hand.

The probabilities come out of the softmax transposed, P_h^T (keys down, queries across; see
`Lowering.op_Attention`). The context C = sum_h P_h V_h can then be formed:

- **by queries**: each P_h^T transposed back to P_h on the MXM, then P_h's sq rows streamed
  through V installed with only head h's lanes (a Mul by the head mask on every loaded row),
  all heads accumulating into C's lanes. Per head: sq ACCs to transpose, sq ACCs to multiply,
  and sk masked weight rows to load;
- **by head dimensions**: C^T = V^T P^T, head h writing only C^T's rows h*dh.., by streaming
  V_h^T's dh rows through P_h^T installed as it is; V is transposed once before and C^T once
  after. Per head: dh ACCs and sk plain weight rows; once: d + sq ACCs of the two transposes.

The second wins when the sequence is long against the head size (BERT at seq 128: dh = 32 ACCs a
head instead of 2 x 128), the first for a decode step (sq = 1: two ACCs a head) and short
prompts. `by_dimensions` compares the two estimates of plane-queue cycles: loads, installs and
ACCs of one plane set, as `kernels.mxm` issues them in order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.precision import pairs

if TYPE_CHECKING:
    from lpu_emu.compiler.lowering import Lowering
    from lpu_emu.compiler.target import Target


def _transpose_cycles(target: Target, rows: int, cols: int, mxm: str) -> int:
    """Plane-queue cycles of one exact transpose of a rows x cols block: each chunk of its
    columns installs the rows (a tile per plane, in turn), then one ACC per output row."""
    lanes, period, iw = target.lanes, target.acc_period(mxm), _install(target)
    tiles = math.ceil(rows / lanes)
    return math.ceil(cols / lanes) * (rows + tiles * iw) + tiles * cols * period


def _install(target: Target) -> int:
    return max(target.latency("IW"), target.occupancy("IW"))


def estimates(target: Target, sq: int, sk: int, d: int, heads: int, parts: int,
              transpose_parts: int, mxm: str) -> tuple[int, int]:
    """Plane-queue cycles of the context (by queries, by head dimensions), module doc; `parts`
    are the operands' parts, `transpose_parts` those of the fp32 context's transpose."""
    dh = d // heads
    period, iw = target.acc_period(mxm), _install(target)
    products = len(pairs(parts, parts, parts))
    k_tiles = math.ceil(sk / target.lanes)
    per_head_q = (parts * _transpose_cycles(target, sk, sq, mxm)
                  + products * (sk + k_tiles * iw + k_tiles * sq * period))
    per_head_d = products * (sk + k_tiles * iw + k_tiles * dh * period)
    once_d = (parts * _transpose_cycles(target, sk, d, mxm)
              + transpose_parts * _transpose_cycles(target, d, sq, mxm))
    return heads * per_head_q, heads * per_head_d + once_d


def by_dimensions(target: Target, sq: int, sk: int, d: int, heads: int, parts: int,
                  transpose_parts: int, mxm: str) -> bool:
    """Whether forming the context by head dimensions is the cheaper way (`estimates`)."""
    by_q, by_d = estimates(target, sq, sk, d, heads, parts, transpose_parts, mxm)
    return by_d < by_q


def transpose_v(low: Lowering, name: str, out_name: str, vs: tuple[str, ...], sk: int,
                d: int) -> tuple[str, ...]:
    """V^T's parts (d x sk, the MXM dtype) from V's (sk x d): `context`'s stationary operand,
    made while the softmax runs on the VXM (the planes are idle then)."""
    mxm = low.mode.exact
    vts = []
    for i, part in enumerate(vs):
        vt = low.tensor(low.fresh(f"{out_name}.vT{i}"), d, sk, dtype=mxm)
        low.steps.append(low._transpose(vt, (part,), mxm, f"{name} v transposed"))
        vts.append(vt)
    return tuple(vts)


def context(low: Lowering, name: str, out_name: str, vts: tuple[str, ...],
            probs_t: list[tuple[str, ...]], sq: int, sk: int, d: int, heads: int) -> str:
    """C = (V^T P^T)^T by head dimensions (module doc): `vts` are V^T's parts (`transpose_v`),
    `probs_t` P^T's parts by way (`Lowering.softmax_ways`: head h in way h % ways from row
    (h // ways) * sk, sk x sq a head), both in the MXM dtype, which is also the transposes'
    exact dtype. Returns the context tensor (sq x d, fp32)."""
    from lpu_emu.compiler.lowering import ACC, MmStep, Term
    mxm, p, dh = low.mode.exact, len(vts), d // heads
    # C^T in the parts its transpose takes: one rounded part, written so by the epilogue, or
    # fp32 split into exact parts (fp32 mode)
    rounded = low.mode.transpose_parts == 1
    ct = low.tensor(low.fresh(f"{out_name}.contextT"), d, sq, dtype=mxm if rounded else "fp32")
    epilogue = E.Ex("Cvt", (ACC,), dtype2=mxm) if rounded else ACC
    ways = len(probs_t)
    for h in range(heads):
        term = Term(tuple(vts), probs_t[h % ways], "IW", p, x_row=h * dh,
                    w_row=(h // ways) * sk)
        low.steps.append(MmStep(ct, (term,), epilogue, mxm, f"{name} context h{h}",
                                out_row=h * dh, rows=dh))
    out = low.tensor(low.fresh(out_name), sq, d)
    cts = (ct,) if rounded else low.tparts(E.Leaf(ct), d, sq)
    low.steps.append(low._transpose(out, cts, mxm, f"{name} context"))
    return out
