"""Symbol and issue-cycle resolution with forward references.

Values form a dependency graph: a label is the issue cycle of its instruction; a cycle `@E` is E,
a cycle `+E` is E after the previous issue of the same queue (after a Repeat: its last
repetition, which depends on the Repeat's own n and d); `.equ` constants and tensor addresses are
expressions. Any of them may refer to names defined later, so values are computed on demand with
an explicit stack (no Python recursion, however long a chain of forward references is); meeting
a node that is already on the stack is a genuinely circular definition, reported at the
reference that closes the circle with the whole chain in the message.
"""

from __future__ import annotations

from lpu_emu.asm.diag import Where, did_you_mean, error
from lpu_emu.asm.expr import Expr, evaluate
from lpu_emu.asm.operands import IntArg
from lpu_emu.asm.parser import Unit

Node = tuple[str, object]  # ("sym", name) | ("cycle", i) | ("last", i)


class _Need(Exception):
    """A value asked for before it is known; carries the node and the referencing location."""

    def __init__(self, node: Node, where: Where):
        super().__init__()
        self.node = node
        self.where = where


def is_repeat(ins) -> bool:
    """The ICU instruction that re-issues the previous one (occupancy 'repeat' in the ISA)."""
    return ins.occupancy == "repeat"


class Resolver:
    def __init__(self, unit: Unit):
        self.unit = unit
        self.done: dict[Node, int] = {}
        last_of: dict[str, int] = {}
        self.prev: list[int | None] = []  # previous instruction of the same queue
        for d in unit.instrs:
            self.prev.append(last_of.get(d.queue))
            last_of[d.queue] = d.index

    def eval(self, expr: Expr) -> int:
        return evaluate(expr, self._lookup)

    def _lookup(self, name: str, where: Where) -> int:
        return self.value(("sym", name), where)

    def value(self, node: Node, where: Where) -> int:
        """The value of a node, computing whatever it depends on first."""
        if node in self.done:
            return self.done[node]
        stack: list[tuple[Node, Where]] = [(node, where)]
        on_stack = {node}
        while stack:
            top, top_where = stack[-1]
            try:
                v = self._compute(top, top_where)
            except _Need as need:
                if need.node in on_stack:
                    nodes = [n for n, _ in stack]
                    chain = nodes[nodes.index(need.node):] + [need.node]
                    raise error(need.where, "circular definition: "
                                + " -> ".join(self._name(n) for n in chain)) from None
                stack.append((need.node, need.where))
                on_stack.add(need.node)
                continue
            self.done[top] = v
            stack.pop()
            on_stack.discard(top)
        return self.done[node]

    def _need(self, node: Node, where: Where) -> int:
        if node in self.done:
            return self.done[node]
        raise _Need(node, where)

    def _inner(self, name: str, where: Where) -> int:
        return self._need(("sym", name), where)

    def _name(self, node: Node) -> str:
        kind, key = node
        if kind == "sym":
            return str(key)
        d = self.unit.instrs[key]  # type: ignore[index]
        if kind == "cycle":
            return f"the issue cycle of {d.queue} at {d.queue_where}"
        return f"the last repetition of the Repeat at {d.queue_where}"

    def _compute(self, node: Node, where: Where) -> int:
        kind, key = node
        unit = self.unit
        if kind == "sym":
            name = str(key)
            sym = unit.symbols.get(name)
            if sym is None:
                raise error(where, f"undefined symbol '{name}'", did_you_mean(name, unit.symbols))
            if sym.kind == "equ":
                assert sym.expr is not None
                return evaluate(sym.expr, self._inner)
            if sym.kind == "label":
                return self._need(("cycle", sym.index), sym.where)
            if sym.kind == "tensor":
                return evaluate(unit.tensors[sym.index].addr, self._inner)
            raise error(where, f"'{name}' is a lane map, not a number")
        d = unit.instrs[key]  # type: ignore[index]
        if kind == "cycle":
            t = evaluate(d.timing_expr, self._inner)
            if d.timing == "@":
                return t
            prev = self.prev[d.index]
            base = self._need(("last", prev), d.timing_expr.where) if prev is not None else 0
            return base + t
        cycle = self._need(("cycle", d.index), d.queue_where)
        if not is_repeat(d.ins):
            return cycle
        n, step = d.args["n"], d.args["d"]
        assert isinstance(n, IntArg) and isinstance(step, IntArg)
        return cycle + (evaluate(n.expr, self._inner) - 1) * evaluate(step.expr, self._inner)
