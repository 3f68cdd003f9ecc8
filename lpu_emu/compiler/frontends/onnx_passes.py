"""Graph passes for imported models: each a named function Graph -> Graph, tested before/after.

Exports spell fused ops out as chains (older LayerNormalization exports: ReduceMean, Sub, Pow,
ReduceMean, Add, Sqrt, Div; attention: Reshape, Transpose, MatMul, Softmax, MatMul, Transpose,
Reshape per head group). The chip has fused lowerings for LayerNormalization and Attention, so
these passes find the chains and put the fused op back. A pass only rewrites a chain whose
intermediate values nobody else reads, and leaves everything else as it was; `prune` then drops
what no output needs. In order (`PASSES`): fuse_layernorm, fuse_gelu, fold_unit_reshapes,
fuse_transposes, fuse_attention, fuse_matmul_bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lpu_emu.compiler.graph import Graph, Node, Value

Pass = Callable[[Graph], Graph]


def prune(graph: Graph) -> Graph:
    """Drop nodes, values and constants that no graph output depends on."""
    live: set[str] = set(graph.outputs)
    keep: list[Node] = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs):
            keep.append(node)
            live.update(node.inputs)
    keep.reverse()
    names = set(graph.inputs) | {o for n in keep for o in n.outputs} | \
        {c for c in graph.constants if c in live}
    return Graph(graph.name, {k: v for k, v in graph.values.items() if k in names},
                 graph.inputs, graph.outputs, tuple(keep),
                 {k: v for k, v in graph.constants.items() if k in live}).check()


class _Rewriter:
    """Matching helpers over one graph: who produces a value, how many read it, constants."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producer = graph.producer()
        self.readers = {k: len(v) for k, v in graph.consumers().items()}
        for o in graph.outputs:
            self.readers[o] = self.readers.get(o, 0) + 1
        self.values = dict(graph.values)
        self.constants = dict(graph.constants)
        self.replace: dict[str, list[Node]] = {}  # output of the chain's last node -> new nodes
        self.count = 0

    def node(self, value: str, op: str, private: bool = True) -> Node | None:
        """The node of `op` computing `value`; with `private`, only if nobody else reads it."""
        n = self.producer.get(value)
        if n is None or n.op != op or (private and self.readers.get(value, 0) != 1):
            return None
        return n

    def const(self, value: str) -> np.ndarray | None:
        return self.constants.get(value)

    def fresh(self, base: str, shape: tuple[int, ...], dtype: str = "fp32") -> str:
        name = base
        while name in self.values:
            self.count += 1
            name = f"{base}_{self.count}"
        self.values[name] = Value(name, shape, dtype)
        return name

    def add_const(self, base: str, data: np.ndarray) -> str:
        name = self.fresh(base, tuple(data.shape))
        self.constants[name] = data.astype(np.float32)
        return name

    def result(self) -> Graph:
        nodes: list[Node] = []
        for n in self.graph.nodes:
            new = self.replace.get(n.outputs[0])
            nodes.extend(new if new is not None else [n])
        return prune(Graph(self.graph.name, self.values, self.graph.inputs, self.graph.outputs,
                           tuple(nodes), self.constants))


def _scalar(arr: np.ndarray | None) -> float | None:
    if arr is None or arr.size == 0 or not np.all(arr == arr.flat[0]):
        return None
    return float(arr.flat[0])


def _last_axis(node: Node, rank: int) -> bool:
    return tuple(node.attr("axes")) == (rank - 1,) and bool(node.attr("keepdims"))


def fuse_layernorm(graph: Graph) -> Graph:
    """(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) [* gamma] [+ beta] -> one
    LayerNormalization (Pow 2 was already imported as Mul(d, d); exports often compute x - mean
    twice, so the two Subs may be one node or two)."""
    rw = _Rewriter(graph)
    consumers = graph.consumers()
    for div in graph.nodes:
        found = _layernorm_chain(rw, div) if div.op == "Div" else None
        if found is None:
            continue
        x, eps, chain = found
        inner = {o for n in chain for o in n.outputs} - set(div.outputs)
        if any(r not in chain for v in inner for r in consumers[v]) or \
                any(v in graph.outputs for v in inner):
            continue
        last, params = _affine_tail(rw, div, graph.value(x).shape[-1])
        rw.replace[last.outputs[0]] = [Node("LayerNormalization", (x, *params), last.outputs,
                                            (("epsilon", eps),), name=f"{div.name}/layernorm")]
    return rw.result()


