"""Chip steps -> kernels: tiling of matmuls and transposes over planes, rows and parts.

An MmStep writes R rows x N columns: N in tiles of `lanes` columns (one output chunk per plane),
R in blocks of at most `mxm_accumulators` rows (one accumulator per row), K in tiles of `lanes`.
Each (row block, group of tiles) is one kernel whose job accumulates every term over every K
tile and every part product.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

from lpu_emu.compiler import expr as E
from lpu_emu.compiler import kernels as K
from lpu_emu.compiler.dataflow import CompileError, Op, Read
from lpu_emu.compiler.kernel import Kernel
from lpu_emu.compiler.lowering import MapStep, MmStep, ReduceStep, Term, TransposeStep
from lpu_emu.compiler.placement import Loc
from lpu_emu.compiler.precision import pairs
from lpu_emu.compiler.schedule import spans
from lpu_emu.compiler.target import Target
from lpu_emu.spec.encoding import stream_parts


def _mask(mask: tuple | None, locs: dict[str, Loc], dtype: str) -> Callable:
    """Multiply an operand on its way by row `row` of a mask tensor (a head's lanes), at the
    operand's chunk: conv(x, note, chunk)."""
    if mask is None:
        return lambda x, note, chunk: x
    loc, row = locs[mask[0]], mask[1]
    return lambda x, note, chunk: Op("Mul", dtype, (x, Read(loc, chunk, row, 0, note)),
                                     note=note)


def _convert(dtype: str | None, then: Callable) -> Callable:
    """An fp32 operand rounded to `dtype` on its way (a Cvt on the VXM), then `then`."""
    if dtype is None:
        return then
    return lambda x, note, chunk: then(Op("Cvt", "fp32", (x,), dtype2=dtype, note=note), note,
                                       chunk)


def _groups(tiles: list[int], sizes: dict[int, int], n: int) -> list[list[int]]:
    """Tiles in groups of at most n, each group of one size (planes load together)."""
    out: list[list[int]] = []
    by_size: dict[int, list[int]] = {}
    for t in tiles:
        by_size.setdefault(sizes[t], []).append(t)
    for same in by_size.values():
        out += [same[i:i + n] for i in range(0, len(same), n)]
    return sorted(out)


def _mm_jobs(target: Target, step: MmStep, locs: dict[str, Loc],
             width: int) -> dict[tuple[int, ...], list[K.Job]]:
    """The step's jobs by group of output chunks (one chunk per plane, at most `width`): one
    job per block of rows (one accumulator per row). Every other job runs its passes in
    reverse, so consecutive jobs share the install at their boundary."""
    out = locs[step.out]
    rows = step.rows if step.rows is not None else out.rows - step.out_row
    lanes = target.lanes
    block = min(target.accumulators, rows)
    first = step.terms[0]
    sizes = {nt: (min(lanes, locs[first.w[0]].rows - first.w_row - nt * lanes)
                  if first.install == "IWT" else 0) for nt in range(out.nchunks)}
    jobs: dict[tuple[int, ...], list[K.Job]] = {}
    # IWT tiles are row ranges of one chunk: planes loading together would read one slice twice
    for group in _groups(list(range(out.nchunks)), sizes, width if first.install != "IWT" else 1):
        for k, b0 in enumerate(range(0, rows, block)):
            passes = []
            for term in step.terms:
                passes += _term_passes(target, term, locs, group, b0, step.mxm)
            if k % 2:
                passes.reverse()
            jobs.setdefault(tuple(group), []).append(
                K.Job(tuple(passes), min(block, rows - b0), out, tuple(group),
                      step.out_row + b0, lambda c, e=step.epilogue: e))
    return jobs


def mm_kernels(target: Target, steps: list, locs: dict[str, Loc]) -> list[Kernel]:
    """Kernels for independent MXM steps (MmStep, TransposeStep) of one MXM dtype: each group
    of output chunks is one kernel running every step's jobs for it (the planes keep a shared
    install between jobs)."""
    planes = target.planes_for(steps[0].mxm)
    width = len(planes)
    while True:  # as many planes as the epilogues' ALUs and streams allow
        try:
            by_group: dict[tuple[int, ...], list[K.Job]] = {}
            for step in steps:
                jobs_of = (_mm_jobs(target, step, locs, width) if isinstance(step, MmStep)
                           else _t_jobs(target, step, locs, width))
                for group, jobs in jobs_of.items():
                    by_group.setdefault(group, []).extend(jobs)
            note = steps[0].note if len(steps) == 1 else _common(steps)
            return [_spread(target, note, jobs, steps[0].mxm, planes, len(group), locs)
                    for group, jobs in by_group.items()]
        except CompileError:
            if width == 1:
                raise
            width //= 2


def _spread(target: Target, note: str, jobs: list[K.Job], mxm: str, planes: list[int],
            width: int, locs: dict[str, Loc]) -> Kernel:
    """An MXM kernel whose jobs (of `width` output chunks) take turns on as many sets of
    `width` planes as there are: the planes a narrow group leaves idle clear, load and install
    for the next job while the first set computes. One set if the streams do not allow more,
    or if the sets' feeds, serialised on the MEM slices of a shared activation, make it no
    faster."""
    best = K.mxm(target, note, jobs, mxm, planes[:width], locs)
    sets = min(len(planes) // width, len(jobs))
    if sets > 1:
        with contextlib.suppress(CompileError):
            more = K.mxm(target, note, jobs, mxm, planes[:width * sets], locs, sets)
            best = more if _length(target, more) < _length(target, best) else best
    return _or_split(target, note, jobs, mxm, planes, width, locs, best)


def _or_split(target: Target, note: str, jobs: list[K.Job], mxm: str, planes: list[int],
              width: int, locs: dict[str, Loc], best: Kernel) -> Kernel:
    """`best`, or the jobs' passes split over two planes (`kernels.mxm_split`) where that is
    shorter: one output chunk, an even number of passes, no transposed installs (IWT tiles of
    one chunk: two planes loading at once would read one slice twice)."""
    if (width != 1 or len(planes) < 2
            or any(len(j.passes) % 2 or any(ps.install != "IW" for ps in j.passes)
                   for j in jobs)):
        return best
    try:
        split = K.mxm_split(target, note, jobs, mxm, planes[:2], locs)
    except CompileError:
        return best
    return split if _length(target, split) < _length(target, best) else best


def _length(target: Target, k: Kernel) -> int:
    k.normalise()
    return k.length(target)


def _common(steps: list) -> str:
    """The note of merged steps: their common prefix (e.g. "attention.node scores")."""
    notes = [s.note for s in steps]
    prefix = notes[0]
    for n in notes[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    return prefix.strip() or notes[0]


def _term_passes(target: Target, term: Term, locs: dict[str, Loc], group: list[int], b0: int,
                 mxm: str) -> list[K.Pass]:
    lanes = target.lanes
    x0, w0 = locs[term.x[0]], locs[term.w[0]]
    passes = []
    for kt in term.k_tiles or range(math.ceil(x0.cols / lanes)):
        if term.install == "IWT":
            k_rows = min(lanes, w0.rows - term.w_row - group[0] * lanes)
        else:
            k_rows = min(lanes, x0.cols - kt * lanes)
        x_conv = _convert(term.x_cvt, _mask(term.x_mask, locs, mxm))
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


def _t_jobs(target: Target, step: TransposeStep, locs: dict[str, Loc],
            width: int) -> dict[tuple[int, ...], list[K.Job]]:
    """out[out_row + k, j] = x[x_row + j, k]: x's rows installed transposed (IWT), identity
    row k streamed through; exact with three bf16 parts of fp32 data. Jobs by output group."""
    x, out, eye = locs[step.x[0]], locs[step.out], locs[step.eye]
    lanes = target.lanes
    n_rows = step.x_rows if step.x_rows is not None else x.rows - step.x_row
    block = target.accumulators
    sizes = {nt: min(lanes, n_rows - nt * lanes) for nt in range(math.ceil(n_rows / lanes))}
    # the sum of exact parts is exact in fp32; a narrower output is one of those parts
    epilogue = (K.ACC_LEAF if out.dtype == "fp32"
                else E.Ex("Cvt", (K.ACC_LEAF,), dtype2=out.dtype))
    jobs: dict[tuple[int, ...], list[K.Job]] = {}
    for group in _groups(list(sizes), sizes, 1):  # row ranges of one chunk (as IWT above)
        for kt in range(x.nchunks):
            cols = x.chunk_cols(kt)
            for k0 in range(0, cols, block):
                passes = tuple(K.Pass(tuple(K.Src(locs[part], kt, step.x_row + nt * lanes)
                                            for nt in group),
                                      sizes[group[0]], K.Src(eye, 0, k0),
                                      _mask(None, locs, step.mxm), None, "IWT")
                               for part in step.x)
                jobs.setdefault(tuple(group), []).append(
                    K.Job(passes, min(block, cols - k0), out, tuple(group),
                          step.out_row + kt * lanes + k0, lambda c: epilogue))
    return jobs


def kernels_for(target: Target, step, locs: dict[str, Loc]) -> list[Kernel]:
    if isinstance(step, MapStep):
        return map_kernels(target, [step], locs)
    if isinstance(step, ReduceStep):
        return reduce_kernels(target, [step], locs)
    if isinstance(step, (MmStep, TransposeStep)):
        return mm_kernels(target, [step], locs)
    raise TypeError(step)


MAP_RUN = 16  # elementwise steps one kernel runs (it holds their tensors' slices meanwhile)


def map_kernels(target: Target, steps: list[MapStep], locs: dict[str, Loc],
                before: K.Held | None = None) -> list[Kernel]:
    """One kernel for a run of independent elementwise steps (a softmax's heads)."""
    segs = [K.Segment(s.expr, locs[s.out], s.row0, s.rows, s.chunk) for s in steps]
    return [K.elementwise(target, _common(steps), segs, locs, before)]


def reduce_kernels(target: Target, steps: list[ReduceStep], locs: dict[str, Loc],
                   before: K.Held | None = None) -> list[Kernel]:
    """One kernel for a run of independent reductions of one kind (a softmax's heads)."""
    parts = [K.Reduction(s.expr, s.rows, locs[s.out], s.row0, s.out_row,
                         locs[s.also] if s.also else None) for s in steps]
    return [K.colreduce(target, _common(steps), steps[0].how, parts, locs, before)]


def _key(step) -> tuple:
    """Steps with one key may share a kernel."""
    if isinstance(step, MapStep):
        return ("map",)
    if isinstance(step, ReduceStep):
        return ("reduce", step.how)
    return ("mxm", type(step).__name__, step.mxm)


def _reads(step) -> set[str]:
    if isinstance(step, MapStep):
        return {lf.name for lf in E.leaves(step.expr)}
    if isinstance(step, ReduceStep):
        return {lf.name for lf in E.leaves(step.expr)}
    if isinstance(step, TransposeStep):
        return {*step.x, step.eye}
    return ({n for t in step.terms for n in (*t.x, *t.w)}
            | {lf.name for lf in E.leaves(step.epilogue)})


def _writes(step) -> set[str]:
    return {step.out} | ({step.also} if isinstance(step, ReduceStep) and step.also else set())


def runs(steps: list) -> list[list]:
    """Steps grouped into runs that share kernels: consecutive steps of one kind where none
    reads what an earlier one of the run writes (the heads of an attention: one install of the
    keys for all heads of a chunk, one pass of the softmax over all heads). Placement keeps the
    tensors of a run on different slices, as it does for one step's."""
    out: list[list] = []
    for step in steps:
        run = out[-1] if out else None
        if run is not None and _key(step) == _key(run[0]) and not (
                _reads(step) & set().union(*(_writes(r) for r in run))) and not (
                _key(step)[0] == "map" and len(run) >= MAP_RUN):
            run.append(step)
        else:
            out.append([step])
    return out


def _held(target: Target, kernel: Kernel) -> K.Held:
    """The VXM ALUs and streams `kernel` uses (its resources in `schedule.spans`)."""
    vxm = {a.index for a in target.vxm_alus}
    alus, streams = set(), {True: set(), False: set()}
    for kind, x in spans(kernel, target):
        if kind == "q" and x in vxm:
            alus.add(x)
        elif kind == "s":
            index, west = stream_parts(x)
            streams[west].add(index)
    return K.Held(frozenset(alus), streams)


def kernels(target: Target, steps: list, locs: dict[str, Loc]) -> list[Kernel]:
    """Kernels for all steps in order, one run (see `runs`) at a time. A VXM kernel takes
    other ALUs and streams than the kernel before it where there are enough, so that it can
    start as soon as its data is there, not when that kernel is done with them."""
    out: list[Kernel] = []
    for run in runs(steps):
        kind = _key(run[0])[0]
        before = _held(target, out[-1]) if out else None
        if kind == "map":
            out.extend(map_kernels(target, run, locs, before))
        elif kind == "reduce":
            out.extend(reduce_kernels(target, run, locs, before))
        else:
            out.extend(mm_kernels(target, run, locs))
    return out
