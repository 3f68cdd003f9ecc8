"""The fast core's own machinery: dispatch tables, bounds, buffers, the compile message, the
cache guard. (Its results are held to the reference's in test_differential.py.)"""

from __future__ import annotations

import time

import numpy as np
import pytest
from core_helpers import I, make_program, positions
from test_differential import assert_cores_agree

from lpu_emu import numerics as N
from lpu_emu.core import fast
from lpu_emu.core import fast_loop as F
from lpu_emu.core.plan import make_plan
from lpu_emu.core.state import new_machine
from lpu_emu.errors import LoadError
from lpu_emu.program import Tensor
from lpu_emu.spec import default_isa, get_chip


def reads(n: int, chip: str = "tsp-v1"):
    """MEM_W0 reads onto S0E every cycle for n cycles (a Repeat)."""
    prog = [I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E")]
    if n > 1:
        prog.append(I("MEM_W0", 1, "Repeat", n=n - 1, d=1, step=1))
    return make_program(prog, chip)


def test_every_isa_instruction_has_a_fast_op():
    isa = default_isa()
    table = fast.opmap(isa)
    assert [i.mnemonic for i in isa.instructions if table[i.opcode] < 0] == []


def test_frozen_constants_match_plan_events_and_isa():
    fast._check_constants(default_isa())  # raises CoreError naming what differs


def test_stream_memory_follows_live_values_not_program_length():
    """The value ring is sized by the placements any window of max latency + chip width cycles
    makes: 100 or 20,000 reads in a row need the same, and the ring wraps many times."""
    ops = fast.opmap(default_isa())
    chip = get_chip("tsp-v1")
    short = fast.Sizes(make_plan(reads(100), chip, default_isa()), ops)
    long = fast.Sizes(make_plan(reads(20_000), chip, default_isa()), ops)
    assert long.nv == short.nv < 200
    assert long.nbytes(320) == short.nbytes(320)
    assert_cores_agree(reads(3000), lenient=False)


@pytest.mark.parametrize("bound", ("nv", "rd"))
def test_a_bound_too_small_fails_loudly(monkeypatch, bound):
    """If fast.py ever under-sized a structure, the loop stops with an error, never a value from
    a recycled slot or a shared bucket."""
    real = fast.Sizes.__init__

    def shrunk(self, plan, ops):
        real(self, plan, ops)
        setattr(self, bound, 2)

    monkeypatch.setattr(fast.Sizes, "__init__", shrunk)
    monkeypatch.setattr(fast, "_prepared", type(fast._prepared)())
    program = reads(50)
    chip = get_chip("tsp-v1")
    with pytest.raises(fast.CoreError, match="too small"):
        fast.run_plan(make_plan(program, chip, default_isa()), new_machine(chip, program), False)


def test_violation_buffer_grows():
    """200 Writes of a stream nothing is on: 200 no-value violations, past the first buffer."""
    prog = [I("MEM_E0", 5, "Write", "int8", src="S3W", dst=(0, 0)),
            I("MEM_E0", 6, "Repeat", n=199, d=1, step=1)]
    raw, stopped = assert_cores_agree(make_program(prog, "tsp-v1"), lenient=True)
    assert len(raw) == 200 and stopped == -1


def test_a_bank_outside_the_slice_is_refused():
    program = make_program([I("MEM_W0", 0, "Read", "int8", src=(3, 0), dst="S0E")], "tsp-v1")
    chip = get_chip("tsp-v1")
    with pytest.raises(LoadError, match="bank"):
        fast.run_plan(make_plan(program, chip, default_isa()), new_machine(chip, program), True)


class _Loop:
    """Stands for the dispatcher: no signatures while it 'compiles', one when loaded."""

    def __init__(self, seconds, compiled_at_start):
        self.seconds = seconds
        self.signatures = ["loaded"] if compiled_at_start else []

    def __call__(self):
        time.sleep(self.seconds)
        self.signatures = ["compiled"]
        return 7


def test_first_call_says_it_is_compiling_only_when_it_is(monkeypatch, capsys):
    monkeypatch.setattr(fast, "_first_call", True)
    assert fast._call(_Loop(0.01, False)) == 7  # quick: quiet
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(fast, "_first_call", True)
    fast._call(_Loop(1.4, True))  # slow, but loaded from the cache: a long run, quiet
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(fast, "_first_call", True)
    fast._call(_Loop(1.4, False))  # still compiling after a second
    assert "compiling the lpu-emu core (first run" in capsys.readouterr().err
    fast._call(_Loop(1.4, False))  # later calls never print
    assert capsys.readouterr().err == ""


class _FakeCache:
    def __init__(self, path):
        self.cache_path, self.flushed = str(path), 0

    def flush(self):
        self.flushed += 1


def test_cache_guard_drops_the_loop_when_a_helper_module_changed(monkeypatch, tmp_path):
    cache = _FakeCache(tmp_path)
    monkeypatch.setattr(F.run_issues, "_cache", cache)
    assert fast.invalidate_stale_cache() is True  # no marker yet: flush, write the marker
    assert (tmp_path / "lpu_emu_fast_loop.helpers").read_text() == fast.helpers_hash()
    assert fast.invalidate_stale_cache() is False and cache.flushed == 1
    (tmp_path / "lpu_emu_fast_loop.helpers").write_text("an older jit_ops.py")
    assert fast.invalidate_stale_cache() is True and cache.flushed == 2


def test_run_plan_leaves_the_machine_like_the_reference_after_a_strict_stop():
    """A strict stop drops the writes still pending: a Write issued before the violating issue
    but landing after it never reaches SRAM, on both cores."""
    prog = [I("MEM_W0", 0, "Read", "int8", src=(0, 0), dst="S0E"),
            I("MEM_W0", 1, "Write", "int8", src="S0E", dst=(0, 1)),  # lands at 2
            I("VXM0", 2, "Add", "int8", x="S9E", y="S9E", z="S1E")]  # no value: stops at 2
    program = make_program(prog, "tsp-v1")
    raw, stopped = assert_cores_agree(program, lenient=False)
    assert stopped == 2 and raw[0][0] == F.NO_VALUE
    chip = get_chip("tsp-v1")
    m = new_machine(chip, program)
    fast.run_plan(make_plan(program, chip, default_isa()), m, False)
    assert not m.sram[:, 0, 1].any()


@pytest.mark.parametrize("dtype", ("fp16", "bf16", "fp8e4m3", "int8"))
def test_acc_on_random_bits_matches_the_reference(dtype):
    """8 weight rows and 3 activation vectors of random bits (NaNs with every payload, infinities,
    subnormals) through LW, IW, ACC on 320 lanes: the vectorised fp32 loop may pick either
    operand's NaN, so the core replays NaN lanes with numpy's rule; int8 is exact."""
    rng = np.random.default_rng(3)
    pos = positions("tsp-v1")
    pm, w = pos["MXM_W0"], default_isa().dtypes[dtype].width
    decode = {"fp16": lambda b: b.view(np.float16), "bf16": N.bf16_bits_to_f32,
              "fp8e4m3": N.fp8_bits_to_f32, "int8": lambda b: b.view(np.int8)}[dtype]

    def values(n):  # random bits, as values the tensor layout encodes back to those bits
        return decode(rng.integers(0, 1 << (8 * w), (n, 320)).astype(f"<u{w}"))

    wslices = tuple(f"MEM_W{2 + p}" for p in range(w))
    xslices = tuple(f"MEM_W{6 + p}" for p in range(w))
    tensors = [Tensor("W", dtype, (8, 320), wslices, 0, 0),
               Tensor("x", dtype, (3, 320), xslices, 0, 0)]
    prog, t0 = [], 60
    for k in range(8):  # row k's planes meet at the plane at t0 + k
        for p in range(w):
            ps = pos[wslices[p]]
            prog.append(I(wslices[p], t0 + k - 1 - (ps - pm), "Read", dtype, src=(0, k),
                          dst=f"S{p}W"))
        prog.append(I("MXM_W0", t0 + k, "LW", dtype, src="S0W", rows=1))
    prog.append(I("MXM_W0", t0 + 8, "IW"))
    for j in range(3):
        tj = t0 + 8 + 20 + 1 + j * w  # fp16/bf16 ACCs keep the plane pair busy for 2 cycles
        for p in range(w):
            ps = pos[xslices[p]]
            prog.append(I(xslices[p], tj - 1 - (ps - pm), "Read", dtype, src=(0, j),
                          dst=f"S{4 + p}W"))
        prog.append(I("MXM_W0", tj, "ACC", dtype, x="S4W", z="S8E", acc=j % 2))
    prog.sort(key=lambda i: i.cycle)
    program = make_program(prog, "tsp-v1", tensors, {"W": values(8), "x": values(3)})
    raw, stopped = assert_cores_agree(program, lenient=False)
    assert raw == [] and stopped == -1
