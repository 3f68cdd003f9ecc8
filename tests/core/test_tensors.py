"""RunResult.tensor for every dtype and both layouts, and run(inputs=...) (docs/design.md
section 4). The SRAM images are laid out by tests/core/core_helpers.py, independently."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import Tensor, make_program, run_ref
from numeric_cases import DTYPES, TYPED, assert_same, sample

from lpu_emu.core.state import mem_ordinal
from lpu_emu.errors import UsageError
from lpu_emu.spec import get_chip

WIDTH = {"int8": 1, "int32": 4, "fp16": 2, "bf16": 2, "fp8e4m3": 1, "fp32": 4}
RESULT_TYPE = {"int8": np.int8, "int32": np.int32, "fp16": np.float16, "bf16": np.float32,
               "fp8e4m3": np.float32, "fp32": np.float32}


def layouts(dtype: str) -> list[tuple[str, ...]]:
    w = WIDTH[dtype]
    one = [("MEM_E7",)]
    return one if w == 1 else one + [tuple(f"MEM_W{10 + p}" for p in range(w))]


CASES = [(d, s) for d in DTYPES for s in layouts(d)]


@pytest.mark.parametrize(("dtype", "slices"), CASES, ids=[f"{d}-{len(s)}" for d, s in CASES])
def test_tensor_decodes_every_dtype_and_layout(dtype, slices):
    shape = (2, 3, 7)  # 6 vectors of 7 lanes each
    values = sample(dtype, 11, n=42).reshape(shape)
    t = Tensor("t", dtype, shape, slices, 1, 100)
    feed = values.astype(np.float32) if dtype not in ("int8", "int32") else values
    r = run_ref(make_program([], tensors=[t], data={"t": feed}))
    got = r.tensor("t")
    assert got.dtype == RESULT_TYPE[dtype] and got.shape == shape
    assert_same(got.reshape(-1), values.reshape(-1))


def test_one_slice_layout_bytes_by_hand():
    # fp32 1.0 is 0x3F800000: planes (bytes) 00 00 80 3F, vector i plane p at addr + 4i + p
    t = Tensor("t", "fp32", (2, 320), ("MEM_E7",), 0, 8)
    values = np.zeros((2, 320), np.float32)
    values[1, 3] = 1.0
    r = run_ref(make_program([], tensors=[t], data={"t": values}))
    unit = mem_ordinal(get_chip("tsp-v1"), "MEM_E7")
    assert r.sram[unit, 0, 12:16, 3].tolist() == [0x00, 0x00, 0x80, 0x3F]
    assert r.sram[unit, 0, 8:12, 3].tolist() == [0, 0, 0, 0]


def test_inputs_overwrite_the_tensor():
    t = Tensor("t", "bf16", (320,), ("MEM_W0", "MEM_W1"), 0, 0)
    program = make_program([], tensors=[t], data={"t": np.ones(320)})
    new = np.linspace(-1, 1, 320)
    r = run_ref(program, inputs={"t": new})
    want = new.astype(np.float32).astype(TYPED["bf16"]).astype(np.float32)  # rounded to bf16
    assert r.tensor("t").tolist() == want.tolist()


def test_input_errors_name_what_is_wrong():
    t = Tensor("t", "int8", (4, 320), ("MEM_W0",), 0, 0)
    u = Tensor("u", "fp16", (320,), ("MEM_W1", "MEM_W2"), 0, 0)
    program = make_program([], tensors=[t, u])
    with pytest.raises(UsageError) as e:
        run_ref(program, inputs={"v": np.zeros(3)})
    assert "no tensor named 'v'" in e.value.message and e.value.hint == "tensors: t, u"
    with pytest.raises(UsageError) as e:
        run_ref(program, inputs={"t": np.zeros((320, 4))})
    assert e.value.message == ("input 't': shape (320, 4) does not match the tensor's shape "
                               "(4, 320)")
    with pytest.raises(UsageError, match="not numbers"):
        run_ref(program, inputs={"u": np.array(["a"] * 320)})
    with pytest.raises(UsageError, match=r"values -129\.\.0 do not fit int8"):
        run_ref(program, inputs={"t": np.full((4, 320), -129) * np.eye(4, 320, dtype=int)})
    with pytest.raises(UsageError, match="non-integer"):
        run_ref(program, inputs={"t": np.full((4, 320), 0.5)})
    with pytest.raises(UsageError) as e:
        run_ref(program).tensor("nope")
    assert e.value.hint == "tensors: t, u"
