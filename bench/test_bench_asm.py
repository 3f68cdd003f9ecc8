"""Assembler throughput: lines per second on a big generated .lpu (workloads.big_source), as a
ratio to a plain Python pass over the same text (split into lines, strip comments, one regex
match per line, split the operands): the floor any line-by-line assembler pays in Python."""

from __future__ import annotations

import re

from workloads import best, big_source, pick

from lpu_emu.asm.assembler import assemble_text
from lpu_emu.asm.disassembler import disassemble

RESULTS: dict[str, dict] = {}
# the heading of RESULTS in the session's summary
SUMMARY = "lpu-emu assembler: ratio to a plain line split/regex pass in this run"
LINES = pick(10_000, 2_000)
_LINE = re.compile(r"\s*(?:([A-Za-z_.][\w.]*):)?\s*([A-Za-z_]\w*)\s+([@+]\S+)\s+([\w.]+)\s*(.*)")


def split_pass(text: str) -> int:
    """The baseline: what a minimal line-by-line reader does; returns the instruction count."""
    count = 0
    for line in text.splitlines():
        code = line.split(";", 1)[0]
        m = _LINE.match(code)
        if m:
            [o.strip() for o in m.group(5).split(",")]
            count += 1
    return count


def test_assembler_throughput(benchmark):
    text = big_source(LINES)
    program = assemble_text(text, "big.lpu")
    assert len(program.word) == LINES == split_pass(text)
    again = assemble_text(disassemble(program), "big.lpu")  # what it assembled is what it read
    assert again.word.tolist() == program.word.tolist()
    assert again.cycle.tolist() == program.cycle.tolist()
    lines = len(text.splitlines())
    t_asm = best(lambda: assemble_text(text, "big.lpu"), pick(3, 2))
    t_split = best(lambda: split_pass(text), 5)
    benchmark.pedantic(assemble_text, args=(text, "big.lpu"), rounds=1, iterations=1)
    RESULTS["assembler"] = figures = {
        "lines": lines, "instructions": LINES, "asm_s": t_asm, "lines_per_s": lines / t_asm,
        "split_s": t_split, "ratio_to_split_pass": t_asm / t_split}
    benchmark.extra_info.update(figures)
    assert t_asm / t_split < 500  # 3.7x the median 135 (full, 10,000 lines; quick 107)
