"""Padding lanes: a lowering pass that keeps them finite wherever they meet the MXM.

A tensor of C columns fills ceil(C / lanes) vectors; the lanes of its last chunk past C are
padding. The VXM computes every lane, so a padding lane holds whatever the expression gives for
the padding of its leaves, and the MXM multiplies every lane of a vector by a weight row (zero
past K; identity zeros in a transpose). 0 * x is 0 only for finite x, so one non-finite padding
lane makes every output of the product NaN. The invariant: **the padding lanes of every MXM
operand are finite.**

Padding is tracked per tensor as a class: `Z` (zero: inputs and constants, as the host writes
them), `P` (finite and positive), `U` (finite) and `X` (maybe inf or NaN). Under finite operands
the only VXM ops that give a non-finite padding lane are:

- `Rsqrt` of a padding not known positive: rsqrt(0) is inf, so 1/x, x/y (x * rsqrt(y*y)^2) and
  sqrt(x) (x * rsqrt(x)) of a zero padding are 0 * inf = NaN;
- a conversion to a float narrower than fp32 (fp16, fp8e4m3: largest finite value below fp32's
  top binade; bf16 has fp32's range) of a padding not known zero: a row's mean^2 (a
  LayerNorm's squared deviation) is inf in fp16 from |mean| >= 256.

Everything else is assumed not to overflow fp32 in a padding lane where the real lanes do not:
padding values are functions of the row's own values (a mean, a max, a scale). A sum of
exp(x - max x) down rows is at least 1 in every lane (its largest term is exp(0)), so the
softmax's reciprocal of it stays finite.

The fixes, applied to the conversion pass that writes an MXM operand (the VXM's last `Cvt`):

- into a narrower float, of a padding not known zero: the value is clamped to the dtype's
  finite range first (`MaxI`, `MinI`: two ALU ops, four cycles of latency), as fp8 recipes
  saturate; a real lane that would have overflowed to inf saturates too. In fp16 and fp8 mode
  the built-in layers pay it on LayerNorm's variance (fp16) and the softmax probabilities.
- a padding still `X` (an Rsqrt's) is zeroed in the last chunk by an SXM `Distribute` on the
  converted value (lanes past C map to -1). It costs one SXM issue per vector of that chunk and
  the trip from the VXM out to the hemisphere's SXM and back to the written slice (about 20
  cycles of latency per conversion pass: 790 -> 828 cycles for sqrt(x) @ W in fp32, two
  parts); only graphs that feed a 1/x, x/y or sqrt(x) to the MXM pay it.
"""

from __future__ import annotations

import math
from dataclasses import replace

from lpu_emu.compiler import expr as E
from lpu_emu.compiler.lowering import Lowered, MapStep, MmStep, ReduceStep, TransposeStep
from lpu_emu.compiler.target import Target
from lpu_emu.numerics import max_finite

Z, P, U, X = "Z", "P", "U", "X"  # zero, finite positive, finite, maybe non-finite


def join(a: str, b: str) -> str:
    """The class of a lane that holds a or b."""
    if a == b:
        return a
    return X if X in (a, b) else U


def narrower(dtype: str, target: Target) -> bool:
    """True for a float dtype whose largest finite value is below fp32's top binade."""
    if target.isa.dtypes[dtype].kind != "float":
        return False
    return max_finite(dtype) < 2.0 ** math.floor(math.log2(max_finite("fp32")))


def classify(e, pad: dict[str, str], target: Target, zeroing: frozenset[int] = frozenset()
             ) -> str:
    """The padding class of Expr e, given its leaves' tensors' classes (a column leaf is a
    row's value stored across all lanes: finite) and the lane maps that zero the padding."""
    if isinstance(e, E.Leaf):
        return U if e.mode == "col" else pad.get(e.name, U)
    if isinstance(e, E.Imm):
        return _const(e.value)
    if e.mnemonic == "Distribute" and e.imm in zeroing:
        return Z
    args = [classify(a, pad, target, zeroing) for a in e.args]
    if e.imm is not None and e.mnemonic in ("AddI", "MulI", "MaxI", "MinI"):
        args.append(_const(e.imm))
    if X in args:
        return X
    return _op(e, args, target)


