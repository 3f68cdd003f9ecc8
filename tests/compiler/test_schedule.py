"""The scheduler (compiler/schedule.py) on hand-made kernels: each resource's span, and kernels
starting where the kernels before them are done with what they use."""

from __future__ import annotations

from lpu_emu.compiler.dataflow import Slot
from lpu_emu.compiler.kernel import Kernel, Pipe
from lpu_emu.compiler.schedule import Placed, data_bound, schedule, spans
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


def write(addr: int, t: int = 0) -> Slot:
    return Slot(MEM, "Write", "fp32", (("src", S0), ("dst", (0, addr))), t, "mem", 1)


def read(addr: int, t: int = 0) -> Slot:
    return Slot(MEM, "Read", "fp32", (("src", (0, addr)), ("dst", S4)), t, "mem", 1)


def test_the_data_bound_orders_kernels_by_the_rows_they_share():
    """Kernels as placed (the starts are ignored, the lengths kept), one Write or Read pipe of
    rows each: k1 writes rows 0..9 (landing at 1..10); k2 reads 5..9 after the last lands (11);
    k3 reads rows of its own (0); k4 rewrites 0..4, its first write landing after k1's last
    (start 10; it overlaps no row k2 reads); k5 rewrites 7..8 after k2's last read of them
    (k2 at 11 reads 5..9 at 11..15: start 15); k6 reads 5..9 after k5's writes land (16..17),
    however many reads came before (start 18). Queues, streams and ALUs impose nothing."""
    ks = [kernel(Pipe([write(0)], 10)), kernel(Pipe([read(5)], 5)),
          kernel(Pipe([read(100)], 5)), kernel(Pipe([write(0)], 5)),
          kernel(Pipe([write(7)], 2)), kernel(Pipe([read(5)], 5))]
    lengths = [11, 10, 20, 6, 3, 7]
    placed = [Placed(k, 1000 * i, 1000 * i + n)
              for i, (k, n) in enumerate(zip(ks, lengths, strict=True))]
    starts = [0, 11, 0, 10, 15, 18]
    ends = [s + n for s, n in zip(starts, lengths, strict=True)]
    assert data_bound(placed, LP30) == max(ends) == 25
    assert data_bound(placed[:4], LP30) == 21  # k2: 11 + 10
    assert data_bound([placed[0], placed[2]], LP30) == 20  # no rows shared: k3 alone, 0 + 20
    # reads after reads: k6 right after k1 (11 + 7), not after k2's reads (16 + 7 = 23)
    assert data_bound([placed[0], placed[1], placed[5]], LP30) == 21


def test_the_data_bound_of_a_compiled_layer_is_below_its_schedule():
    """The scheduler also keeps queues and streams apart, so its cycles are at least the data
    bound; on the built-in BERT layer at seq 16 (bf16) resources add 28% to it."""
    from lpu_emu.compiler.builtin import build
    c = build("bert-layer", seq=16, dtype="bf16").compiled
    end = max(p.end for p in c.placed)
    assert data_bound(c.placed, LP30) == 8_735
    assert end == 11_210
