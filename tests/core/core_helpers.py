"""Build Programs directly from encoded words (independent of the assembler), and run them.

`I(queue, cycle, "Add", "int8", x="S0E", y="S1E", z="S2W")` is one instruction; streams are
written as in assembly, mem operands as (bank, addr), float immediates as Python floats.
Tensor data is laid out here by hand from docs/design.md section 4, not with lpu_emu's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lpu_emu.core.reference import run_plan
from lpu_emu.core.run import run
from lpu_emu.numerics import to_planes
from lpu_emu.program import LaneMap, Program, Segment, Tensor
from lpu_emu.spec import default_isa, get_chip
from lpu_emu.spec.encoding import encode, imm_to_bits, stream_code

FILE = "t.lpu"


@dataclass
class I:  # noqa: E742 - one instruction, read like a source line
    queue: str
    cycle: int
    mnemonic: str
    dtype: str | None = None
    dtype2: str | None = None
    line: int | None = None
    values: dict = field(default_factory=dict)

    def __init__(self, queue, cycle, mnemonic, dtype=None, dtype2=None, line=None, **values):
        self.queue, self.cycle, self.mnemonic = queue, cycle, mnemonic
        self.dtype, self.dtype2, self.line, self.values = dtype, dtype2, line, values


def stream(text: str) -> int:
    return stream_code(int(text[1:-1]), text[-1].upper() == "W")


def word(i: I, chip: str = "tsp-v1") -> int:
    isa = default_isa()
    ins = isa.lookup(i.mnemonic)
    dt = isa.dtypes[i.dtype] if i.dtype else None
    values = {}
    for op in ins.operands:
        v = i.values.get(op.name, op.default)
        if v == "group":  # LW's default: a whole load group (docs/isa.md)
            v = get_chip(chip).mxm_load_streams // dt.width
        if op.kind == "stream":
            v = stream(v)
        elif op.kind == "imm32":
            v = imm_to_bits(v, dt)
        elif op.kind == "dtype2":
            v = isa.dtypes[i.dtype2].code
        values[op.name] = v
    return encode(isa, ins, dt, values)


def tensor_segments(t: Tensor, values, lanes: int = 320) -> list[Segment]:
    """The SRAM image of a tensor, laid out as design.md section 4 says."""
    image = to_planes(np.asarray(values).reshape(t.vectors(), t.shape[-1]), t.dtype, lanes)
    n, w, _ = image.shape
    if len(t.slices) == 1:  # vector i, plane p at addr + i*w + p
        return [Segment(t.slices[0], t.bank, t.addr, image.reshape(n * w, lanes).tobytes())]
    return [Segment(t.slices[p], t.bank, t.addr, image[:, p].tobytes()) for p in range(w)]


def make_program(instrs: list[I], chip: str = "tsp-v1", tensors=(), data=None,
                 lanemaps=()) -> Program:
    """A Program for `chip`; tensors: Tensor objects; data: {name: values} laid out in SRAM;
    lanemaps: (name, values) pairs."""
    c = get_chip(chip)
    index = {s.name: s.index for s in c.slices}
    segs: list[Segment] = []
    by_name = {t.name: t for t in tensors}
    for name, values in (data or {}).items():
        segs += tensor_segments(by_name[name], values, c.lanes)
    n = len(instrs)
    return Program(
        chip=c.name,
        cycle=np.array([i.cycle for i in instrs], np.int64),
        queue=np.array([index[i.queue] for i in instrs], np.int16),
        word=np.array([word(i, chip) for i in instrs], np.uint64),
        src_file=np.zeros(n, np.int16),
        src_line=np.array([i.line or k + 1 for k, i in enumerate(instrs)], np.int32),
        src_col=np.ones(n, np.int16),
        files=(FILE,),
        symbols=tuple(tensors),
        segments=tuple(segs),
        lanemaps=tuple(LaneMap(name, tuple(v)) for name, v in lanemaps),
    )


def run_ref(program: Program, **kw):
    """run() on the reference core."""
    return run(program, engine="reference", **kw)


def positions(chip: str = "tsp-v1") -> dict[str, int]:
    return {s.name: s.position for s in get_chip(chip).slices}


def width(dtype: str) -> int:
    return default_isa().dtypes[dtype].width


def latency(mnemonic: str) -> int:
    return int(default_isa().lookup(mnemonic).latency)


def vxm_case(mnemonic: str, dtype: str, x, y=None, imm=None, dtype2: str | None = None,
             chip: str = "tsp-v1", queue: str = "VXM0", lenient: bool = False):
    """Run one VXM instruction through the whole pipeline: x (and y) from SRAM, z back to SRAM.

    x's planes live in MEM_W0.., y's in MEM_W4.., z's in MEM_E0..; each Read is timed so that
    its stream passes the VXM at cycle T, when the op issues; each Write takes z's plane p as it
    passes MEM_Ep. Returns the RunResult."""
    pos, T = positions(chip), 12
    w, out = width(dtype), dtype2 or dtype
    vxm = pos[queue]
    xs = Tensor("x", dtype, (320,), tuple(f"MEM_W{p}" for p in range(w)), 0, 0)
    ys = Tensor("y", dtype, (320,), tuple(f"MEM_W{4 + p}" for p in range(w)), 0, 0)
    zs = Tensor("z", out, (320,), tuple(f"MEM_E{p}" for p in range(width(out))), 0, 0)
    prog: list[I] = []
    for p in range(w):  # Read lat 1, then one position per cycle eastwards to the VXM
        s = f"MEM_W{p}"
        prog.append(I(s, T - 1 - (vxm - pos[s]), "Read", dtype, src=(0, 0), dst=f"S{p}E"))
    ops = {"x": "S0E", "z": "S8E"}
    tensors, data = [xs, zs], {"x": x}
    if y is not None:
        for p in range(w):
            s = f"MEM_W{4 + p}"
            prog.append(I(s, T - 1 - (vxm - pos[s]), "Read", dtype, src=(0, 0), dst=f"S{w + p}E"))
        ops["y"] = f"S{w}E"
        tensors.append(ys)
        data["y"] = y
    if imm is not None:
        ops["imm"] = imm
    prog.append(I(queue, T, mnemonic, dtype, dtype2=dtype2, **ops))
    for p in range(width(out)):  # z passes MEM_Ep at T + lat + (pos - vxm)
        s = f"MEM_E{p}"
        prog.append(I(s, T + latency(mnemonic) + pos[s] - vxm, "Write", out, src=f"S{8 + p}E",
                      dst=(0, 0)))
    program = make_program(prog, chip, tensors, data)
    return run_ref(program, lenient=lenient)


__all__ = ["FILE", "I", "Tensor", "make_program", "positions", "run_plan", "run_ref", "stream",
           "vxm_case", "width", "word"]
