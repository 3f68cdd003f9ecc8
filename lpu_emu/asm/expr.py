"""Integer expressions and numeric values.

Expressions follow C: `| ^ & << >> + - * / %` with C precedence and left associativity, unary
`- + ~`, parentheses; `/` truncates toward zero and `%` takes the dividend's sign. Where C
leaves behaviour undefined the assembler says so instead of wrapping (chosen): every
intermediate value must fit int64 ("integer overflow"), a shift count must be 0..63, and
division by zero is an error at the operator.

An expression is parsed once into reverse Polish notation (so neither parsing long sums nor
evaluating them recurses) and evaluated later, when every symbol (including forward labels) can
be looked up. Parentheses nest at most MAX_DEPTH deep.

A *value* (float immediates, `.values` entries) is either an integer expression or a float form:
optional signs, then a decimal float literal, `inf`, `nan` or `f32(EXPR)` (exact fp32 bits).
A float form cannot be combined with operators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lpu_emu.asm.diag import Where, error
from lpu_emu.asm.floats import F32_NAN, F32_SIGN, decimal_to_f32_bits
from lpu_emu.asm.lexer import NAME_RULE, Token
from lpu_emu.errors import AsmError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
MAX_DEPTH = 32
PRECEDENCE = {"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}
FLOAT_WORDS = ("inf", "nan")


class Cursor:
    """Tokens of one line with a read position; builds `Where`s for them."""

    def __init__(self, tokens: list[Token], where_fn: Callable[[int, int], Where]):
        self.tokens = tokens
        self.pos = 0
        self.where_fn = where_fn

    def peek(self, ahead: int = 0) -> Token:
        i, tokens = self.pos + ahead, self.tokens  # past the end: the eol token
        return tokens[i] if i < len(tokens) else tokens[-1]

    def next(self) -> Token:
        tok = self.peek()
        if tok.kind != "eol":
            self.pos += 1
        return tok

    def at_end(self) -> bool:
        return self.peek().kind == "eol"

    def where(self, tok: Token) -> Where:
        return self.where_fn(tok.col, max(1, len(tok.text)))

    def where_between(self, first: Token, last: Token) -> Where:
        return self.where_fn(first.col, max(1, last.end - first.col))

    def fail(self, tok: Token, message: str, hint: str | None = None) -> AsmError:
        return error(self.where(tok), message, hint)

    def expect(self, op: str, what: str) -> Token:
        tok = self.peek()
        if not tok.is_op(op):
            raise self.fail(tok, f"expected '{op}' {what}, got {describe(tok)}")
        return self.next()

    def expect_ident(self, what: str) -> Token:
        tok = self.peek()
        if tok.kind != "ident":
            raise self.fail(tok, f"expected {what}, got {describe(tok)}", NAME_RULE)
        return self.next()


def describe(tok: Token) -> str:
    """How a token is named in messages."""
    if tok.kind == "eol":
        return "end of line"
    return f"'{tok.text}'"


@dataclass(frozen=True)
class Expr:
    """An integer expression in reverse Polish notation; `where` spans all of it."""

    rpn: tuple[tuple, ...]  # ("num", v, where) | ("sym", name, where) | ("un"|"bin", op, where)
    where: Where

    def const(self) -> int | None:
        """The value when the expression is a single literal (no symbols to look up)."""
        if len(self.rpn) == 1 and self.rpn[0][0] == "num":
            return self.rpn[0][1]
        return None


@dataclass(frozen=True)
class FloatValue:
    """A float form: fp32 bits (sign already applied); `exact` for f32(...) given bits."""

    kind: str  # "literal" | "inf" | "nan" | "bits"
    negate: bool
    payload: object  # literal text, or the Expr inside f32(...)
    where: Where


Value = Expr | FloatValue
Lookup = Callable[[str, Where], int]


def literal(value: int, where: Where) -> Expr:
    return Expr((("num", value, where),), where)


def parse_expr(cur: Cursor) -> Expr:
    """An integer expression starting at the cursor; stops at the first token that cannot
    continue it (so `@T0+2 Add.int8` ends before `Add.int8`)."""
    first = cur.peek()
    rpn: list[tuple] = []
    _binary(cur, rpn, 1, 0)
    last = cur.tokens[cur.pos - 1] if cur.pos > 0 else first
    return Expr(tuple(rpn), cur.where_between(first, last))


def _binary(cur: Cursor, rpn: list[tuple], min_prec: int, depth: int) -> None:
    _unary(cur, rpn, depth)
    while True:
        tok = cur.peek()
        prec = PRECEDENCE.get(tok.text) if tok.kind == "op" else None
        if prec is None or prec < min_prec:
            return
        cur.next()
        _binary(cur, rpn, prec + 1, depth)
        rpn.append(("bin", tok.text, cur.where(tok)))


def _unary(cur: Cursor, rpn: list[tuple], depth: int) -> None:
    ops = []
    while cur.peek().is_op("-", "+", "~"):
        ops.append(cur.next())
    tok = cur.next()
    if tok.kind == "int":
        if tok.value > INT64_MAX:  # type: ignore[operator]
            raise cur.fail(tok, f"number {tok.text} does not fit in int64 (max {INT64_MAX})")
        rpn.append(("num", tok.value, cur.where(tok)))
    elif tok.kind == "ident":
        rpn.append(("sym", tok.text, cur.where(tok)))
    elif tok.is_op("("):
        if depth >= MAX_DEPTH:
            raise cur.fail(tok, f"expression nested more than {MAX_DEPTH} parentheses deep")
        _binary(cur, rpn, 1, depth + 1)
        cur.expect(")", "to close the '('")
    elif tok.kind == "float":
        raise cur.fail(tok, f"expected an integer, got the float {tok.text}",
                       "float literals are allowed only as a whole immediate or value")
    else:
        raise cur.fail(tok, f"expected an expression, got {describe(tok)}")
    for op in reversed(ops):
        if op.text != "+":
            rpn.append(("un", op.text, cur.where(op)))


def parse_value(cur: Cursor) -> Value:
    """A float form (`-1.5`, `inf`, `nan`, `f32(0x7fc00001)`) or an integer expression."""
    start = cur.pos
    negate = False
    while cur.peek().is_op("-", "+"):
        negate ^= cur.next().text == "-"
    tok = cur.peek()
    first = cur.tokens[start]
    value: FloatValue | None = None
    if tok.kind == "float":
        cur.next()
        value = FloatValue("literal", negate, tok.text, cur.where_between(first, tok))
    elif tok.kind == "ident" and tok.text.lower() in FLOAT_WORDS:
        cur.next()
        value = FloatValue(tok.text.lower(), negate, None, cur.where_between(first, tok))
    elif tok.kind == "ident" and tok.text.lower() == "f32" and cur.peek(1).is_op("("):
        cur.next()
        cur.next()
        inner = parse_expr(cur)
        close = cur.expect(")", "to close f32(")
        value = FloatValue("bits", negate, inner, cur.where_between(first, close))
    if value is None:
        cur.pos = start
        return parse_expr(cur)
    nxt = cur.peek()
    if nxt.kind == "op" and nxt.text in PRECEDENCE:
        raise cur.fail(nxt, f"a float immediate cannot be part of an expression ('{nxt.text}')")
    return value


def float_bits(value: FloatValue, lookup: Lookup) -> int:
    """fp32 bits of a float form."""
    if value.kind == "literal":
        bits = decimal_to_f32_bits(str(value.payload))
    elif value.kind == "inf":
        bits = 0x7F800000
    elif value.kind == "nan":
        bits = F32_NAN
    else:
        inner: Expr = value.payload  # type: ignore[assignment]
        bits = evaluate(inner, lookup)
        if not 0 <= bits <= 0xFFFFFFFF:
            raise error(inner.where, f"f32() takes 32 bits (0..0xffffffff), got {bits}")
    return bits ^ F32_SIGN if value.negate else bits


def evaluate(expr: Expr, lookup: Lookup) -> int:
    """The value of an expression (C semantics on int64; errors instead of undefined behaviour)."""
    stack: list[int] = []
    for kind, arg, where in expr.rpn:
        if kind == "num":
            stack.append(arg)
        elif kind == "sym":
            stack.append(lookup(arg, where))
        elif kind == "un":
            a = stack.pop()
            stack.append(_check(-a if arg == "-" else ~a, where, f"{arg}{a}"))
        else:
            b = stack.pop()
            a = stack.pop()
            stack.append(_binop(arg, a, b, where))
    return stack[-1]


def _binop(op: str, a: int, b: int, where: Where) -> int:
    if op in ("/", "%"):
        if b == 0:
            raise error(where, "division by zero" if op == "/" else "remainder by zero")
        q = abs(a) // abs(b)
        q = q if (a < 0) == (b < 0) else -q
        r = q if op == "/" else a - b * q
    elif op in ("<<", ">>"):
        if not 0 <= b <= 63:
            raise error(where, f"shift count {b} is out of range (0..63)")
        r = a << b if op == "<<" else a >> b
    elif op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    elif op == "*":
        r = a * b
    elif op == "&":
        r = a & b
    elif op == "|":
        r = a | b
    else:
        r = a ^ b
    return _check(r, where, f"{a} {op} {b}")


def _check(r: int, where: Where, what: str) -> int:
    if not INT64_MIN <= r <= INT64_MAX:
        raise error(where, f"integer overflow: {what} does not fit in 64 bits")
    return r