def _layernorm_chain(rw: _Rewriter, div: Node) -> tuple[str, float, list[Node]] | None:
    """The nodes of a written-out LayerNorm ending in `div`: (x, epsilon, nodes) or None."""
    sub = rw.producer.get(div.inputs[0])
    sqrt = rw.producer.get(div.inputs[1])
    if sub is None or sub.op != "Sub" or sqrt is None or sqrt.op != "Sqrt":
        return None
    x, mean = sub.inputs
    rank = len(rw.values[x].shape)
    rm1 = rw.producer.get(mean)
    add = rw.producer.get(sqrt.inputs[0])
    if rm1 is None or rm1.op != "ReduceMean" or rm1.inputs[0] != x or \
            not _last_axis(rm1, rank) or add is None or add.op != "Add":
        return None
    var, eps_name = add.inputs
    eps = _scalar(rw.const(eps_name))
    rm2 = rw.producer.get(var)
    if eps is None or rm2 is None or rm2.op != "ReduceMean" or not _last_axis(rm2, rank):
        return None
    sq = rw.producer.get(rm2.inputs[0])
    if sq is None or sq.op != "Mul" or sq.inputs[0] != sq.inputs[1]:
        return None
    sub2 = rw.producer.get(sq.inputs[0])
    if sub2 is None or sub2.op != "Sub" or sub2.inputs != (x, mean):
        return None
    return x, eps, [div, sub, sqrt, rm1, add, rm2, sq, sub2]


def _affine_tail(rw: _Rewriter, div: Node, d: int) -> tuple[Node, tuple[str, ...]]:
    """A constant (d,) scale and then shift read only by the normalization: absorbed."""
    last, params = div, ()
    for op in ("Mul", "Add"):
        nxt = _sole_reader(rw, last.outputs[0])
        if nxt is None or nxt.op != op:
            break
        other = nxt.inputs[1] if nxt.inputs[0] == last.outputs[0] else nxt.inputs[0]
        c = rw.const(other)
        if c is None or c.shape != (d,):
            break
        if op == "Add" and not params:
            params = (rw.add_const(f"{other}/gamma", np.ones(d)),)
        last, params = nxt, (*params, other)
    return last, params


def _sole_reader(rw: _Rewriter, value: str) -> Node | None:
    if rw.readers.get(value) != 1 or value in rw.graph.outputs:
        return None
    return next((n for n in rw.graph.nodes if value in n.inputs), None)


def _reshape_to_heads(rw: _Rewriter, value: str, perm: tuple[int, ...]) -> tuple[str, int] | None:
    """value = Transpose(Reshape(x, (1, s, h, dh)), perm): returns (x, h) for x of (1, s, h*dh)
    or (s, h*dh)."""
    t = rw.node(value, "Transpose")
    if t is None or tuple(t.attr("perm")) != perm:
        return None
    r = rw.node(t.inputs[0], "Reshape")
    if r is None:
        return None
    shape = tuple(r.attr("shape"))
    src = rw.values[r.inputs[0]].shape
    if len(shape) != 4 or shape[0] != 1 or src[-1] != shape[2] * shape[3] or \
            math.prod(src) != math.prod(shape) or src[-2] != shape[1]:
        return None
    return r.inputs[0], shape[2]


