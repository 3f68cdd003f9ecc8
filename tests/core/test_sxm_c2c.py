"""SXM lane movement and C2C loopback through the pipeline (tsp-v1: C2C_W 0, SXM_W0 at 2,
MEM_W{43-k} at 3 + k; MEM_E43 at 91, SXM_E at 92, MXM_E at 93, C2C_E at 94).

SXM cases: plane p of x lives in MEM_W{43-p} (position 3 + p) and flows west on S{p}W: read at
T - 1 - (1 + p) it passes SXM_W0 at T = 20. The result is placed at 2 at T + latency on S16E..;
plane q is written by MEM_W{43-q} to bank 1 as it passes (T + latency + 1 + q)."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import I, Tensor, latency, make_program, run_ref

T = 20


def sxm_run(mnemonic: str, dtype: str, x: np.ndarray, n_streams: int, **operands):
    """x: [n_streams, 320] values (one vector per stream for 1-byte dtypes) or [320] values."""
    width = {"int8": 1, "fp8e4m3": 1, "fp16": 2, "bf16": 2, "fp32": 4, "int32": 4}[dtype]
    planes = max(width, n_streams)
    lat = latency(mnemonic)
    if n_streams == 1:
        xs = [Tensor("x", dtype, (320,), tuple(f"MEM_W{43 - p}" for p in range(width)), 0, 0)]
        zs = [Tensor("z", dtype, (320,), tuple(f"MEM_W{43 - p}" for p in range(width)), 1, 0)]
        data = {"x": x}
    else:  # one 1-byte tensor per stream
        xs = [Tensor(f"x{p}", dtype, (320,), (f"MEM_W{43 - p}",), 0, 0) for p in range(planes)]
        zs = [Tensor(f"z{p}", dtype, (320,), (f"MEM_W{43 - p}",), 1, 0) for p in range(planes)]
        data = {f"x{p}": x[p] for p in range(planes)}
    prog = [I(f"MEM_W{43 - p}", T - 2 - p, "Read", dtype, src=(0, 0), dst=f"S{p}W")
            for p in range(planes)]
    prog.append(I("SXM_W0", T, mnemonic, dtype, x="S0W", z="S16E", **operands))
    prog += [I(f"MEM_W{43 - q}", T + lat + 1 + q, "Write", dtype, src=f"S{16 + q}E",
               dst=(1, 0)) for q in range(planes)]
    return make_program(prog, tensors=xs + zs, data=data,
                        lanemaps=operands.pop("_maps", ()))


def values(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "int8":
        return rng.integers(-128, 128, 320)
    return (rng.standard_normal(320) * 100).astype(np.float32)


SHIFTS = {
    "ShiftUp": lambda x, n: np.concatenate([x[n:], np.zeros(min(n, 320), x.dtype)]),
    "ShiftDown": lambda x, n: np.concatenate([np.zeros(min(n, 320), x.dtype), x[:320 - n]])[:320],
    "Rotate": lambda x, n: np.roll(x, -n),
}


@pytest.mark.parametrize("n", [0, 1, 160, 319, 320, 511])
@pytest.mark.parametrize("mnemonic", SHIFTS)
def test_shifts_move_whole_fp32_elements(mnemonic, n):
    x = values("fp32")
    r = run_ref(sxm_run(mnemonic, "fp32", x, 1, n=n))
    assert r.violations == []
    want = SHIFTS[mnemonic](x, n % 320 if mnemonic == "Rotate" else min(n, 320))
    assert r.tensor("z").tolist() == want.tolist()


def test_permute_and_distribute_follow_the_lane_map():
    x = values("fp32")
    reverse = list(range(319, -1, -1))
    bcast = [7] * 100 + [-1] * 20 + list(range(150))  # 270 entries: the rest -1 (zero)
    maps = (("reverse", reverse), ("bcast", bcast))
    r = run_ref(sxm_run("Permute", "fp32", x, 1, map=0, _maps=maps))
    assert r.tensor("z").tolist() == x[::-1].tolist()
    r = run_ref(sxm_run("Distribute", "fp32", x, 1, map=1, _maps=maps))
    want = np.concatenate([np.full(100, x[7]), np.zeros(20), x[:150], np.zeros(50)])
    assert r.tensor("z").tolist() == want.astype(np.float32).tolist()


def test_transpose_swaps_streams_and_lanes_in_16x16_blocks():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(16, 320))
    r = run_ref(sxm_run("Transpose", "int8", x, 16))
    assert r.violations == []
    z = np.stack([r.tensor(f"z{i}") for i in range(16)])
    for i in range(16):
        for k in range(20):
            for j in range(16):
                assert z[i, 16 * k + j] == x[j, 16 * k + i]


def c2c_program(receive_at: int, link_latency: int = 200):
    # MEM_E43 (91) reads at 0 onto S0E: at C2C_E (94) at 4, where Send issues; the vector
    # arrives back at 4 + 200 = 204. Receive at 204 places it on S1W at (94, 205), which passes
    # MEM_E43 at 208: written to bank 1.
    x = Tensor("x", "int8", (320,), ("MEM_E43",), 0, 0)
    z = Tensor("z", "int8", (320,), ("MEM_E43",), 1, 0)
    prog = [I("MEM_E43", 0, "Read", "int8", src=(0, 0), dst="S0E"),
            I("C2C_E", 4, "Send", "int8", src="S0E", link=3),
            I("C2C_E", receive_at, "Receive", "int8", link=3, z="S1W"),
            I("MEM_E43", receive_at + 4, "Write", "int8", src="S1W", dst=(1, 0))]
    return make_program(prog, tensors=[x, z], data={"x": np.arange(320) % 100})


def test_c2c_loopback_arrives_after_the_link_latency():
    r = run_ref(c2c_program(4 + 200))
    assert r.violations == []
    assert (r.tensor("z") == np.arange(320) % 100).all()
    assert r.cycles == 209  # the Write at 208 lands at 209


@pytest.mark.parametrize("receive_at", [203, 205])
def test_c2c_receive_off_by_one_cycle_gets_nothing(receive_at):
    r = run_ref(c2c_program(receive_at))
    assert [v.message for v in r.violations] == [
        f"cycle {receive_at}: C2C_E: no-value: nothing arrives on link 3 at this cycle (t.lpu:3)"]
    assert r.stopped
