"""Per-element expressions: what the lowering hands a VXM kernel to compute.

An `Expr` is a small tree over leaves (tensors read from SRAM) and immediates. Leaves say how a
tensor meets the output's grid: `full` (same rows and columns), `row` (one row broadcast down
the rows: a bias), `col` (one value per row, stored broadcast across the lanes: a mean, a max).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Leaf:
    name: str
    mode: str = "full"  # "full" | "row" | "col"
    row: int = 0  # "row": which row is broadcast; "full"/"col": offset of the first row
    chunk: int | None = None  # read this column chunk, not the output's


@dataclass(frozen=True)
class Imm:
    value: float


@dataclass(frozen=True)
class Ex:
    mnemonic: str  # a VXM mnemonic (Add, MulI, Exp, Cvt, ...)
    args: tuple  # Ex | Leaf; immediates go in `imm`
    imm: float | None = None
    dtype: str = "fp32"
    dtype2: str | None = None


def leaves(e) -> list[Leaf]:
    if isinstance(e, Leaf):
        return [e]
    if isinstance(e, Ex):
        out = []
        for a in e.args:
            out += [x for x in leaves(a) if x not in out]
        return out
    return []


def size(e) -> tuple[int, int]:
    """(ALU ops, of which transcendental) in the tree."""
    if not isinstance(e, Ex):
        return 0, 0
    ops, large = 1, int(e.mnemonic in ("Exp", "Rsqrt", "Tanh", "Erf"))
    for a in e.args:
        o, g = size(a)
        ops, large = ops + o, large + g
    return ops, large


# constructors that read like the math
def add(a, b):
    if isinstance(b, Imm):
        return Ex("AddI", (a,), b.value)
    if isinstance(a, Imm):
        return Ex("AddI", (b,), a.value)
    return Ex("Add", (a, b))


def sub(a, b):
    if isinstance(b, Imm):
        return Ex("AddI", (a,), -b.value)
    if isinstance(a, Imm):  # c - b = (-b) + c: negation is exact, so one rounding as in Sub
        return Ex("AddI", (Ex("Neg", (b,)),), a.value)
    return Ex("Sub", (a, b))


def mul(a, b):
    if isinstance(b, Imm):
        return Ex("MulI", (a,), b.value)
    if isinstance(a, Imm):
        return Ex("MulI", (b,), a.value)
    return Ex("Mul", (a, b))


def unary(mnemonic: str, a):
    return Ex(mnemonic, (a,))


def substitute(e, name: str, value):
    """e with every Leaf named `name` replaced by `value`."""
    if isinstance(e, Leaf):
        return value if e.name == name else e
    if isinstance(e, Ex):
        return Ex(e.mnemonic, tuple(substitute(a, name, value) for a in e.args), e.imm, e.dtype,
                  e.dtype2)
    return e


def shared(e) -> bool:
    """True if a leaf or a subexpression is used twice (its uses would issue at different
    cycles, so one of them must wait)."""
    seen_ids: set[int] = set()
    seen_leaves: set = set()

    def walk(x) -> bool:
        if isinstance(x, Leaf):
            if x in seen_leaves:
                return True
            seen_leaves.add(x)
            return False
        if isinstance(x, Ex):
            if id(x) in seen_ids:
                return True
            seen_ids.add(id(x))
            return any(walk(a) for a in x.args)
        return False

    return walk(e)