def fuse_attention(graph: Graph) -> Graph:
    """The exported multi-head attention of a batch of 1 -> the IR's Attention on (seq, d):

        q4 = Transpose(Reshape(q, (1, s, h, dh)), (0, 2, 1, 3))       same for v
        kT = Transpose(Reshape(k, (1, s, h, dh)), (0, 2, 3, 1))
        p  = Softmax(MatMul(q4, kT) {/ c | * c} [+ mask])
        y  = Reshape(Transpose(MatMul(p, v4), (0, 2, 1, 3)), (1, s, h*dh))

    The mask, broadcast over heads, becomes the Attention's additive mask; a constant mask that
    is exactly the causal triangle (0 on and below the diagonal, a large negative number above)
    becomes causal=1.
    """
    rw = _Rewriter(graph)
    for out in graph.nodes:
        if out.op != "Reshape":
            continue
        tr = rw.node(out.inputs[0], "Transpose")
        if tr is None or tuple(tr.attr("perm")) != (0, 2, 1, 3):
            continue
        pv = rw.node(tr.inputs[0], "MatMul")
        if pv is None or len(pv.inputs) != 2 or pv.attr("trans_a") or pv.attr("trans_b"):
            continue
        soft = rw.node(pv.inputs[0], "Softmax")
        vv = _reshape_to_heads(rw, pv.inputs[1], (0, 2, 1, 3))
        if soft is None or len(soft.inputs) != 1 or soft.attr("causal") or vv is None:
            continue
        found = _scores(rw, soft.inputs[0])
        if found is None:
            continue
        q, k, heads, scale, mask = found
        v, v_heads = vv
        (_, _, s, dh) = rw.values[pv.outputs[0]].shape
        d = heads * dh
        if v_heads != heads or tuple(out.attr("shape"))[-1] != d:
            continue
        causal = 0
        mask2 = None
        if mask is not None:
            mask2, causal = _mask_2d(rw, mask, s)
            if mask2 is None and not causal:
                continue
        new: list[Node] = []
        flat = []
        for name in (q, k, v):
            if rw.values[name].shape == (s, d):
                flat.append(name)
                continue
            f = rw.fresh(f"{name}/2d", (s, d))
            new.append(Node("Reshape", (name,), (f,), (("shape", (s, d)),),
                            name=f"{out.name}/flatten_{len(new)}"))
            flat.append(f)
        if mask2 is not None and rw.values[mask2[0]].shape != mask2[1]:
            f = rw.fresh(f"{mask2[0]}/2d", mask2[1])
            new.append(Node("Reshape", (mask2[0],), (f,), (("shape", mask2[1]),),
                            name=f"{out.name}/mask_2d"))
            flat.append(f)
        elif mask2 is not None:
            flat.append(mask2[0])
        att = rw.fresh(f"{out.outputs[0]}/attention", (s, d))
        new.append(Node("Attention", tuple(flat), (att,),
                        (("causal", causal), ("num_heads", heads), ("scale", scale)),
                        name=f"{out.name}/attention"))
        new.append(Node("Reshape", (att,), out.outputs, (("shape", rw.values[
            out.outputs[0]].shape),), name=out.name))
        rw.replace[out.outputs[0]] = new
    return rw.result()


def _scores(rw: _Rewriter, value: str) -> tuple[str, str, int, float, str | None] | None:
    """value = MatMul(q4, kT) scaled [+ mask]: (q, k, heads, scale, mask or None)."""
    mask = None
    add = rw.node(value, "Add")
    if add is not None:
        value, mask = add.inputs
    scale = 1.0
    for op in ("Div", "Mul"):
        sc = rw.node(value, op)
        if sc is not None:
            c = _scalar(rw.const(sc.inputs[1]))
            if c is None or c == 0.0:
                return None
            scale = 1.0 / c if op == "Div" else c
            value = sc.inputs[0]
            break
    qk = rw.node(value, "MatMul")
    if qk is None or len(qk.inputs) != 2 or qk.attr("trans_a") or qk.attr("trans_b"):
        return None
    operands = []
    for x in qk.inputs:  # scaled_dot_product_attention exports scale q and k^T by sqrt(scale)
        mul = rw.node(x, "Mul")
        c = _scalar(rw.const(mul.inputs[1])) if mul is not None else None
        if c is not None:
            scale, x = scale * c, mul.inputs[0]
        operands.append(x)
    qq = _reshape_to_heads(rw, operands[0], (0, 2, 1, 3))
    kk = _reshape_to_heads(rw, operands[1], (0, 2, 3, 1))
    if qq is None or kk is None or qq[1] != kk[1]:
        return None
    return qq[0], kk[0], qq[1], scale, mask


def _mask_2d(rw: _Rewriter, mask: str, s: int) -> tuple[tuple[str, tuple[int, ...]] | None, int]:
    """An additive mask broadcast over batch 1 and heads -> ((value, 2-D shape), 0), or the
    causal triangle -> (None, 1); (None, 0) if it is neither."""
    shape = rw.values[mask].shape
    data = rw.const(mask)
    if data is not None and data.shape[-2:] == (s, s) and math.prod(data.shape[:-2]) == 1:
        tri = data.reshape(s, s)
        upper = np.triu(np.ones((s, s), dtype=bool), 1)
        if np.all(tri[~upper] == 0) and np.all(tri[upper] <= -1e4):
            return None, 1
    lead = shape[:-2] if len(shape) >= 2 else ()
    if len(shape) > 4 or math.prod(lead) != 1 or shape[-1] != s:
        return None, 0
    rows = shape[-2] if len(shape) >= 2 else 1
    if rows not in (1, s):
        return None, 0
    return (mask, (rows, s)), 0


