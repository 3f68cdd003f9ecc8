"""Conversions in the feed: a lowering pass that rounds a matmul's activation on its way into the
MXM instead of in a pass of its own.

In the modes with one part per operand (bf16, fp16, fp8), the lowering writes each fp32
activation a matmul streams as its MXM dtype first (`Lowering.split`: a VXM pass `Cvt(x)` into
a tensor of its own), and the matmul's kernel reads that tensor. The pass is a kernel of its
own, so the matmul waits for the whole of it, and it waits for the whole of x. Here such a
conversion is dropped and every matmul that streamed its result streams x itself through a
`Cvt` on the VXM (`Term.x_cvt`, built as the feed's `x_conv`): the same instruction on the same
values, so the MXM sees bit for bit what it saw, with one VXM kernel and one tensor fewer on the
chain. Whether that makes the program shorter is the scheduler's to say: the pipeline schedules
both lowerings and keeps the shorter (`pipeline._shorter`; docs/design.md section 13 gives the
measured cycles).

Only a conversion that is nothing else is moved: the whole tensor, `Cvt` of an fp32 tensor read
as it is, whose result only matmuls stream as x (not as weights, not read by any other step,
not a graph output, no view of it), into matmuls no wider than their planes. `finite_padding`
runs first and rewrites a conversion whose padding lanes need fixing (a clamp, an SXM
`Distribute`), so those stay passes of their own.
"""

from __future__ import annotations

from dataclasses import replace

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.lowering import Lowered, MapStep, MmStep, step_tensors
from lpu_emu.compiler.target import Target


def feed_conversions(low: Lowered, target: Target) -> Lowered:
    """The lowering with each plain conversion that only feeds narrow matmuls' x moved into
    their feeds (see the module doc)."""
    moved = {s.out: (s.expr.args[0].name, s.expr.dtype2) for s in low.steps
             if _plain_conversion(s, low)}
    for name in _read_otherwise(low) | _wide_feeds(low, target):
        moved.pop(name, None)
    if not moved:
        return low
    steps = []
    for s in low.steps:
        if isinstance(s, MapStep) and s.out in moved:
            continue
        if isinstance(s, MmStep):
            s = replace(s, terms=tuple(_feed(t, moved) for t in s.terms))
        steps.append(s)
    tensors = {n: t for n, t in low.tensors.items() if n not in moved}
    return replace(low, steps=steps, tensors=tensors)


def _plain_conversion(s, low: Lowered) -> bool:
    """A MapStep writing all of its tensor as Cvt(an fp32 tensor, read whole)."""
    if not isinstance(s, MapStep) or (s.row0, s.rows, s.chunk) != (0, None, None):
        return False
    e = s.expr
    if not (isinstance(e, E.Ex) and e.mnemonic == "Cvt" and e.dtype == "fp32"
            and e.imm is None and len(e.args) == 1):
        return False
    x = e.args[0]
    out = low.tensors[s.out]
    return (isinstance(x, E.Leaf) and x == E.Leaf(x.name) and out.role == "temp"
            and out.view is None and out.pinned is None and not out.bcast
            and out.dtype == e.dtype2 and low.tensors[x.name].dtype == "fp32"
            and (low.tensors[x.name].rows, low.tensors[x.name].cols) == (out.rows, out.cols))


def _read_otherwise(low: Lowered) -> set[str]:
    """Tensors some step reads other than as a matmul's x, that more than one step writes, or
    that another tensor is a view of."""
    out: set[str] = set()
    written: dict[str, int] = {}
    for s in low.steps:
        written[s.out] = written.get(s.out, 0) + 1
        out |= set(step_tensors(s, streamed=False)[1:])  # a reduction's `also` counts here
    out |= {n for n, k in written.items() if k > 1}
    out |= {t.view[0] for t in low.tensors.values() if t.view is not None}  # rows of it
    return out | set(low.outputs.values())


def _wide_feeds(low: Lowered, target: Target) -> set[str]:
    """x tensors of matmuls with more output chunks than the planes their dtype runs on: such
    a matmul streams x once per group of output chunks, and an fp32 x takes twice a 16-bit
    part's streams each time (BERT's FFN up-projection ran in more, longer kernels)."""
    out: set[str] = set()
    for s in low.steps:
        if isinstance(s, MmStep):
            chunks = -(-low.tensors[s.out].cols // target.lanes)
            if chunks > len(target.planes_for(s.mxm)):
                out |= {x for t in s.terms for x in t.x}
    return out


def _feed(t, moved: dict[str, tuple[str, str]]):
    """The term streaming x itself through the conversion, where its x is a moved tensor."""
    if len(t.x) != 1 or t.x[0] not in moved or t.x_cvt is not None:
        return t
    src, dtype = moved[t.x[0]]
    return replace(t, x=(src,), x_cvt=dtype)
