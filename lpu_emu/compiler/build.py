"""Chip steps -> kernels: tiling of matmuls and transposes over planes, rows and parts.

An MmStep writes R rows x N columns: N in tiles of `lanes` columns (one output chunk per plane),
R in blocks of at most `mxm_accumulators` rows (one accumulator per row), K in tiles of `lanes`.
Each (row block, group of tiles) is one kernel whose job accumulates every term over every K
tile and every part product.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lpu_emu.compiler import kernels as K
from lpu_emu.compiler.dataflow import CompileError, Op, Read
from lpu_emu.compiler.kernel import Kernel
from lpu_emu.compiler.lowering import MapStep, MmStep, ReduceStep, Term, TransposeStep
from lpu_emu.compiler.placement import Loc
from lpu_emu.compiler.precision import pairs
from lpu_emu.compiler.target import Target


def _mask(mask: tuple | None, locs: dict[str, Loc], dtype: str) -> Callable:
    """Multiply an operand on its way by row `row` of a mask tensor (a head's lanes), at the
    operand's chunk: conv(x, note, chunk)."""
    if mask is None:
        return lambda x, note, chunk: x
    loc, row = locs[mask[0]], mask[1]
    return lambda x, note, chunk: Op("Mul", dtype, (x, Read(loc, chunk, row, 0, note)),
                                     note=note)


def _planes(target: Target) -> list[int]:
    """Plane queues, alternating hemispheres (W0, E0, W1, E1, ...)."""
    w, e = target.planes("W"), target.planes("E")
    out = []
    for i in range(max(len(w), len(e))):
        out += [s.index for s in (w[i:i + 1] + e[i:i + 1])]
    return out


def _groups(tiles: list[int], sizes: dict[int, int], n: int) -> list[list[int]]:
    """Tiles in groups of at most n, each group of one size (planes load together)."""
    out: list[list[int]] = []
    by_size: dict[int, list[int]] = {}
    for t in tiles:
        by_size.setdefault(sizes[t], []).append(t)
    for same in by_size.values():
        out += [same[i:i + n] for i in range(0, len(same), n)]
    return sorted(out)


def mm_kernels(target: Target, step: MmStep, locs: dict[str, Loc]) -> list[Kernel]:
    out = locs[step.out]
    rows = step.rows if step.rows is not None else out.rows - step.out_row
    lanes = target.lanes
    planes = _planes(target)
    block = min(target.accumulators, rows)
    kernels = []
    first = step.terms[0]
    sizes = {}
    for nt in range(out.nchunks):
        sizes[nt] = (min(lanes, locs[first.w[0]].rows - nt * lanes) if first.install == "IWT"
                     else 0)
    # IWT tiles are row ranges of one chunk: planes loading together would read one slice twice
    width = len(planes) if first.install != "IWT" else 1
    while True:  # as many planes as the epilogues' ALUs and streams allow
        try:
            for b0 in range(0, rows, block):
                n = min(block, rows - b0)
                for group in _groups(list(range(out.nchunks)), sizes, width):
                    passes = []
                    for term in step.terms:
                        passes += _term_passes(target, term, locs, group, b0, step.mxm)
                    job = K.Job(tuple(passes), n, out, tuple(group), step.out_row + b0,
                                lambda c, e=step.epilogue: e)
                    kernels.append(K.mxm(target, step.note, [job], step.mxm,
                                         planes[:len(group)], locs))
            return kernels
        except CompileError:
            if width == 1:
                raise
            width, kernels = width // 2, []


def _term_passes(target: Target, term: Term, locs: dict[str, Loc], group: list[int], b0: int,
                 mxm: str) -> list[K.Pass]:
    lanes = target.lanes
    x0, w0 = locs[term.x[0]], locs[term.w[0]]
    passes = []
    for kt in range(math.ceil(x0.cols / lanes)):
        if term.install == "IWT":
            k_rows = min(lanes, w0.rows - term.w_row - group[0] * lanes)
        else:
            k_rows = min(lanes, x0.cols - kt * lanes)
        x_conv = _mask(term.x_mask, locs, mxm)
        w_conv = None if term.w_mask is None else _mask(term.w_mask, locs, mxm)
        for i, j in pairs(len(term.x), len(term.w), term.parts):
            wloc = locs[term.w[j]]
            if term.install == "IWT":
                srcs = tuple(K.Src(wloc, kt, term.w_row + nt * lanes) for nt in group)
            else:
                srcs = tuple(K.Src(wloc, nt, term.w_row + kt * lanes) for nt in group)
            passes.append(K.Pass(srcs, k_rows, K.Src(locs[term.x[i]], kt, term.x_row + b0),
                                 x_conv, w_conv, term.install))
    return passes


def transpose_kernels(target: Target, step: TransposeStep, locs: dict[str, Loc],
                      eye: Loc) -> list[Kernel]:
    """out[out_row + k, j] = x[x_row + j, k]: x's rows installed transposed (IWT), identity
    row k streamed through; exact with three bf16 parts of fp32 data."""
    x, out = locs[step.x[0]], locs[step.out]
    lanes = target.lanes
    n_rows = step.x_rows if step.x_rows is not None else x.rows - step.x_row
    planes = _planes(target)
    block = target.accumulators
    sizes = {nt: min(lanes, n_rows - nt * lanes) for nt in range(math.ceil(n_rows / lanes))}
    kernels = []
    for kt in range(x.nchunks):
        cols = x.chunk_cols(kt)
        for k0 in range(0, cols, block):
            n = min(block, cols - k0)
            for group in _groups(list(sizes), sizes, 1):  # row ranges of one chunk (as IWT)
                passes = []
                for part in step.x:
                    srcs = tuple(K.Src(locs[part], kt, step.x_row + nt * lanes)
                                 for nt in group)
                    passes.append(K.Pass(srcs, sizes[group[0]], K.Src(eye, 0, k0),
                                         _mask(None, locs, step.mxm), None, "IWT"))
                job = K.Job(tuple(passes), n, out, tuple(group),
                            step.out_row + kt * lanes + k0, lambda c: K.ACC_LEAF)
                kernels.append(K.mxm(target, step.note, [job], step.mxm, planes[:len(group)],
                                     locs))
    return kernels


def kernels_for(target: Target, step, locs: dict[str, Loc], eye: Loc | None) -> list[Kernel]:
    if isinstance(step, MapStep):
        return [K.elementwise(target, step.note, locs[step.out], step.expr, locs, step.row0,
                              step.rows)]
    if isinstance(step, ReduceStep):
        return [K.colreduce(target, step.note, step.how, step.expr, locs, locs[step.out],
                            step.rows, locs[step.also] if step.also else None, step.row0,
                            step.out_row)]
    if isinstance(step, MmStep):
        return mm_kernels(target, step, locs)
    if isinstance(step, TransposeStep):
        return transpose_kernels(target, step, locs, eye)
    raise TypeError(step)