def fuse_matmul_bias(graph: Graph) -> Graph:
    """MatMul(x, w) + b, with b a constant vector read only there -> MatMul(x, w, b): the bias
    rides along the matmul's output stream instead of a separate pass over the result."""
    rw = _Rewriter(graph)
    for add in graph.nodes:
        if add.op != "Add":
            continue
        for pos in (0, 1):
            mm = rw.node(add.inputs[pos], "MatMul")
            bias = add.inputs[1 - pos]
            c = rw.const(bias)
            if mm is None or len(mm.inputs) != 2 or c is None or c.ndim != 1 or \
                    c.shape[0] != rw.values[mm.outputs[0]].shape[-1]:
                continue
            rw.replace[add.outputs[0]] = [Node("MatMul", (*mm.inputs, bias), add.outputs,
                                               mm.attrs, name=mm.name)]
            break
    return rw.result()


_ARITH = ("Add", "Sub", "Mul", "Div", "Pow")
_GELU_PROBE = np.linspace(-6.0, 6.0, 97)


def fuse_gelu(graph: Graph) -> Graph:
    """A written-out GELU (erf form: x * 0.5 * (1 + erf(x / sqrt 2)); tanh form:
    0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), in any operand order) -> Gelu.

    Around each Erf or Tanh, a candidate chain is the elementwise nodes between one value x and an
    end node, with scalar constants as the only other leaves; it is fused when it computes the
    same numbers as Gelu (of either form) on a probe of x values, so spelling variants of the
    export do not matter."""
    rw = _Rewriter(graph)
    consumers = graph.consumers()
    done: set[str] = set()
    for anchor in graph.nodes:
        if anchor.op not in ("Erf", "Tanh") or anchor.outputs[0] in done:
            continue
        match = _gelu_match(rw, consumers, anchor)
        if match is None:
            continue
        x, end, cone, form = match
        done.update(o for n in cone for o in n.outputs)
        rw.replace[end.outputs[0]] = [Node("Gelu", (x,), end.outputs, (("approximate", form),),
                                           name=f"{end.name}/gelu")]
    return rw.result()


def _gelu_match(rw: _Rewriter, consumers: dict[str, list[Node]],
                anchor: Node) -> tuple[str, Node, list[Node], str] | None:
    ends = [anchor]
    while len(ends) < 5:
        nxt = _sole_reader(rw, ends[-1].outputs[0])
        if nxt is None or nxt.op not in _ARITH:
            break
        ends.append(nxt)
    xs: list[str] = []
    frontier = [anchor]
    for _ in range(6):
        step = []
        for n in frontier:
            for i in n.inputs:
                if i in rw.constants or i in xs:
                    continue
                xs.append(i)
                p = rw.producer.get(i)
                if p is not None and p.op in _ARITH:
                    step.append(p)
        frontier = step
    for end in reversed(ends):
        for x in xs:
            cone = _cone(rw, x, end)
            if cone is None or not _private(rw, consumers, cone, end):
                continue
            form = _gelu_form(rw, x, cone, end)
            if form:
                return x, end, cone, form
    return None


def _cone(rw: _Rewriter, x: str, end: Node) -> list[Node] | None:
    """The nodes computing `end` from `x` and scalar constants only, in graph order; or None."""
    seen: dict[str, Node] = {}
    stack = [end]
    while stack:
        n = stack.pop()
        if n.outputs[0] in seen:
            continue
        if n.op not in (*_ARITH, "Erf", "Tanh"):
            return None
        seen[n.outputs[0]] = n
        for i in n.inputs:
            if i == x:
                continue
            c = rw.const(i)
            if c is not None:
                if c.size != 1:
                    return None
                continue
            p = rw.producer.get(i)
            if p is None:
                return None
            stack.append(p)
    order = {n.outputs[0]: k for k, n in enumerate(rw.graph.nodes)}
    return sorted(seen.values(), key=lambda n: order[n.outputs[0]])


def _private(rw: _Rewriter, consumers: dict[str, list[Node]], cone: list[Node],
             end: Node) -> bool:
    inner = {n.outputs[0] for n in cone} - {end.outputs[0]}
    return all(r in cone for v in inner for r in consumers[v]) and \
        not inner & set(rw.graph.outputs)


