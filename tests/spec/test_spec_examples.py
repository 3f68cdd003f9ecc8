"""Every instruction's `example` in isa/lpu.toml is a well-formed instruction line for lp30: a
queue of the right slice kind, a timing, the mnemonic with allowed dtypes, and its operands."""

from __future__ import annotations

import re

import pytest

from lpu_emu.spec.chip import get_chip
from lpu_emu.spec.isa import Instruction, default_isa

ISA = default_isa()
LP30 = get_chip("lp30")
LINE = re.compile(
    r"^(?P<queue>\S+)\s+(?P<timing>[@+]\d+)\s+(?P<mnemonic>\S+)(?:\s+(?P<operands>.*))?$"
)
STREAM = re.compile(r"^S(\d+)([EW])$")


def parts(ins: Instruction) -> re.Match:
    m = LINE.match(ins.example)
    assert m, f"{ins.mnemonic}: example {ins.example!r} is not QUEUE TIMING MNEMONIC OPERANDS"
    return m


@pytest.mark.parametrize("ins", ISA.instructions, ids=lambda i: i.mnemonic)
def test_example_queue_is_an_lp30_slice_of_the_right_kind(ins: Instruction) -> None:
    queue = LP30.slice_named(parts(ins)["queue"])
    assert queue is not None, f"{ins.mnemonic}: {parts(ins)['queue']} is not an lp30 queue"
    if ins.slice != "ICU":  # ICU instructions go on the queue they control
        assert queue.kind == ins.slice
    if ins.alu == "large":
        assert queue.unit in LP30.p("vxm_large_alus")


@pytest.mark.parametrize("ins", ISA.instructions, ids=lambda i: i.mnemonic)
def test_example_mnemonic_and_dtypes(ins: Instruction) -> None:
    name, *suffixes = parts(ins)["mnemonic"].split(".")
    assert name == ins.mnemonic
    expected = (1 if ins.typed else 0) + (1 if ins.has_dtype2 else 0)
    assert len(suffixes) == expected
    if ins.typed:
        assert suffixes[0] in ins.dtypes
    if ins.has_dtype2:
        assert suffixes[1] in ISA.dtypes


@pytest.mark.parametrize("ins", ISA.instructions, ids=lambda i: i.mnemonic)
def test_example_operands_match_the_spec(ins: Instruction) -> None:
    text = parts(ins)["operands"]
    given = [t.strip() for t in text.split(",")] if text else []
    ops = [op for op in ins.operands if op.kind != "dtype2"]
    required = [op for op in ops if op.default is None]
    assert len(required) <= len(given) <= len(ops)
    for op, token in zip(ops, given, strict=False):
        if op.kind == "stream":
            m = STREAM.match(token)
            assert m, f"{ins.mnemonic} {op.name}: {token!r} is not a stream"
            assert int(m[1]) < LP30.p("streams_per_direction")
        elif op.kind in ("uimm", "simm", "link"):
            assert re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)", token), (ins.mnemonic, op.name, token)
        elif op.kind == "lanemap":
            assert token.isidentifier()
