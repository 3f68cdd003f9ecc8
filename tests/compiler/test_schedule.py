"""The scheduler (compiler/schedule.py) on hand-made kernels: each resource's span, and kernels
starting where the kernels before them are done with what they use."""

from __future__ import annotations

from lpu_emu.compiler.dataflow import Slot
from lpu_emu.compiler.kernel import Kernel, Pipe
from lpu_emu.compiler.schedule import schedule, spans
from lpu_emu.compiler.target import Target
from lpu_emu.spec.encoding import stream_code

LP30 = Target.of("lp30")
ALU_A, ALU_B = 83, 84  # VXM ALUs
MEM = 5  # MEM_W77
W0, W0_PARTNER = 1, 2  # MXM_W0 and the odd plane of its pair
S0, S4, S8 = (stream_code(i, True) for i in (0, 4, 8))  # fp32 groups flowing west


def mov(queue: int, x: int, z: int, t: int = 0) -> Slot:
    return Slot(queue, "Mov", "fp32", (("x", x), ("z", z)), t)


def kernel(*pipes: Pipe) -> Kernel:
    return Kernel("k", list(pipes))


def streams(first: int, span: tuple[int, int]) -> dict:
    return {("s", first + i): span for i in range(4)}


def test_a_pipe_spans_its_queue_and_streams():
    """Ten Movs from cycle 3: the ALU is busy 3..12, the input group read 3..12, the result
    placed one cycle later (Mov's latency), 4..13."""
    got = spans(kernel(Pipe([mov(ALU_A, S0, S4, 3)], 10)), LP30)
    assert got == {("q", ALU_A): (3, 12), **streams(S0, (3, 12)), **streams(S4, (4, 13))}


def test_a_write_holds_its_slice_until_it_lands():
    """A Write lands a cycle after it issues (visible to reads from the cycle after that):
    its slice's span ends at the landing, not at the issue."""
    w = Slot(MEM, "Write", "fp32", (("src", S0), ("dst", (0, 0))), 0, "mem", 1)
    got = spans(kernel(Pipe([w], 5)), LP30)
    assert got == {("q", MEM): (0, 5), ("s", S0): (0, 4)}


def test_a_bf16_acc_holds_both_planes_of_its_pair():
    """Four bf16 ACCs, one every other cycle (each holds the pair two cycles), keep W0 and its
    odd partner busy 0..7; each reads two streams (bf16) and places its fp32 result on four,
    24 cycles after it issues."""
    acc = Slot(W0, "ACC", "bf16", (("x", S0), ("z", S8), ("acc", 0)), 0, "acc", 1)
    got = spans(kernel(Pipe([acc], 4, period=2)), LP30)
    assert got[("q", W0)] == got[("q", W0_PARTNER)] == (0, 7)
    assert {r: got[r] for r in got if r[0] == "s"} == {**{("s", S0 + i): (0, 6) for i in (0, 1)},
                                                        **streams(S8, (24, 30))}


def test_kernels_start_where_the_ones_before_are_done_with_what_they_use():
    """k1 uses ALU A for cycles 0..9 and ALU B at cycle 50. k2 (ALU A, other streams) starts
    at 10, where k1 is done with ALU A, though k1 runs to 52; k3 (ALU B) after cycle 50; k4
    shares nothing and starts at 0; k5 reads the stream group k1 places on until cycle 10."""
    k1 = kernel(Pipe([mov(ALU_A, S0, S4)], 10), Pipe([mov(ALU_B, S8, S8 + 4, 50)], 1))
    k2 = kernel(Pipe([mov(ALU_A, S8 + 8, S8 + 12)], 3))
    k3 = kernel(Pipe([mov(ALU_B, S8 + 16, S8 + 20)], 1))
    k4 = kernel(Pipe([mov(ALU_B + 1, S8 + 24, S8 + 28)], 1))
    k5 = kernel(Pipe([mov(ALU_B + 2, S4, stream_code(0, False))], 1))
    placed = schedule([k1, k2, k3, k4, k5], LP30)
    assert [(p.start, p.end) for p in placed] == [(0, 52), (10, 14), (51, 53), (0, 2), (11, 13)]


def test_a_kernel_never_starts_before_the_origin():
    placed = schedule([kernel(Pipe([mov(ALU_A, S0, S4)], 1))], LP30, origin=7)
    assert (placed[0].start, placed[0].end) == (7, 9)