def _gelu_form(rw: _Rewriter, x: str, cone: list[Node], end: Node) -> str:
    """'none' or 'tanh' if the cone computes that Gelu of x on the probe, else ''."""
    from lpu_emu.compiler.evaluate import EVAL, gelu

    env: dict[str, np.ndarray] = {x: _GELU_PROBE}
    with np.errstate(all="ignore"):
        for n in cone:
            args = [env[i] if i in env else np.asarray(rw.constants[i], np.float64).reshape(())
                    for i in n.inputs]
            env[n.outputs[0]] = np.asarray(EVAL[n.op](n, args))
    got = env[end.outputs[0]]
    if got.shape != _GELU_PROBE.shape:
        return ""
    for form in ("none", "tanh"):
        if np.allclose(got, gelu(_GELU_PROBE, form), rtol=1e-5, atol=1e-6):
            return form
    return ""


def fuse_transposes(graph: Graph) -> Graph:
    """Transpose(Transpose(x, p1), p2) -> Transpose(x, p1 o p2) when the inner one has no other
    reader (exports write k.transpose(1, 2) then .transpose(-1, -2) for K^T)."""
    rw = _Rewriter(graph)
    for outer in graph.nodes:
        if outer.op != "Transpose":
            continue
        inner = rw.node(outer.inputs[0], "Transpose")
        if inner is None or inner.outputs[0] in rw.replace:
            continue
        rank = len(rw.values[inner.inputs[0]].shape)
        p1 = tuple(inner.attr("perm")) or tuple(reversed(range(rank)))
        p2 = tuple(outer.attr("perm")) or tuple(reversed(range(rank)))
        perm = tuple(p1[k] for k in p2)
        rw.replace[outer.outputs[0]] = [Node("Transpose", inner.inputs, outer.outputs,
                                             (("perm", perm),), name=outer.name)]
    return rw.result()


def fold_unit_reshapes(graph: Graph) -> Graph:
    """Reshape(Transpose(Reshape(x))) whose Reshapes only drop or add dimensions of size 1 ->
    one Transpose of x (torch's default exporter writes K^T of a batch of one that way:
    (1, h, s, dh) -> (h, s, dh) -> (h, dh, s) -> (1, h, dh, s))."""
    rw = _Rewriter(graph)
    for outer in graph.nodes:
        if outer.op != "Reshape":
            continue
        t = rw.node(outer.inputs[0], "Transpose")
        inner = rw.node(t.inputs[0], "Reshape") if t is not None else None
        if inner is None:
            continue
        perm = _unit_reshape_perm(rw.values[inner.inputs[0]].shape,
                                  rw.values[inner.outputs[0]].shape,
                                  tuple(t.attr("perm")), rw.values[outer.outputs[0]].shape)
        if perm is not None:
            rw.replace[outer.outputs[0]] = [Node("Transpose", inner.inputs, outer.outputs,
                                                 (("perm", perm),), name=outer.name)]
    return rw.result()


def _unit_reshape_perm(x: tuple[int, ...], y: tuple[int, ...], perm: tuple[int, ...],
                       w: tuple[int, ...]) -> tuple[int, ...] | None:
    """The perm p with Transpose(x, p) == Reshape(Transpose(Reshape(x, y), perm), w), when both
    reshapes only move size-1 dimensions; else None."""
    big = [d for d in x if d != 1]
    if [d for d in y if d != 1] != big or len(w) != len(x) or not perm:
        return None
    labels = iter(range(len(big)))
    y_labels = [next(labels) if d != 1 else None for d in y]
    z_labels = [y_labels[p] for p in perm]
    order = [lab for lab in z_labels if lab is not None]
    if [w_d for w_d in w if w_d != 1] != [big[lab] for lab in order]:
        return None
    x_big = [i for i, d in enumerate(x) if d != 1]
    x_unit = iter(i for i, d in enumerate(x) if d == 1)
    it = iter(order)
    return tuple(x_big[next(it)] if d != 1 else next(x_unit) for d in w)


PASSES: tuple[Pass, ...] = (fuse_layernorm, fuse_gelu, fold_unit_reshapes, fuse_transposes,
                            fuse_attention, fuse_matmul_bias)


def run_all(graph: Graph) -> Graph:
    """Every fusion in order, then prune."""
    graph = prune(graph)
    for p in PASSES:
        graph = p(graph)
    return graph