def _const(v: float) -> str:
    return Z if v == 0 else P if v > 0 else U


def _op(e, args: list[str], target: Target) -> str:
    m = e.mnemonic
    if m == "Rsqrt":
        return P if args[0] == P else X
    if m == "Cvt":
        to = e.dtype2 or e.dtype
        if args[0] != Z and narrower(to, target) and not _clamped(e.args[0], to):
            return X
        return args[0]
    if m == "Exp":
        return P if args[0] in (Z, P) else U
    if m in ("Mul", "MulI"):
        if Z in args:
            return Z
        return P if all(a == P for a in args) else U
    if m in ("Add", "AddI"):
        if all(a == Z for a in args):
            return Z
        return P if all(a in (Z, P) for a in args) else U
    if m in ("Neg", "Tanh", "Erf", "Relu", "Abs", "Sub", "Max", "Min", "MaxI", "MinI", "Mov",
             "Distribute"):
        return Z if all(a == Z for a in args) else U
    return U


def clamp(e, dtype: str):
    """e limited to the finite range of dtype (before a conversion to it)."""
    m = max_finite(dtype)
    return E.Ex("MinI", (E.Ex("MaxI", (e,), -m),), m)


def _clamped(e, dtype: str) -> bool:
    m = max_finite(dtype)
    return (isinstance(e, E.Ex) and e.mnemonic == "MinI" and e.imm is not None and e.imm <= m
            and isinstance(e.args[0], E.Ex) and e.args[0].mnemonic == "MaxI"
            and e.args[0].imm is not None and e.args[0].imm >= -m)


def _mm_class(step: MmStep, pad: dict[str, str], out_bcast: bool, target: Target) -> str:
    """An MXM result's padding lanes: zero when every stationary operand is installed as is
    with zero padding columns (W's columns past N meet every x), else finite."""
    if out_bcast:
        return U  # every lane is the row's value
    acc = Z if all(t.install == "IW" and all(pad.get(w, U) == Z for w in t.w)
                   for t in step.terms) else U
    return classify(step.epilogue, {**pad, "@acc": acc}, target)


def _sum_of_exp(step: ReduceStep, maxima: dict[str, str]) -> bool:
    """A sum of exp(x - m) down rows, m the max of x down the same rows: at least 1."""
    e = step.expr
    if step.how != "sum" or not isinstance(e, E.Ex) or e.mnemonic != "Exp":
        return False
    d = e.args[0]
    return (isinstance(d, E.Ex) and d.mnemonic == "Sub" and isinstance(d.args[0], E.Leaf)
            and isinstance(d.args[1], E.Leaf) and d.args[1].mode == "row"
            and maxima.get(d.args[1].name) == d.args[0].name)


def mxm_operands(steps: list) -> set[str]:
    """Tensors an MXM step streams or installs (their parts)."""
    out: set[str] = set()
    for s in steps:
        if isinstance(s, MmStep):
            for t in s.terms:
                out.update(t.x + t.w)
        elif isinstance(s, TransposeStep):
            out.update(s.x)
    return out


def finite_padding(low: Lowered, target: Target) -> Lowered:
    """The lowering with every MXM operand's conversion pass fixed where its padding lanes
    could be non-finite (see the module doc)."""
    return replace(low, steps=_walk(low, target, fix=True)[0])


def padding_classes(low: Lowered, target: Target) -> dict[str, str]:
    """Each tensor's padding class (Z, P, U or X), the steps taken as they are."""
    return _walk(low, target, fix=False)[1]


