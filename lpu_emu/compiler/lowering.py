"""Lowering: a Graph -> chip steps over 2-D tensors, every op on the chip.

A graph value of shape (..., C) is a chip tensor of prod(...) rows and C columns. Steps:

- `MapStep`: out = an elementwise Expr (a VXM ALU chain). Chains of elementwise graph nodes are
  fused into one Expr while a value has a single consumer and the chain fits the ALUs.
- `MmStep`: out = epilogue(sum of terms x @ W) on the MXM. A term's stationary operand is a
  constant (weights, split on the host into parts of the MXM dtype) or an activation (rounded or
  split on its way to the plane; IWT installs it transposed). Elementwise consumers of a matmul
  fuse into its epilogue.
- `TransposeStep`: out = x^T: x installed transposed (IWT), identity rows streamed through.
- `ReduceStep`: a max or sum over the rows of an Expr (a recurrence on one ALU).

Reductions over a row's columns (LayerNorm's mean and variance) are matmuls against a column of
ones, which also broadcasts the result across the lanes; softmax reduces over rows after a
transpose; division is x * rsqrt(y)^2; sigmoid is (1 + tanh(x/2)) / 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import pairwise

import numpy as np

from lpu_emu.compiler import attention
from lpu_emu.compiler import expr as E
from lpu_emu.compiler.graph import Graph, Node
from lpu_emu.compiler.precision import TRANSPOSE_PARTS, Mode
from lpu_emu.compiler.target import Target
from lpu_emu.errors import UsageError
from lpu_emu.numerics import from_storage, max_finite, to_storage

ACC = E.Leaf("@acc")
MAX_ALUS = 10  # ALU ops one fused Expr may take (the rest of the 16 are for Mov delays)
MAX_LARGE = 3  # transcendental ops per fused Expr (4 large ALUs)
MAX_EPILOGUE = 3  # ALU ops fused after a matmul (one chain per plane, four planes)
# tensors an attention's scores are dealt over by head (`softmax_ways`): the softmax's passes
# over one run beside those over the other (each tensor's slices read one row a cycle)
SOFTMAX_WAYS = 2
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Exp", "Tanh", "Erf", "Relu", "Sigmoid", "Neg",
               "Sqrt", "Reciprocal", "Gelu", "Abs"}


@dataclass
class TensorSpec:
    name: str
    rows: int
    cols: int
    dtype: str = "fp32"
    data: np.ndarray | None = None  # constants: values (the tensor's dtype, as float32)
    role: str = "temp"  # "input" | "output" | "const" | "temp"
    bcast: bool = False  # one value per row, repeated across the lanes
    pinned: object = None  # a Loc decided elsewhere (a KV cache that outlives this program)
    view: tuple | None = None  # (tensor, first row): rows of another tensor, no copy
    stripes: int = 1  # stored as this many tensors, row r in stripe r mod stripes (MXM weights,
    # so that one LW takes a row from each: see Target.lw_rows)


@dataclass(frozen=True)
class Term:
    """x @ W accumulated into an MmStep. Both operands are given as parts in the MXM dtype
    (x = x[0] + x[1] + ..., likewise W); the part products (i, j) with i + j < parts are
    accumulated. x rows stream through the planes, W is stationary (IWT: installed
    transposed). A mask (tensor, row), if given, multiplies an operand on its way (a head);
    `x_cvt`, if given, says x is fp32, rounded to that dtype on its way (conversions.py)."""

    x: tuple[str, ...]
    w: tuple[str, ...]
    install: str = "IW"
    parts: int = 1
    x_mask: tuple | None = None
    w_mask: tuple | None = None
    x_row: int = 0  # first row of x this term streams
    w_row: int = 0  # first row of W's storage (IW: K offset; IWT: the N offset)
    k_tiles: tuple[int, ...] | None = None  # only these K tiles (the others are masked off)
    x_cvt: str | None = None  # x is fp32, converted to this dtype in the feed


@dataclass(frozen=True)
class MmStep:
    out: str
    terms: tuple[Term, ...]
    epilogue: object
    mxm: str
    note: str
    out_row: int = 0
    rows: int | None = None  # rows of out written (default: all from out_row)


@dataclass(frozen=True)
class MapStep:
    out: str
    expr: object
    note: str
    row0: int = 0
    rows: int | None = None
    chunk: int | None = None  # only this column chunk of out


@dataclass(frozen=True)
class TransposeStep:
    """out = x^T, x given as parts in the MXM dtype (summed by the accumulation)."""

    out: str
    x: tuple[str, ...]
    mxm: str
    note: str
    eye: str = ""  # the identity rows streamed through (a constant of the MXM dtype)
    x_row: int = 0  # rows x_row .. x_row + n of x
    x_rows: int | None = None
    out_row: int = 0


@dataclass(frozen=True)
class ReduceStep:
    out: str
    how: str  # "max" | "sum"
    expr: object
    rows: int
    note: str
    also: str | None = None
    row0: int = 0
    out_row: int = 0


Step = MapStep | MmStep | TransposeStep | ReduceStep


def step_tensors(step: Step, streamed: bool = True) -> list[str]:
    """The chip tensors a step touches, its output first, in a fixed order (placement must not
    depend on hash order); `streamed=False` leaves out what its matmul terms stream as x."""
    names = [step.out]
    if isinstance(step, MapStep):
        names += [lf.name for lf in E.leaves(step.expr)]
    elif isinstance(step, ReduceStep):
        names += [lf.name for lf in E.leaves(step.expr)] + ([step.also] if step.also else [])
    elif isinstance(step, TransposeStep):
        names += [*step.x, step.eye]
    else:
        names += [lf.name for lf in E.leaves(step.epilogue) if lf.name != "@acc"]
        for t in step.terms:
            names += ([*t.x] if streamed else []) + [*t.w]
            names += [m[0] for m in (t.x_mask, t.w_mask) if m]
    return list(dict.fromkeys(names))


@dataclass
class Lowered:
    tensors: dict[str, TensorSpec]
    steps: list[Step]
    lanemaps: list[tuple[int, ...]]  # SXM lane maps, by index
    inputs: dict[str, str]  # graph input -> chip tensor
    outputs: dict[str, str]  # graph output -> chip tensor
    shapes: dict[str, tuple[int, ...]]  # graph input/output shapes


def dims(shape: tuple[int, ...]) -> tuple[int, int]:
    if not shape:
        return 1, 1
    return int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1, int(shape[-1])


@dataclass
class _Pending:
    """A matmul not emitted yet: its epilogue may still grow with fused consumers."""

    step: MmStep


@dataclass
class Lowering:
    graph: Graph
    mode: Mode
    target: Target
    pinned: dict = field(default_factory=dict)
    tensors: dict[str, TensorSpec] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    exprs: dict[str, object] = field(default_factory=dict)  # graph value -> Expr or _Pending
    uses: dict[str, int] = field(default_factory=dict)
    count: int = 0
    _splits: dict = field(default_factory=dict)
    lanemaps: list = field(default_factory=list)
    _consts: dict = field(default_factory=dict)

    def lanemap(self, values: list[int]) -> int:
        """The index of an SXM lane map (z[l] = x[map[l]], -1: zero)."""
        t = tuple(values)
        if t not in self.lanemaps:
            if len(self.lanemaps) == self.target.lane_maps:
                raise UsageError(f"the program needs more than the {self.target.lane_maps} "
                                 "lane maps an SXM instruction can name",
                                 hint="fewer distinct lane moves (slices, concats and "
                                      "reshapes of the last axis)")
            self.lanemaps.append(t)
        return self.lanemaps.index(t)

    # ---- tensors ----
    def fresh(self, base: str) -> str:
        """A new chip tensor name (valid in assembly: letters, digits, _ and inner dots)."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "t"
        if not (base[0].isalpha() or base[0] == "_"):
            base = "t" + base
        while True:
            self.count += 1
            name = f"{base}_{self.count}"
            if name not in self.tensors:
                return name

    def tensor(self, name: str, rows: int, cols: int, **kw) -> str:
        if name in self.tensors:
            raise UsageError(f"two chip tensors named {name!r}")
        self.tensors[name] = TensorSpec(name, rows, cols, **kw)
        return name

    def const(self, base: str, data: np.ndarray, dtype: str = "fp32", stripes: int = 1) -> str:
        data = np.asarray(data, dtype=np.float32)
        if data.ndim == 1:
            data = data[None, :]
        rows, cols = dims(data.shape)
        return self.tensor(self.fresh(base), rows, cols, dtype=dtype,
                           data=data.reshape(rows, cols), role="const", stripes=stripes)

    def dims(self, value: str) -> tuple[int, int]:
        return dims(self.graph.value(value).shape)

    # ---- values as expressions ----
    def leaf(self, value: str) -> E.Leaf:
        """The value materialised as a chip tensor."""
        e = self.exprs[value]
        if isinstance(e, _LazyConst):
            return self.const_leaf(value)
        if isinstance(e, E.Leaf) and e.mode == "full" and e.row == 0:
            return e
        rows, cols = self.dims(value)
        if isinstance(e, _Pending):
            self.emit_mm(e.step)
            leaf = E.Leaf(e.step.out)
        else:
            out = self.tensor(self.fresh(value), rows, cols)
            self.steps.append(MapStep(out, self.staged(e, rows, cols), f"{value} = ..."))
            leaf = E.Leaf(out)
        self.exprs[value] = leaf
        return leaf

    def leaf_expr(self, e, rows: int, cols: int) -> str:
        """The chip tensor holding Expr e over (rows, cols): e itself if it is one, read
        whole."""
        if isinstance(e, E.Leaf) and e.mode == "full" and e.row == 0 and e.chunk is None:
            return e.name
        out = self.tensor(self.fresh("v"), rows, cols)
        self.steps.append(MapStep(out, self.staged(e if isinstance(e, E.Ex) else
                                                   E.Ex("Mov", (e,)), rows, cols), "v = ..."))
        return out

    def depth(self, e) -> int:
        """Cycles from the expression's reads to its result (the longest path)."""
        if not isinstance(e, E.Ex):
            return 0
        return self.target.latency(e.mnemonic) + max((self.depth(a) for a in e.args),
                                                      default=0)

    def staged(self, e, rows: int, cols: int):
        """e, with every subexpression that would make a value wait materialised first.

        Nothing on the chip waits: where the two sides of a binary op read the same tensor at
        different depths, the shallow side's read would have to wait in Mov hops (an ALU and a
        stream group a cycle). Instead the deeper side becomes its own VXM pass, written to
        SRAM, and both sides read SRAM (reads are issued exactly when they are needed)."""
        if not isinstance(e, E.Ex):
            return e
        args = [self.staged(a, rows, cols) for a in e.args]
        if len(args) == 2:
            names = [{lf.name for lf in E.leaves(a)} for a in args]
            d = [self.depth(a) for a in args]
            if names[0] & names[1] and d[0] != d[1]:
                deep = 0 if d[0] > d[1] else 1
                out = self.tensor(self.fresh("stage"), rows, cols)
                self.steps.append(MapStep(out, args[deep], f"{e.mnemonic} operand"))
                args[deep] = E.Leaf(out)
            elif self._clash(args[0], args[1]):
                # two reads of one storage at different rows (views: a slice's halves) would
                # read its slices twice a cycle: one side is copied first
                out = self.tensor(self.fresh("stage"), rows, cols)
                side = args[1] if isinstance(args[1], E.Ex) else E.Ex("Mov", (args[1],))
                self.steps.append(MapStep(out, side, f"{e.mnemonic} operand"))
                args[1] = E.Leaf(out)
        return E.Ex(e.mnemonic, tuple(args), e.imm, e.dtype, e.dtype2)

    def _clash(self, a, b) -> bool:
        """a and b read one storage through different tensors (views of it) in one chunk."""
        def root(name: str) -> str:
            while name in self.tensors and self.tensors[name].view is not None:
                name = self.tensors[name].view[0]
            return name
        return any(x.name != y.name and x.chunk == y.chunk and root(x.name) == root(y.name)
                   for x in E.leaves(a) for y in E.leaves(b))

    def operand(self, value: str, shape: tuple[int, int], full: tuple[int, ...] | None = None):
        """value as an Expr over the grid `shape` (rows, cols): full, a broadcast row or
        column, or an immediate; other broadcasts to the graph shape `full` repeat rows on the
        MXM (reductions.expand_rows)."""
        rows, cols = self.dims(value)
        if value in self.graph.constants and rows * cols == 1:
            return E.Imm(float(np.asarray(self.graph.constants[value]).reshape(-1)[0]))
        if (rows, cols) == shape:
            e = self.exprs[value]
            if isinstance(e, _LazyConst):
                return self.const_leaf(value)
            return self.leaf(value) if isinstance(e, _Pending) else e
        leaf = self.leaf(value)
        if rows == 1 and cols == shape[1]:
            return E.Leaf(leaf.name, "row")
        if cols == 1 and rows == shape[0]:
            return E.Leaf(self.broadcast(leaf.name, rows), "col")
        if full is not None and _broadcasts(self.graph.value(value).shape, full):
            from lpu_emu.compiler.reductions import expand_rows
            return expand_rows(self, value, full)
        raise UsageError(f"{value}: shape {self.graph.value(value).shape} does not broadcast "
                         f"to {shape} on the chip (a row, a column or the same shape)")

    def broadcast(self, name: str, rows: int) -> str:
        """A column tensor (rows x 1) repeated across the lanes: x @ ones(1, lanes)."""
        spec = self.tensors[name]
        if spec.bcast:
            return name
        ones = self.const("ones", np.ones((1, self.target.lanes)), self.mode.exact)
        out = self.tensor(self.fresh(f"{name}.bcast"), rows, self.target.lanes, bcast=True)
        xs = self.split(E.Leaf(name), rows, 1, TRANSPOSE_PARTS, self.mode.exact)
        self.steps.append(MmStep(out, (Term(xs, (ones,), parts=TRANSPOSE_PARTS),), ACC,
                                 self.mode.exact, f"broadcast {name}"))
        return out

    def split(self, e, rows: int, cols: int, n: int, dtype: str, note: str = "") -> tuple:
        """Tensors p_0..p_{n-1} of `dtype` with e = p_0 + p_1 + ... (to n * 8 bits for bf16):
        p_i = dtype(e - fp32(p_0) - ... - fp32(p_{i-1})), each a VXM pass reading the parts
        before it (so no value has to wait for another)."""
        key = (repr(e), n, dtype)
        if key in self._splits:
            return self._splits[key]
        base = e.name if isinstance(e, E.Leaf) else "v"
        parts: list[str] = []
        for i in range(n):
            r = e
            for p in parts:
                r = E.sub(r, E.Ex("Cvt", (E.Leaf(p),), dtype=dtype, dtype2="fp32"))
            out = self.tensor(self.fresh(f"{base}.{dtype}{i}"), rows, cols, dtype=dtype)
            self.steps.append(MapStep(out, self.staged(E.Ex("Cvt", (r,), dtype2=dtype), rows,
                                                       cols),
                                      note or f"{base} to {dtype} part {i}"))
            parts.append(out)
        self._splits[key] = tuple(parts)
        return self._splits[key]

    def quantize(self, x: str, rows: int, cols: int, scale: float) -> str:
        """int8 x / scale, rounded half to even and saturated (a VXM pass)."""
        out = self.tensor(self.fresh(f"{x}.int8"), rows, cols, dtype="int8")
        self.steps.append(MapStep(out, E.Ex("Cvt", (E.mul(E.Leaf(x), E.Imm(1.0 / scale)),),
                                            dtype2="int8"), f"{x} to int8"))
        return out

    # ---- the pass over the graph ----
    def run(self) -> Lowered:
        g = self.graph
        for n in g.nodes:
            for i in n.inputs:
                self.uses[i] = self.uses.get(i, 0) + 1
        for o in g.outputs:
            self.uses[o] = self.uses.get(o, 0) + 1
        inputs = {}
        for name in g.inputs:
            rows, cols = self.dims(name)
            pin = self.pinned.get(name)
            self.tensor(name, rows, cols, role="input", pinned=pin)
            self.exprs[name] = E.Leaf(name)
            inputs[name] = name
        for name in g.constants:
            self.exprs[name] = _LazyConst(name)
        for node in g.nodes:
            handler = getattr(self, f"op_{node.op}", None)
            if handler is None:
                raise UsageError(f"node {node.name!r}: op {node.op} is not lowered to the chip",
                                 hint="ops: " + ", ".join(sorted(
                                     k[3:] for k in dir(self) if k.startswith("op_"))))
            handler(node)
            for o in node.outputs:
                if o in self.exprs and self._must_materialise(o):
                    self.leaf(o)
        outputs = {}
        for o in g.outputs:
            leaf = self.leaf(o)
            spec = self.tensors[leaf.name]
            if spec.role in ("input", "const") or o in outputs or spec.cols != self.dims(o)[1]:
                # (a reduction's column is stored repeated across the lanes: copied to one)
                copy = self.tensor(self.fresh(o), spec.rows, self.dims(o)[1])
                self.steps.append(MapStep(copy, E.Ex("Mov", (leaf,)), f"{o} = copy"))
                leaf = E.Leaf(copy)
            self.tensors[leaf.name].role = "output"
            if self.tensors[leaf.name].pinned is None and o in self.pinned:
                self.tensors[leaf.name].pinned = self.pinned[o]
            outputs[o] = leaf.name
        shapes = {v: g.value(v).shape for v in list(g.inputs) + list(g.outputs)}
        return Lowered(self.tensors, self.steps, self.lanemaps, inputs, outputs, shapes)

    def _must_materialise(self, value: str) -> bool:
        e = self.exprs[value]
        if isinstance(e, E.Leaf):
            return False
        if self.uses.get(value, 0) != 1 or value in self.graph.outputs:
            return True
        if isinstance(e, _Pending):
            ops, large = E.size(e.step.epilogue)
        else:
            ops, large = E.size(e)
        return ops > MAX_ALUS or large > MAX_LARGE

    # ---- constants ----
    def value_const(self, value: str) -> np.ndarray | None:
        return self.graph.constants.get(value)

    def const_leaf(self, value: str) -> E.Leaf:
        e = self.exprs[value]
        if isinstance(e, _LazyConst):
            data = np.asarray(self.graph.constants[value], dtype=np.float32)
            rows, cols = self.dims(value)
            name = self.tensor(self.fresh(value), rows, cols, data=data.reshape(rows, cols),
                               role="const")
            self.exprs[value] = E.Leaf(name)
        return self.exprs[value]

    # ---- elementwise ----
    def _args(self, node: Node):
        shape = self.dims(node.outputs[0])
        full = self.graph.value(node.outputs[0]).shape
        out = []
        for i in node.inputs:
            if isinstance(self.exprs.get(i), _LazyConst) and self.dims(i) != (1, 1):
                self.const_leaf(i)
            if isinstance(self.exprs.get(i), _Pending) and self.uses.get(i) == 1 and \
                    self.dims(i) == shape:
                out.append(self.exprs[i])
            else:
                out.append(self.operand(i, shape, full))
        return out

    def _set(self, node: Node, build) -> None:
        """node's output = build(args), fused into a single-consumer matmul's epilogue."""
        args = self._args(node)
        pend = [a for a in args if isinstance(a, _Pending)]
        if pend:
            p = pend[0]
            args = [ACC if a is p else (self.leaf_of(a) if isinstance(a, _Pending) else a)
                    for a in args]
            e = E.substitute(build(*args), "@acc", p.step.epilogue)
            ops, large = E.size(e)
            if not E.shared(e) and ops <= MAX_EPILOGUE:  # fits beside four planes' feeds
                self.exprs[node.outputs[0]] = _Pending(replace(p.step, epilogue=e))
                return
            args = [self.leaf_of(p) if a is ACC else a for a in args]
            self.exprs[p.step.out] = E.Leaf(p.step.out)
        self.exprs[node.outputs[0]] = self._fuse(node, args, build)

    def _fuse(self, node: Node, args: list, build):
        """build(args), its operands' fused chains materialised first, the longest first,
        while the whole would not fit one VXM pass: the limits are checked before the node
        joins a chain, so no fused Expr ever exceeds them."""
        e = build(*args)
        while not self.fits(e):
            fused = [(E.size(a)[0], i) for i, a in enumerate(args) if isinstance(a, E.Ex)]
            if not fused:
                break  # the op alone is too big: _must_materialise stages it
            value = node.inputs[max(fused)[1]]
            leaf = self.leaf(value)
            args = [leaf if v == value and isinstance(a, E.Ex) else a
                    for v, a in zip(node.inputs, args, strict=True)]
            e = build(*args)
        return e

    def fits(self, e) -> bool:
        """True if Expr e fits one VXM pass: MAX_ALUS ops, MAX_LARGE transcendentals, and
        leaves whose reads take at most half the streams of one direction. Every read gets a
        stream group of its own, flowing toward the VXM from its tensor's hemisphere, so the
        reads of one pass may all flow one way; half a direction for them leaves the rest of
        both directions for the ALU results and their Mov waits."""
        ops, large = E.size(e)
        reads = sum(self.target.width(self.tensors[lf.name].dtype) for lf in E.leaves(e))
        return ops <= MAX_ALUS and large <= MAX_LARGE and reads <= self.target.streams // 2

    def leaf_of(self, p: _Pending) -> E.Leaf:
        self.emit_mm(p.step)
        return E.Leaf(p.step.out)

    def emit_mm(self, step: MmStep) -> None:
        """Append a matmul whose epilogue is final. On an output of several chunks, tensors
        added to the accumulator (a bias row and a residual) are summed first by a VXM pass of
        their own, the epilogue adding that one sum: the epilogue's streams are what a wide
        kernel runs short of (every plane's result with its reads and sums at once; with
        both, BERT's FFN down-projection fell back to one plane at a time), and the pass
        depends only on those tensors, so it is placed right after they are written and runs
        beside the work before the matmul."""
        terms = _add_terms(step.epilogue)
        acc = [t for t in terms if any(lf.name == "@acc" for lf in E.leaves(t))]
        rest = [t for t in terms if t not in acc]
        out = self.tensors[step.out]
        if (len(acc) != 1 or sum(len(E.leaves(t)) for t in rest) < 2 or step.out_row
                or step.rows is not None or out.cols <= self.target.lanes):
            self.steps.append(step)
            return
        total = rest[0]
        for t in rest[1:]:
            total = E.add(total, t)
        tmp = self.tensor(self.fresh(f"{step.out}.addend"), out.rows, out.cols)
        add = MapStep(tmp, self.staged(total, out.rows, out.cols), f"{step.note} addend")
        # as early as its tensors are written, so that the schedule can run it beside them
        names = {lf.name for lf in E.leaves(total)}
        names |= {self.tensors[x].view[0] for x in names if self.tensors[x].view}
        at = max([i + 1 for i, st in enumerate(self.steps) if st.out in names], default=0)
        self.steps.insert(at, add)
        self.steps.append(replace(step, epilogue=E.add(acc[0], E.Leaf(tmp))))

    def op_Add(self, n: Node) -> None:
        self._set(n, E.add)

    def op_Sub(self, n: Node) -> None:
        self._set(n, E.sub)

    def op_Mul(self, n: Node) -> None:
        self._set(n, E.mul)

    def _once(self, value: str) -> None:
        """Materialise a value that an op's expansion reads several times (1/b reads b four
        times, sqrt(b) twice): b's ops would run that often, and a chain of transcendentals
        then needs more large ALUs than the VXM has."""
        if isinstance(self.exprs.get(value), E.Ex):
            self.leaf(value)

    def op_Div(self, n: Node) -> None:
        self._once(n.inputs[1])

        def div(a, b):
            if isinstance(b, E.Imm):
                return E.mul(a, E.Imm(1.0 / b.value))
            return E.mul(a, reciprocal(b))
        self._set(n, div)

    def op_Exp(self, n: Node) -> None:
        self._set(n, lambda a: E.unary("Exp", a))

    def op_Tanh(self, n: Node) -> None:
        self._set(n, lambda a: E.unary("Tanh", a))

    def op_Erf(self, n: Node) -> None:
        self._set(n, lambda a: E.unary("Erf", a))

    def op_Relu(self, n: Node) -> None:
        self._set(n, lambda a: E.unary("Relu", a))

    def op_Neg(self, n: Node) -> None:
        self._set(n, lambda a: E.unary("Neg", a))

    def op_Sigmoid(self, n: Node) -> None:
        # 1 / (1 + e^-x) = (1 + tanh(x / 2)) / 2: no division, no overflow
        self._set(n, lambda a: E.mul(E.add(E.unary("Tanh", E.mul(a, E.Imm(0.5))), E.Imm(1.0)),
                                     E.Imm(0.5)))

    def op_Sqrt(self, n: Node) -> None:
        self._once(n.inputs[0])
        self._set(n, lambda a: E.mul(a, E.unary("Rsqrt", a)))

    def op_Reciprocal(self, n: Node) -> None:
        self._once(n.inputs[0])
        self._set(n, reciprocal)

    def op_Abs(self, n: Node) -> None:
        self._set(n, lambda a: E.unary("Abs", a))

    def op_Pow(self, n: Node) -> None:
        """x ** c for a constant c that is an integer or an integer and a half: repeated
        squaring on the VXM, 1/x and rsqrt(x) for the rest. Other exponents need log x, and
        the VXM has Exp but no Log."""
        x, e = n.inputs
        c = self._exponent(n)
        rows, cols = self.dims(n.outputs[0])
        if c == 0.0:  # ONNX: x ** 0 is 1, even for NaN
            self.graph.constants[n.outputs[0]] = np.ones(self.graph.value(n.outputs[0]).shape,
                                                         dtype=np.float32)
            self.exprs[n.outputs[0]] = _LazyConst(n.outputs[0])
            return
        self._once(x)
        base = self.operand(x, (rows, cols))
        whole, half = int(abs(c)), abs(c) % 1 == 0.5
        if c > 0:
            y = self._power(base, whole + half, rows, cols)
            y = E.mul(y, E.unary("Rsqrt", base)) if half else y  # x^(m+1) / sqrt(x)
        else:
            y = reciprocal(E.Leaf(self.leaf_expr(self._power(base, whole, rows, cols), rows,
                                                 cols))) if whole else None
            if half:
                y = E.unary("Rsqrt", base) if y is None else E.mul(y, E.unary("Rsqrt", base))
        self.exprs[n.outputs[0]] = y

    def _exponent(self, n: Node) -> float:
        """Pow's exponent: a constant, one value, a whole or half-integer (else refused)."""
        e = self.value_const(n.inputs[1])
        why = "x ** y is exp(y * log x), and the VXM has Exp but no Log"
        hint = "a constant exponent that is a whole number or a whole number and a half"
        if e is None:
            raise UsageError(f"node {n.name!r}: Pow with a computed exponent ({n.inputs[1]}) is "
                             f"not lowered: {why}", hint=hint)
        e = np.asarray(e, dtype=np.float64).reshape(-1)
        out, x = self.graph.value(n.outputs[0]).shape, self.graph.value(n.inputs[0]).shape
        if out != x:
            raise UsageError(f"node {n.name!r}: Pow whose exponent broadcasts x {x} to {out} is "
                             "not lowered", hint="Expand x to the output's shape first")
        if np.any(e != e[0]):
            raise UsageError(f"node {n.name!r}: Pow with an exponent that varies by element is "
                             f"not lowered: {why}", hint=hint)
        c = float(e[0])
        if not (2 * c).is_integer() or abs(c) >= 2 ** 31:
            raise UsageError(f"node {n.name!r}: Pow with exponent {c:g} is not lowered: {why}",
                             hint=hint)
        return c

    def _power(self, x, m: int, rows: int, cols: int):
        """x ** m (m >= 1) by repeated squaring; every square is its own VXM pass, so no value
        waits and no ALU chain grows past a few multiplies."""
        y = None
        while m:
            if m & 1:
                y = x if y is None else E.Leaf(self.leaf_expr(E.mul(y, x), rows, cols))
            m >>= 1
            if m:
                x = E.Leaf(self.leaf_expr(E.mul(x, x), rows, cols))
        return y

    def op_Where(self, n: Node) -> None:
        """c ? x : y, exactly, from Min and Max: q = +inf where c, -inf elsewhere (c is 0 or 1;
        (c - 1/2) * FLT_MAX * 4 overflows to +-inf), then max(min(x, q), min(y, -q)). A NaN in
        the branch not taken still wins (Min and Max propagate NaN)."""
        big = float(np.finfo(np.float32).max)
        shape = self.dims(n.outputs[0])
        full = self.graph.value(n.outputs[0]).shape
        c, x, y = (self.operand(i, shape, full) for i in n.inputs)
        if isinstance(c, E.Imm):  # a constant scalar condition: one branch
            pick = x if c.value else y
            if isinstance(pick, E.Imm):
                self.graph.constants[n.outputs[0]] = np.full(full, pick.value, np.float32)
                self.exprs[n.outputs[0]] = _LazyConst(n.outputs[0])
            else:
                self.exprs[n.outputs[0]] = pick if isinstance(pick, E.Ex) else E.Ex("Mov",
                                                                                      (pick,))
            return
        q = E.Leaf(self.leaf_expr(E.mul(E.mul(E.add(c, E.Imm(-0.5)), E.Imm(big)), E.Imm(4.0)),
                                  *shape))
        self.exprs[n.outputs[0]] = _max(_min(x, q), _min(y, E.unary("Neg", q)))

    def op_Expand(self, n: Node) -> None:
        """x broadcast to the output's shape: rows repeated on the MXM, a column across the
        lanes (reductions.expand_rows); a constant is expanded on the host."""
        x, shape = n.inputs[0], tuple(self.graph.value(n.outputs[0]).shape)
        if self.value_const(x) is not None:
            self.graph.constants[n.outputs[0]] = np.broadcast_to(self.graph.constants[x],
                                                                 shape).copy()
            self.exprs[n.outputs[0]] = _LazyConst(n.outputs[0])
            return
        from lpu_emu.compiler.reductions import expand_rows
        e = expand_rows(self, x, shape)
        full = isinstance(e, E.Leaf) and e.mode == "full" and self.tensors[e.name].cols == \
            self.dims(n.outputs[0])[1]
        self.exprs[n.outputs[0]] = e if full else E.Ex("Mov", (e,))

    def op_Gelu(self, n: Node) -> None:
        if n.attr("approximate") == "tanh":
            def gelu(x):
                inner = E.mul(E.add(E.mul(E.mul(x, x), E.Imm(0.044715)), E.Imm(1.0)), x)
                t = E.unary("Tanh", E.mul(inner, E.Imm(math.sqrt(2.0 / math.pi))))
                return E.mul(E.mul(E.add(t, E.Imm(1.0)), x), E.Imm(0.5))
        else:
            def gelu(x):
                e = E.unary("Erf", E.mul(x, E.Imm(1.0 / math.sqrt(2.0))))
                return E.mul(E.mul(E.add(e, E.Imm(1.0)), x), E.Imm(0.5))
        self._set(n, gelu)

    # ---- movement ----
    def op_Reshape(self, n: Node) -> None:
        src, dst = self.graph.value(n.inputs[0]).shape, self.graph.value(n.outputs[0]).shape
        e = self.exprs[n.inputs[0]]
        if (src[-1:] or (1,)) != (dst[-1:] or (1,)) and not isinstance(e, _LazyConst):
            from lpu_emu.compiler.movement import reshape
            self.exprs[n.outputs[0]] = E.Leaf(reshape(self, n))  # values move between lanes
            return
        if isinstance(e, _LazyConst):
            self.exprs[n.outputs[0]] = _LazyConst(n.inputs[0], n.outputs[0])
            self.graph.constants.setdefault(n.outputs[0], np.asarray(
                self.graph.constants[n.inputs[0]]).reshape(dst))
            return
        self.exprs[n.outputs[0]] = self.leaf(n.inputs[0])

    def op_Cast(self, n: Node) -> None:
        if not n.attr("to").startswith("fp"):
            raise UsageError(f"node {n.name!r}: Cast to {n.attr('to')} is not lowered",
                             hint="the chip computes in fp32: casts to fp32 are free")
        self.exprs[n.outputs[0]] = self.exprs[n.inputs[0]]

    def op_Slice(self, n: Node) -> None:
        from lpu_emu.compiler.movement import slice_axis
        shape = self.graph.value(n.inputs[0]).shape
        axis = n.attr("axis") % len(shape)
        step = n.attr("step") or 1
        start, _, _ = slice(n.attr("start"), n.attr("end"), step).indices(shape[axis])
        self.exprs[n.outputs[0]] = slice_axis(self, n, n.inputs[0], n.outputs[0], axis, start,
                                              step)

    def op_Split(self, n: Node) -> None:
        from lpu_emu.compiler.movement import slice_axis
        shape = self.graph.value(n.inputs[0]).shape
        axis = n.attr("axis") % len(shape)
        start = 0
        for o in n.outputs:
            self.exprs[o] = slice_axis(self, n, n.inputs[0], o, axis, start)
            start += self.graph.value(o).shape[axis]

    def lane_slice(self, src: str, rows: int, cols: int, start: int, note: str) -> str:
        """Columns start .. start + cols of src: each output chunk gathers its lanes from at
        most two source chunks with SXM Distribute (lane maps), summed on the VXM."""
        lanes = self.target.lanes
        out = self.tensor(self.fresh(f"{src}.cols"), rows, cols)
        for c in range(math.ceil(cols / lanes)):
            width = min(lanes, cols - c * lanes)
            first = start + c * lanes
            terms = []
            for k in range(first // lanes, (first + width - 1) // lanes + 1):
                m = [first + j - k * lanes if j < width and 0 <= first + j - k * lanes < lanes
                     else -1 for j in range(lanes)]
                leaf = E.Leaf(src, chunk=k)
                if all(v == j for j, v in enumerate(m[:width])) and width == lanes:
                    terms.append(leaf)
                else:
                    terms.append(E.Ex("Distribute", (leaf,), imm=self.lanemap(m)))
            e = terms[0] if len(terms) == 1 else E.add(terms[0], terms[1])
            if isinstance(e, E.Leaf):
                e = E.Ex("Mov", (e,))
            self.steps.append(MapStep(out, e, f"{note} columns", chunk=c))
        return out

    def lane_concat(self, n: Node) -> str:
        """Inputs side by side along the last axis: each output chunk gathers its lanes from
        the input chunks that overlap it (SXM Distribute with lane maps, summed on the VXM)."""
        lanes = self.target.lanes
        rows, cols = self.dims(n.outputs[0])
        srcs = [(self.leaf(i).name, self.dims(i)[1]) for i in n.inputs]
        out = self.tensor(self.fresh(n.outputs[0]), rows, cols)
        for c in range(math.ceil(cols / lanes)):
            lo, hi = c * lanes, min(cols, (c + 1) * lanes)
            terms, start = [], 0
            for name, width in srcs:  # input columns [start, start + width) of the output
                for k in range(math.ceil(width / lanes)):
                    a, b = start + k * lanes, start + min(width, (k + 1) * lanes)
                    if b <= lo or a >= hi:
                        continue
                    m = [j + lo - a if a <= j + lo < b else -1 for j in range(lanes)]
                    leaf = E.Leaf(name, chunk=k)
                    same = a == lo and all(v == j for j, v in enumerate(m[:hi - lo]))
                    terms.append(leaf if same and b - a == hi - lo == lanes else
                                 E.Ex("Distribute", (leaf,), imm=self.lanemap(m)))
                start += width
            self._sum_chunk(out, c, terms, rows, cols, f"{n.name} columns")
        return out

    def _sum_chunk(self, out: str, c: int, terms: list, rows: int, cols: int,
                   note: str) -> None:
        """out[:, chunk c] = the sum of `terms`, as many passes as the SXM units need (each pass
        adds its terms to the previous pass's partial sum, kept in a tensor of its own)."""
        units = len(self.target.sxm("W")) + len(self.target.sxm("E"))
        groups = [terms[i:i + units] for i in range(0, len(terms), units)]
        partial = None
        for k, group in enumerate(groups):
            e = group[0]
            for t in group[1:] + ([E.Leaf(partial, chunk=0)] if partial else []):
                e = E.add(e, t)
            if isinstance(e, E.Leaf):
                e = E.Ex("Mov", (e,))
            last = k == len(groups) - 1
            dest = out if last else self.tensor(self.fresh(f"{out}.part"), rows,
                                                min(self.target.lanes, cols))
            self.steps.append(MapStep(dest, self.staged(e, rows, cols), note,
                                      chunk=c if last else None))
            partial = dest

    def op_Gather(self, n: Node) -> None:
        """Rows of a 2-D table by a vector of indices (gathers.py puts every Gather in this
        form): a one-hot matrix built on the VXM from the indices, times the table on the MXM.
        A negative index counts from the end, as in ONNX: the one-hot matches v and v - vocab."""
        table_value, idx_value = (self.graph.value(v) for v in n.inputs)
        table = self.value_const(n.inputs[0])
        vocab, d = table_value.shape
        idx = self.leaf(n.inputs[1]).name
        ic = idx_value.shape[0]
        iota = self.const("iota", np.repeat(np.arange(vocab, dtype=np.float32)[:, None],
                                            self.target.lanes, axis=1))
        self.tensors[iota].bcast = True
        # one-hot, transposed: oh_t[v, s] = 1 if idx[s] in (v, v - vocab): relu(1 - |idx - v|)
        hits = [E.unary("Relu", E.add(E.unary("Neg", E.unary("Abs", E.sub(
            E.add(E.Leaf(idx, "row"), E.Imm(float(shift))), E.Leaf(iota, "col")))), E.Imm(1.0)))
            for shift in (0, vocab)]
        oh_t = self.tensor(self.fresh(f"{n.outputs[0]}.onehotT"), vocab, ic)
        self.steps.append(MapStep(oh_t, E.add(*hits), f"{n.name} one-hot"))
        oh = self.tensor(self.fresh(f"{n.outputs[0]}.onehot"), ic, vocab)
        self.steps.append(self._transpose(oh, self.split(E.Leaf(oh_t), vocab, ic, 1,
                                                       self.mode.exact), self.mode.exact,
                                        f"{n.name} one-hot"))
        out = self.tensor(self.fresh(n.outputs[0]), ic, d)
        epi, mxm = ACC, self.mode.mxm
        if table is not None:
            term, scale = self._const_term(oh, ic, np.asarray(table, dtype=np.float32), False,
                                           n.inputs[0], n.inputs[1])
            if scale is not None:
                epi = E.mul(E.Ex("Cvt", (ACC,), dtype="int32", dtype2="fp32"),
                            E.Leaf(scale, "row"))
        else:  # a computed table: the weights are activations, as in an activation MatMul
            p, mxm = self._fparts(), self._fmxm()
            term = Term(self.split(E.Leaf(oh), ic, vocab, p, mxm),
                        self.split(self.leaf(n.inputs[0]), vocab, d, p, mxm), parts=p)
        self.steps.append(MmStep(out, (term,), epi, mxm, f"{n.name} rows"))
        self.exprs[n.outputs[0]] = E.Leaf(out)

    def op_Concat(self, n: Node) -> None:
        shape = self.graph.value(n.outputs[0]).shape
        axis = n.attr("axis") % len(shape)
        if axis == len(shape) - 1 and len(shape) >= 1:
            self.exprs[n.outputs[0]] = E.Leaf(self.lane_concat(n))
            return
        if any(d != 1 for d in shape[:axis]):  # blocks of rows interleave: moved by passes
            from lpu_emu.compiler.movement import concat_rows
            self.exprs[n.outputs[0]] = E.Leaf(concat_rows(self, n, axis))
            return
        parts = [self.leaf(i).name for i in n.inputs]
        rows, cols = self.dims(n.outputs[0])
        views = [self.tensors[p].pinned for p in parts]
        if all(v is not None for v in views) and len({v.base for v in views}) == 1 and all(
                a.chunks[0].addr + a.rows == b.chunks[0].addr for a, b in pairwise(views)):
            # already stored one after another (a KV cache and its new rows): nothing to move
            out = self.tensor(self.fresh(n.outputs[0]), rows, cols,
                              pinned=_span(views[0], views[-1]))
            self.exprs[n.outputs[0]] = E.Leaf(out)
            return
        out = self.tensor(self.fresh(n.outputs[0]), rows, cols,
                          pinned=self.pinned.get(n.outputs[0]))
        r0 = 0
        for p in parts:
            k = self.tensors[p].rows
            self.steps.append(MapStep(out, E.Ex("Mov", (E.Leaf(p, row=-r0),)),
                                      f"{n.name} rows {r0}..", row0=r0, rows=k))
            r0 += k
        self.exprs[n.outputs[0]] = E.Leaf(out)

    def op_Transpose(self, n: Node) -> None:
        """Any perm: rows gathered by passes, the last two axes swapped on the MXM
        (movement.transpose); a constant is transposed on the host."""
        shape = self.graph.value(n.inputs[0]).shape
        perm = tuple(n.attr("perm")) or tuple(reversed(range(len(shape))))
        if self.value_const(n.inputs[0]) is not None:
            data = np.asarray(self.graph.constants[n.inputs[0]]).transpose(perm)
            self.graph.constants[n.outputs[0]] = data
            self.exprs[n.outputs[0]] = _LazyConst(n.outputs[0])
            return
        from lpu_emu.compiler.movement import transpose
        self.exprs[n.outputs[0]] = E.Leaf(transpose(self, n))

    def _transpose(self, out: str, x: tuple[str, ...], mxm: str, note: str,
                   **kw) -> TransposeStep:
        """A TransposeStep, with the identity it streams (one constant per program)."""
        if "eye" not in self._consts:
            lanes = self.target.lanes
            self._consts["eye"] = self.const("eye", np.eye(lanes, dtype=np.float32), mxm)
        return TransposeStep(out, x, mxm, note, self._consts["eye"], **kw)

    def floor(self, e):
        """e (scores or a mask on their way to a softmax) with -inf raised to the most negative
        finite value of the transpose's dtype. -inf would meet the identity's zeros on the MXM
        (NaN in every output); the raised value still gives exp(x - max) = 0 exactly (fp32 exp
        underflows past -104) wherever the row's max is above it, and a finite mask too large
        for the dtype (float32's min rounds to -inf in bf16) is caught as well. A row masked
        everywhere comes out uniform, not NaN as in numpy."""
        return E.Ex("MaxI", (e,), -max_finite(self.mode.exact))

    def tparts(self, e, rows: int, cols: int) -> tuple[str, ...]:
        """e in parts for an exact transpose (one part, rounded, in the 16-bit modes)."""
        return self.split(e, rows, cols, self.mode.transpose_parts, self.mode.exact)

    # ---- matmul ----
    def op_MatMul(self, n: Node) -> None:
        from lpu_emu.compiler.matmuls import batched_matmul, lhs
        a, b = n.inputs[:2]
        if len(self.graph.value(b).shape) > 2:  # one product per batch (matmuls.py)
            batched_matmul(self, n)
            return
        x, rows, k = lhs(self, n)
        _, cols = self.dims(n.outputs[0])
        out = self.tensor(self.fresh(n.outputs[0]), rows, cols,
                          pinned=self.pinned.get(n.outputs[0]))
        bias = None
        if len(n.inputs) == 3:
            bias = self.operand(n.inputs[2], (rows, cols),
                                self.graph.value(n.outputs[0]).shape)
        w = self.value_const(b)
        epi = ACC
        if w is not None:
            term, scale = self._const_term(x, rows, np.asarray(w, dtype=np.float32),
                                           bool(n.attr("trans_b")), b, a)
            mxm = self.mode.mxm
            if scale is not None:
                epi = E.mul(E.Ex("Cvt", (ACC,), dtype="int32", dtype2="fp32"),
                            E.Leaf(scale, "row"))
        else:
            p, mxm = self._fparts(), self._fmxm()
            wt = self.leaf(b).name
            wr, wc = self.dims(b)
            mask = None
            if n.attr("trans_b") and k % self.target.lanes:
                # K runs across lanes: x's padding lanes would meet W's, and neither is zero
                # after e.g. a sigmoid; x streams through ones over its K columns
                mask = (self.const(f"{n.name}.k", np.ones((1, k)), mxm), 0)
            term = Term(self.split(E.Leaf(x), rows, k, p, mxm),
                        self.split(E.Leaf(wt), wr, wc, p, mxm),
                        "IWT" if n.attr("trans_b") else "IW", parts=p, x_mask=mask)
        if bias is not None:
            epi = E.add(epi, bias)
        step = MmStep(out, (term,), epi, mxm, n.name)
        self.exprs[n.outputs[0]] = _Pending(step)

    def _const_term(self, x: str, rows: int, w: np.ndarray, trans: bool, name: str,
                    value: str) -> tuple[Term, str | None]:
        """The term x @ w for constant weights (split on the host), and the int8 mode's
        output scale tensor (or None)."""
        if trans:
            w = w.T
        mode = self.mode
        k = w.shape[0]
        wide = w.shape[1] > self.target.lanes
        if mode.quantized:  # symmetric int8: per output column for W, per tensor for x
            scale = np.maximum(np.abs(w).max(axis=0), np.finfo(np.float32).tiny) / 127.0
            q = np.clip(np.round(w / scale), -127, 127).astype(np.float32)
            wq = self.const(f"{name}.q", q, "int8", self.target.lw_rows("int8", wide))
            sx = float(self.act_scale.get(value, 1.0))
            out_scale = self.const(f"{name}.scale", (scale * sx).astype(np.float32)[None, :])
            return Term((self.quantize(x, rows, k, sx),), (wq,)), out_scale
        parts = []
        rest = w.astype(np.float32)
        for j in range(mode.parts):
            part = from_storage(to_storage(rest, mode.mxm), mode.mxm).astype(np.float32)
            parts.append(self.const(f"{name}.{j}" if mode.parts > 1 else name, part, mode.mxm,
                                    self.target.lw_rows(mode.mxm, wide)))
            rest = rest - part
        xs = self.split(E.Leaf(x), rows, k, mode.parts, mode.mxm)
        return Term(xs, tuple(parts), parts=mode.parts), None

    act_scale: dict = field(default_factory=dict)  # graph value -> int8 scale (calibrated)

    def _fparts(self) -> int:
        """Parts of activation x activation products (int8 mode keeps those in bf16)."""
        return 1 if self.mode.quantized else self.mode.parts

    # ---- reductions over columns: matmuls against ones ----
    def rowsum(self, e, rows: int, cols: int, epilogue, note: str = "") -> str:
        """epilogue(sum of e over each row's columns), repeated across the lanes: e split into
        parts, times a column of ones on the MXM."""
        ones = self._ones(cols)
        out = self.tensor(self.fresh("rowsum"), rows, self.target.lanes, bcast=True)
        n = self.mode.sum_parts
        xs = self.split(e, rows, cols, n, self.mode.exact, note)
        self.steps.append(MmStep(out, (Term(xs, (ones,), parts=n),), epilogue,
                                 self.mode.exact, note))
        return out

    _ones_cache: dict = field(default_factory=dict)

    def _ones(self, cols: int) -> str:
        if cols not in self._ones_cache:
            self._ones_cache[cols] = self.const(f"ones{cols}",
                                                np.ones((cols, self.target.lanes)),
                                                self.mode.exact,
                                                self.target.lw_rows(self.mode.exact))
        return self._ones_cache[cols]

    def op_LayerNormalization(self, n: Node) -> None:
        x = self.leaf(n.inputs[0])
        rows, cols = self.dims(n.inputs[0])
        inv = 1.0 / cols
        mean = E.Leaf(self.rowsum(x, rows, cols, E.mul(ACC, E.Imm(inv)), f"{n.name} mean"),
                      "col")
        d = E.sub(x, mean)
        eps = float(n.attr("epsilon"))
        rstd = self.rowsum(E.mul(d, d), rows, cols,
                           E.unary("Rsqrt", E.add(E.mul(ACC, E.Imm(inv)), E.Imm(eps))),
                           f"{n.name} variance")
        y = E.mul(E.sub(x, mean), E.Leaf(rstd, "col"))
        self.exprs[n.outputs[0]] = self._affine(n, y, rows, cols)

    def _affine(self, n: Node, y, rows: int, cols: int):
        for i, fn in ((1, E.mul), (2, E.add)):
            if len(n.inputs) > i:
                if isinstance(self.exprs[n.inputs[i]], _LazyConst) and self.dims(
                        n.inputs[i]) != (1, 1):
                    self.const_leaf(n.inputs[i])
                y = fn(y, self.operand(n.inputs[i], (rows, cols)))
        return y

    def op_RMSNormalization(self, n: Node) -> None:
        x = self.leaf(n.inputs[0])
        rows, cols = self.dims(n.inputs[0])
        eps = float(n.attr("epsilon"))
        rstd = self.rowsum(E.mul(x, x), rows, cols,
                           E.unary("Rsqrt", E.add(E.mul(ACC, E.Imm(1.0 / cols)), E.Imm(eps))),
                           f"{n.name} mean square")
        self.exprs[n.outputs[0]] = self._affine(n, E.mul(x, E.Leaf(rstd, "col")), rows, cols)

    def op_ReduceSum(self, n: Node) -> None:
        from lpu_emu.compiler.reductions import reduce_node
        reduce_node(self, n, "sum")

    def op_ReduceMean(self, n: Node) -> None:
        from lpu_emu.compiler.reductions import reduce_node
        reduce_node(self, n, "mean")

    def op_ReduceMax(self, n: Node) -> None:
        from lpu_emu.compiler.reductions import reduce_node
        reduce_node(self, n, "max")

    # ---- softmax and attention: reductions over rows, after a transpose ----
    def op_Softmax(self, n: Node) -> None:
        shape = self.graph.value(n.inputs[0]).shape
        if n.attr("axis") not in (-1, len(shape) - 1):
            raise UsageError(f"node {n.name!r}: Softmax over axis {n.attr('axis')} is not "
                             "lowered", hint="softmax over the last axis")
        rows, cols = self.dims(n.inputs[0])
        s = self.operand(n.inputs[0], (rows, cols))
        # a constant mask (and the causal one) may hold -inf, which the MXM transpose would turn
        # into NaN (-inf times the identity's zeros): it is transposed on the host, added after;
        # a computed one is added before and floored to a finite value (self.floor)
        mask_t = causal_mask(rows, cols).T if n.attr("causal") else None
        if len(n.inputs) > 1:
            mv = self.value_const(n.inputs[1])
            if mv is None:
                s = E.add(s, self.operand(n.inputs[1], (rows, cols)))
            else:
                m = np.broadcast_to(np.asarray(mv, dtype=np.float32), (rows, cols)).T
                mask_t = m if mask_t is None else mask_t + m
        xt = self.tensor(self.fresh(f"{n.outputs[0]}.T"), cols, rows)
        self.steps.append(self._transpose(xt, self.tparts(self.floor(s), rows, cols),
                                          self.mode.exact, n.name))
        if mask_t is not None:
            masked = self.tensor(self.fresh(f"{n.outputs[0]}.masked"), cols, rows)
            self.steps.append(MapStep(masked, E.add(E.Leaf(xt), E.Leaf(self.const(
                f"{n.name}.maskT", mask_t))), f"{n.name} mask"))
            xt = masked
        pt = self.softmax_rows(xt, cols, rows, 1, n.name)
        out = self.tensor(self.fresh(n.outputs[0]), rows, cols)
        self.steps.append(self._transpose(out, self.tparts(E.Leaf(pt), cols, rows),
                                        self.mode.exact, n.name))
        self.exprs[n.outputs[0]] = E.Leaf(out)

    def softmax_rows(self, st: str, rows: int, cols: int, groups: int, note: str,
                     parts: int = 0, dtype: str = "fp32") -> str | tuple[str, ...]:
        """Softmax down the columns of `groups` stacked blocks of `rows` rows of st: fp32, or
        directly as `parts` parts of `dtype` (what an MXM operand needs: no fp32 pass between)."""
        outs = self.softmax_ways([st], rows, cols, groups, note, parts, dtype)[0]
        return outs[0] if not parts else outs

    def softmax_ways(self, sts: list[str], rows: int, cols: int, groups: int, note: str,
                     parts: int = 0, dtype: str = "fp32") -> list[tuple[str, ...]]:
        """`softmax_rows` of groups dealt over the tensors `sts` (group g in sts[g % ways],
        rows from (g // ways) * rows): each way's maxima, sums, exponentials and results are
        tensors of their own, so the passes over one way run beside those over another (other
        slices, ALUs and streams). Returns each way's outputs (one fp32 tensor, or the parts)."""
        ways = len(sts)
        mine = [len(range(w, groups, ways)) for w in range(ways)]

        def per_way(what: str, n_rows: Callable[[int], int]) -> list[str]:
            return [self.tensor(self.fresh(f"{sts[w]}.{what}"), n_rows(w), cols)
                    for w in range(ways)]
        m = per_way("max", lambda w: mine[w])
        z = per_way("sum", lambda w: mine[w])
        e = per_way("exp", lambda w: mine[w] * rows)
        names = ["p"] if not parts else [f"p.{dtype}{i}" for i in range(parts)]
        outs = [[self.tensor(self.fresh(f"{sts[w]}.{name}"), mine[w] * rows, cols,
                             dtype=dtype if parts else "fp32") for name in names]
                for w in range(ways)]
        for g in range(groups):
            w, r = g % ways, g // ways
            self.steps.append(ReduceStep(m[w], "max", E.Leaf(sts[w]), rows, f"{note} max",
                                         row0=r * rows, out_row=r))
        for g in range(groups):
            w, r = g % ways, g // ways
            ex = E.unary("Exp", E.sub(E.Leaf(sts[w]), E.Leaf(m[w], "row", r)))
            self.steps.append(ReduceStep(z[w], "sum", ex, rows, f"{note} exp, sum",
                                         also=e[w], row0=r * rows, out_row=r))
        for g in range(groups):
            w, r = g % ways, g // ways
            p = E.mul(E.Leaf(e[w]), reciprocal(E.Leaf(z[w], "row", r), positive=True))
            for i, out in enumerate(outs[w]):
                x = p
                for prev in outs[w][:i]:
                    x = E.sub(x, E.Ex("Cvt", (E.Leaf(prev),), dtype=dtype, dtype2="fp32"))
                ex = x if not parts else E.Ex("Cvt", (x,), dtype2=dtype)
                self.steps.append(MapStep(out, self.staged(ex, mine[w] * rows, cols),
                                          f"{note} normalise", row0=r * rows, rows=rows))
        return [tuple(o) for o in outs]

    def op_Attention(self, n: Node) -> None:
        q, k, v = (self.leaf(i).name for i in n.inputs[:3])
        sq, d = self.dims(n.inputs[0])
        sk, _ = self.dims(n.inputs[1])
        heads = int(n.attr("num_heads"))
        dh = d // heads
        lanes = self.target.lanes
        if lanes % dh and heads > 1:
            raise UsageError(f"node {n.name!r}: head size {dh} does not divide the {lanes} "
                             "lanes, so a head would straddle two vectors",
                             hint=f"head sizes that divide {lanes}: 16, 32, 64, 80, 160, 320")
        scale = float(n.attr("scale")) or 1.0 / math.sqrt(dh)
        mask = np.zeros((sk, sq), dtype=np.float32)  # transposed: keys down, queries across
        if n.attr("causal"):
            mask += causal_mask(sq, sk).T
        extra = None
        if len(n.inputs) > 3:
            mv = self.value_const(n.inputs[3])
            if mv is not None:
                mask += np.broadcast_to(np.asarray(mv, dtype=np.float32), (sq, sk)).T
            else:
                extra = self._mask_t(n.inputs[3], sq, sk)
        maskt = self.const(f"{n.name}.maskT", mask)
        hm = np.zeros((heads, d), dtype=np.float32)
        for h in range(heads):
            hm[h, h * dh:(h + 1) * dh] = 1.0
        p, mxm = self._fparts(), self._fmxm()
        hmask = self.const(f"{n.name}.heads", hm, mxm)
        qs = self.split(E.Leaf(q), sq, d, p, mxm)
        ks = self.split(E.Leaf(k), sk, d, p, mxm)
        vs = self.split(E.Leaf(v), sk, d, p, mxm)
        exact = self.mode.exact
        by_d = mxm == exact and attention.by_dimensions(self.target, sq, sk, d, heads, p,
                                                        self.mode.transpose_parts, mxm)
        # scores, transposed: s^T[h*sk + j, i] = scale * k_h[j] . q_h[i] + mask^T; where the
        # softmax writes the MXM's parts, the heads are dealt over SOFTMAX_WAYS tensors
        ways = min(SOFTMAX_WAYS, heads) if mxm == exact else 1
        sts = [self.tensor(self.fresh(f"{n.outputs[0]}.scoresT"),
                           len(range(w, heads, ways)) * sk, sq) for w in range(ways)]
        for h in range(heads):
            st, row = sts[h % ways], (h // ways) * sk
            # epilogue leaves are read at the output's rows (row + j): shift back to j
            epi = E.add(E.mul(ACC, E.Imm(scale)), E.Leaf(maskt, row=-row))
            if extra:
                epi = E.add(epi, E.Leaf(extra, row=-row))
            tile = (h * dh) // lanes  # the only K tile the head's mask lets through
            self.steps.append(MmStep(st, (Term(ks, qs, "IWT", p, (hmask, h), k_tiles=(tile,)),),
                                     epi, mxm, f"{n.name} scores h{h}", out_row=row, rows=sk))
        if by_d:
            vts = attention.transpose_v(self, n.name, n.outputs[0], vs, sk, d)
            pts = self.softmax_ways(sts, sk, sq, heads, n.name, p, exact)
            self.exprs[n.outputs[0]] = E.Leaf(attention.context(
                self, n.name, n.outputs[0], vts, pts, sq, sk, d, heads))
            return
        if mxm == exact:  # the probabilities in parts, transposed part by part (exactly)
            ps = []
            by_way = self.softmax_ways(sts, sk, sq, heads, n.name, p, exact)
            for i in range(p):
                probs = self.tensor(self.fresh(f"{n.outputs[0]}.probs{i}"), heads * sq, sk,
                                    dtype=exact)
                for h in range(heads):
                    part, row = by_way[h % ways][i], (h // ways) * sk
                    self.steps.append(self._transpose(probs, (part,), exact,
                                                      f"{n.name} probs h{h}", x_row=row,
                                                      x_rows=sk, out_row=h * sq))
                ps.append(probs)
            ps = tuple(ps)
        else:  # one way
            pt = self.softmax_rows(sts[0], sk, sq, heads, n.name)
            probs = self.tensor(self.fresh(f"{n.outputs[0]}.probs"), heads * sq, sk)
            pts = self.tparts(E.Leaf(pt), heads * sk, sq)
            for h in range(heads):
                self.steps.append(self._transpose(probs, pts, exact, f"{n.name} probs h{h}",
                                                  x_row=h * sk, x_rows=sk, out_row=h * sq))
            ps = self.split(E.Leaf(probs), heads * sq, sk, p, mxm)
        out = self.tensor(self.fresh(n.outputs[0]), sq, d)
        terms = tuple(Term(ps, vs, "IW", p, None, (hmask, h), x_row=h * sq)
                      for h in range(heads))
        self.steps.append(MmStep(out, terms, ACC, mxm, f"{n.name} context"))
        self.exprs[n.outputs[0]] = E.Leaf(out)

    def _fmxm(self) -> str:
        """The MXM dtype of activation x activation products (int8 mode keeps them float)."""
        return self.mode.exact if self.mode.quantized else self.mode.mxm

    def _mask_t(self, value: str, sq: int, sk: int) -> str:
        """A computed mask, transposed (keys down, queries across). A padding mask of one row
        (1, sk), as BERT exports compute it from attention_mask, is first repeated to (sq, sk)."""
        rows, cols = self.dims(value)
        src = self.leaf(value)
        if (rows, cols) == (1, sk) and sq > 1:
            full = self.tensor(self.fresh(f"{value}.rows"), sq, sk)
            self.steps.append(MapStep(full, E.Ex("Mov", (E.Leaf(src.name, "row"),)),
                                      f"{value} repeated to {sq} rows"))
            src = E.Leaf(full)
        elif (rows, cols) != (sq, sk):
            raise UsageError(f"attention mask {value}: shape {(rows, cols)}, wanted {(sq, sk)} "
                             f"or (1, {sk})")
        out = self.tensor(self.fresh(f"{value}.T"), sk, sq)
        self.steps.append(self._transpose(out, self.tparts(self.floor(src), sq, sk),
                                          self.mode.exact, f"{value} transposed"))
        return out


def _add_terms(e) -> list:
    """The terms of e as a sum (Add nodes flattened)."""
    if isinstance(e, E.Ex) and e.mnemonic == "Add":
        return [t for a in e.args for t in _add_terms(a)]
    return [e]


def _broadcasts(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    """src broadcasts to dst by numpy's rules, dst unchanged."""
    try:
        return len(src) <= len(dst) and np.broadcast_shapes(src, dst) == tuple(dst)
    except ValueError:
        return False


@dataclass
class _LazyConst:
    """A graph constant not yet placed (scalars become immediates, never tensors)."""

    name: str
    alias: str | None = None


def _span(first, last):
    """The view from the first row of `first` to the last row of `last` (one storage)."""
    row0 = first.chunks[0].addr
    base_rows = last.chunks[0].addr + last.rows - row0
    return type(first)(first.name, first.dtype, base_rows, first.cols, first.chunks,
                       first.lanes, first.base)


def _min(a, b):
    return _pair("Min", a, b)


def _max(a, b):
    return _pair("Max", a, b)


def _pair(mnemonic: str, a, b):
    """mnemonic(a, b), or its immediate form (MinI, MaxI) when one side is an immediate."""
    if isinstance(b, E.Imm):
        return E.Ex(mnemonic + "I", (a,), b.value)
    if isinstance(a, E.Imm):
        return E.Ex(mnemonic + "I", (b,), a.value)
    return E.Ex(mnemonic, (a, b))


def reciprocal(b, positive: bool = False):
    """1 / b from Rsqrt: rsqrt(b)^2 when b > 0, else b * rsqrt(b*b)^2."""
    if positive:
        r = E.unary("Rsqrt", b)
        return E.mul(r, r)
    r = E.unary("Rsqrt", E.mul(b, b))
    return E.mul(b, E.mul(r, r))


def causal_mask(rows: int, cols: int) -> np.ndarray:
    """0 where query i may see key j (j <= i + cols - rows), -inf elsewhere."""
    keep = np.arange(cols)[None, :] <= np.arange(rows)[:, None] + (cols - rows)
    return np.where(keep, 0.0, -np.inf).astype(np.float32)


def lower(graph: Graph, mode: Mode, target: Target, pinned: dict | None = None,
          act_scale: dict | None = None) -> Lowered:
    from lpu_emu.compiler.gathers import rows_gathers
    low = Lowering(rows_gathers(graph), mode, target, dict(pinned or {}))
    low.act_scale = dict(act_scale or {})
    return low.run()
