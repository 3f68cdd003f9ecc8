"""Plan decoding speed: a 10^6-instruction program becomes a Plan (decode, validate every field,
expand Repeats, static checks, sort), as a ratio to np.sort of as many int64 values in the same
run. A compiled model is 10^5..10^6 instructions; loading one must take well under a second."""

from __future__ import annotations

import time

import numpy as np
from workloads import pick

from lpu_emu.core.plan import make_plan
from lpu_emu.program import Program
from lpu_emu.spec import default_isa, get_chip
from lpu_emu.spec.encoding import encode, stream_code

RESULTS: dict[str, dict] = {}
N = pick(1_000_000, 200_000)
ROUNDS = pick(5, 3)


def _word(isa, mnemonic: str, dtype: str | None, **values) -> int:
    ins = isa.lookup(mnemonic)
    return encode(isa, ins, isa.dtypes[dtype] if dtype else None, values)


def big_program(n: int = N) -> Program:
    """n instructions on lp30: Reads and Writes on every MEM slice (addresses varying), Adds and
    Muls on the 16 VXM ALUs, NOPs, and a Repeat every 64th MEM instruction; each queue issues
    every other cycle, so the schedule is dense and free of static violations."""
    isa, chip = default_isa(), get_chip("lp30")
    rng = np.random.default_rng(0)
    mem = np.array([s.index for s in chip.slices if s.kind == "MEM"])
    vxm = np.array([s.index for s in chip.slices if s.kind == "VXM"])
    kind = rng.integers(0, 4, n)  # 0 Read, 1 Write, 2 Add/Mul, 3 NOP on a VXM queue
    queue = np.where(kind < 2, mem[rng.integers(0, len(mem), n)], vxm[rng.integers(0, 16, n)])
    read = _word(isa, "Read", "int8", src=(0, 0), dst=stream_code(0, False))
    write = _word(isa, "Write", "int8", src=stream_code(1, True), dst=(1, 0))
    add = _word(isa, "Add", "int8", x=stream_code(0, False), y=stream_code(1, False),
                z=stream_code(2, True))
    nop = _word(isa, "NOP", None, n=1)
    words = np.choose(kind, [read, write, add, nop]).astype(np.uint64)
    addr = rng.integers(0, 4096, n).astype(np.uint64) << np.uint64(isa.fields["addr"].lsb)
    words = np.where(kind < 2, words | addr, words)
    order = np.argsort(queue, kind="stable")  # queue order
    starts = np.r_[0, np.flatnonzero(np.diff(queue[order])) + 1]
    sizes = np.diff(np.r_[starts, n])
    first = np.zeros(n, bool)
    first[order[starts]] = True
    repeat = _word(isa, "Repeat", None, n=4, d=2, step=1)
    words = np.where((kind < 2) & ~first & (np.arange(n) % 64 == 1), np.uint64(repeat), words)
    # every queue issues every other cycle; a Repeat (n=4, d=2) takes 8 cycles: leave it 10
    after = np.where(words == repeat, 10, 2)[order]  # the gap after each, in queue order
    gap = np.r_[2, after[:-1]]
    run = np.cumsum(gap)
    cycle = np.empty(n, np.int64)
    cycle[order] = run - np.repeat(run[starts] - gap[starts], sizes)
    z16 = np.zeros(n, np.int16)
    return Program("lp30", cycle, queue.astype(np.int16), words, z16,
                   np.arange(1, n + 1, dtype=np.int32), z16.copy(), files=("big.lpu",))


def _median(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def test_plan_decoding_throughput(benchmark):
    program, chip, isa = big_program(), get_chip("lp30"), default_isa()
    plan = make_plan(program, chip, isa)
    assert len(plan) > N and not plan.issues[:, 19].any()  # no static violation (VIOL column)
    t_plan = _median(lambda: make_plan(program, chip, isa), ROUNDS)
    benchmark.pedantic(make_plan, args=(program, chip, isa), rounds=1, iterations=1)
    values = np.random.default_rng(1).integers(0, 2**40, N)
    t_sort = _median(lambda: np.sort(values), ROUNDS)
    figures = {"instructions": N, "issues": len(plan), "plan_s": t_plan,
               "instructions_per_s": N / t_plan, "sort_s": t_sort,
               "ratio_to_np_sort": t_plan / t_sort}
    benchmark.extra_info.update(figures)
    RESULTS["plan_decode"] = figures
    # a Python loop per instruction (the decoder before) was ~400x np.sort; median 16 (full,
    # 10^6; quick 9.9): 3.1x
    assert t_plan / t_sort < 50, f"a 10^6-instruction Plan took {t_plan:.2f} s"


def pytest_terminal_summary_lines() -> list[str]:
    lines = []
    for name, f in RESULTS.items():
        lines.append(f"{name}: {f['instructions_per_s'] / 1e6:.2f} M instructions/s "
                     f"({f['plan_s']:.3f} s for {f['instructions']:,} instructions, "
                     f"{f['issues']:,} issues); {f['ratio_to_np_sort']:.1f}x np.sort of "
                     f"{f['instructions']:,} int64")
    return lines