def _walk(low: Lowered, target: Target, fix: bool) -> tuple[list, dict[str, str]]:
    """The steps in order, each tensor's padding class from the steps that write it (and the
    conversion passes into the MXM fixed, if `fix`)."""
    feeds = mxm_operands(low.steps) if fix else set()
    pad: dict[str, str] = {name: Z for name, t in low.tensors.items()
                           if t.role in ("input", "const")}
    maxima: dict[str, str] = {}
    steps: list = []
    for s in low.steps:
        if isinstance(s, MapStep) and s.out in feeds:
            fixed = _fix(s, low, pad, target)
            steps += fixed
            for f in fixed:
                if _writes_padding(f, low, target):
                    pad[s.out] = _merge(pad, s.out, _map_class(f, low, pad, target))
            continue
        steps.append(s)
        if isinstance(s, MapStep) and _writes_padding(s, low, target):
            pad[s.out] = _merge(pad, s.out, _map_class(s, low, pad, target))
        elif isinstance(s, MmStep):
            pad[s.out] = _merge(pad, s.out, _mm_class(s, pad, low.tensors[s.out].bcast, target))
        elif isinstance(s, TransposeStep):
            pad[s.out] = _merge(pad, s.out, U)
        elif isinstance(s, ReduceStep):
            if s.how == "max" and isinstance(s.expr, E.Leaf):
                maxima[s.out] = s.expr.name
            c = P if _sum_of_exp(s, maxima) else classify(s.expr, pad, target)
            pad[s.out] = _merge(pad, s.out, c)
            if s.also:
                pad[s.also] = _merge(pad, s.also, classify(s.expr, pad, target))
    return steps, pad


def _map_class(s: MapStep, low: Lowered, pad: dict[str, str], target: Target) -> str:
    """The padding class a MapStep writes (lane maps that send its padding lanes to -1 give
    zero)."""
    width = _last_width(low.tensors[s.out].cols, target.lanes)
    zeroing = frozenset(i for i, m in enumerate(low.lanemaps) if all(v == -1 for v in m[width:]))
    return classify(s.expr, pad, target, zeroing)


def _last_width(cols: int, lanes: int) -> int:
    """The real lanes of a tensor's last chunk."""
    return cols - (math.ceil(cols / lanes) - 1) * lanes


def _writes_padding(s: MapStep, low: Lowered, target: Target) -> bool:
    """False for a pass over one chunk that is not the last (it has no padding lanes)."""
    return s.chunk is None or s.chunk == math.ceil(low.tensors[s.out].cols / target.lanes) - 1


def _merge(pad: dict[str, str], name: str, c: str) -> str:
    """A tensor written by several steps (row ranges, chunks) holds each one's padding."""
    return join(pad[name], c) if name in pad else c


def _fix(s: MapStep, low: Lowered, pad: dict[str, str], target: Target) -> list[MapStep]:
    """The conversion pass s with its padding lanes made finite: clamped, or zeroed."""
    spec = low.tensors[s.out]
    width = _last_width(spec.cols, target.lanes)
    if width == target.lanes or spec.bcast:
        return [s]  # no padding lanes
    e = s.expr
    if isinstance(e, E.Ex) and e.mnemonic == "Cvt" and classify(e, pad, target) == X:
        to = e.dtype2 or e.dtype
        if narrower(to, target):  # past the dtype's range (and, if X, zeroed below)
            s = replace(s, expr=replace(e, args=(clamp(e.args[0], to),)))
    if classify(s.expr, pad, target) != X:
        return [s]
    return _zero_last_chunk(s, low, width, target)


def _zero_last_chunk(s: MapStep, low: Lowered, width: int, target: Target) -> list[MapStep]:
    """s with its last chunk's lanes past `width` zeroed by an SXM Distribute on the way to
    SRAM (the earlier chunks have no padding and stay as they are)."""
    lanes = target.lanes
    last = math.ceil(low.tensors[s.out].cols / lanes) - 1
    if s.chunk is not None and s.chunk != last:
        return [s]
    keep = tuple(j if j < width else -1 for j in range(lanes))
    if keep not in low.lanemaps:
        low.lanemaps.append(keep)
    dtype = s.expr.dtype2 if isinstance(s.expr, E.Ex) and s.expr.mnemonic == "Cvt" else "fp32"
    zeroed = E.Ex("Distribute", (s.expr,), imm=low.lanemaps.index(keep),
                  dtype=dtype or "fp32")
    out = [replace(s, chunk=c) for c in range(last)] if s.chunk is None else []
    return out + [replace(s, expr=zeroed, chunk=last)]
