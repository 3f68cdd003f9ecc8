"""Hypothesis strategies for assembly sources, reusable by any test.

`programs()` draws the text of a random *valid* program for a chip preset: tensors (one slice or
spread) with or without data (`.values` / `.hex`), lane maps, `.equ` constants and labels, and
instruction lines over every instruction of the ISA with in-order issue cycles (`@` and `+`) and
operands that respect the preset (stream alignment, tensor extents, large ALUs, Repeat rules).
It is driven by isa/lpu.toml, so new instructions are covered without touching this file.

`token_soups()` draws lines of plausible-looking tokens for robustness tests.
"""

from __future__ import annotations

import math
import struct

from hypothesis import strategies as st

from lpu_emu.spec import default_isa, get_chip
from lpu_emu.spec.isa import ACC_DTYPE, SG16

INT_RANGES = {"int8": (-128, 127), "int32": (-(1 << 31), (1 << 31) - 1)}
FLOAT_TEXTS = ["1.5", "-0.25", "0.1", "inf", "-inf", "nan", "-0.0", "3.4028235e+38", "1e-45",
               "f32(0x7fc00001)", "f32(0xff800001)", "65504", "2", "-7", "1.0e10", ".5", "5."]


def _stream(draw, width: int, streams: int) -> str:
    index = draw(st.integers(0, streams // width - 1)) * width
    direction = draw(st.sampled_from("EWew"))
    s = draw(st.sampled_from("Ss"))
    return f"{s}{index}{direction}"


def _float_text(draw) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.sampled_from(FLOAT_TEXTS))
    bits = draw(st.integers(0, 0xFFFFFFFF))
    if kind == 1:
        return f"f32(0x{bits:08x})"
    value = struct.unpack("<f", struct.pack("<I", bits))[0]
    if math.isnan(value) or math.isinf(value):
        return "nan"
    return repr(value)  # a double's repr: rounds to the nearest fp32 on the way in


@st.composite
def programs(draw, chip_name: str = "lp30", max_instructions: int = 25) -> str:
    """The source text of a random valid program for the preset."""
    isa = default_isa()
    chip = get_chip(chip_name)
    lanes = chip.lanes
    streams = int(chip.p("streams_per_direction"))
    banks = int(chip.p("mem_banks"))
    addrs = int(chip.p("mem_addresses_per_bank"))
    mems = [s for s in chip.slices if s.kind == "MEM"]
    lines = [f"; random program for {chip.name}"]
    if draw(st.booleans()):
        lines.append(f".chip {chip.name}")

    # ---- tensors: placed without overlap, one (slice, bank) allocator each ----
    free: dict[tuple[str, int], int] = {}
    tensors = []  # (name, dtype, slices, extent)
    for t in range(draw(st.integers(0, 4))):
        dtype = isa.dtypes[draw(st.sampled_from(sorted(isa.dtypes)))]
        n = draw(st.integers(1, 3))
        last = draw(st.integers(1, lanes))
        shape = (n, last) if draw(st.booleans()) or n > 1 else (last,)
        spread = dtype.width > 1 and draw(st.booleans())
        if spread:
            runs = [chip.slices[i : i + dtype.width] for i in range(len(chip.slices))]
            runs = [r for r in runs if len(r) == dtype.width and all(s.kind == "MEM" for s in r)]
            group = draw(st.sampled_from(runs))
            if draw(st.booleans()):
                group = group[::-1]
            names = [s.name for s in group]
            where = f"{names[0]}..{names[-1]}"
            extent = n
        else:
            names = [draw(st.sampled_from(mems)).name]
            where = names[0]
            extent = n * dtype.width
        bank = draw(st.integers(0, banks - 1))
        addr = max(free.get((s, bank), 0) for s in names) + draw(st.integers(0, 3))
        if addr + extent > addrs:
            continue
        for s in names:
            free[(s, bank)] = addr + extent
        name = f"t{t}"
        dims = ", ".join(str(d) for d in shape)
        lines.append(f".tensor {name}, {dtype.name}, ({dims}), {where}, {bank}, {addr}")
        tensors.append((name, dtype, names, extent))
        data = draw(st.sampled_from(["none", "values", "hex"]))
        count = math.prod(shape)
        if data == "values":
            k = draw(st.integers(0, min(count, 12)))
            if dtype.kind == "int":
                lo, hi = INT_RANGES[dtype.name]
                vals = [str(draw(st.integers(lo, hi))) for _ in range(k)]
            else:
                vals = [_float_text(draw) for _ in range(k)]
            lines.append(f".values {name}" + "".join(f", {v}" for v in vals))
        elif data == "hex":
            size = n * dtype.width * lanes
            seed = draw(st.integers(0, 255))
            image = bytes((seed + 7 * i) & 0xFF for i in range(size))
            half = size // 2
            lines.append(f'.hex {name}, "{image[:half].hex()}", "{image[half:].hex(" ")}"')

    # ---- lane maps ----
    maps = {"perm": [], "any": []}
    for m in range(draw(st.integers(0, 2))):
        name = f"m{m}"
        if draw(st.booleans()):
            perm = draw(st.permutations(range(lanes)))
            lines.append(f".lanemap {name}, " + ", ".join(map(str, perm)))
            maps["perm"].append(name)
        else:
            vals = draw(st.lists(st.integers(-1, lanes - 1), max_size=8))
            lines.append(f".lanemap {name}" + "".join(f", {v}" for v in vals))
        maps["any"].append(name)
    for k in range(draw(st.integers(0, 2))):
        lines.append(f".equ C{k}, {draw(st.integers(0, 5))}")

    # ---- instructions ----
    last: dict[str, int] = {}  # queue -> last issue (after a Repeat: its last repetition)
    prev_icu: dict[str, bool] = {}
    labels: dict[str, int] = {}
    large = set(int(k) for k in chip.p("vxm_large_alus"))
    for _ in range(draw(st.integers(0, max_instructions))):
        ins = draw(st.sampled_from(isa.instructions))
        if ins.slice == "ICU":
            queues = list(chip.slices)
        else:
            queues = [s for s in chip.slices if s.kind == ins.slice
                      and (ins.alu != "large" or s.unit in large)]
        if ins.occupancy == "repeat":
            queues = [s for s in queues if s.name in prev_icu and not prev_icu[s.name]]
        pool = maps["perm" if ins.mnemonic == "Permute" else "any"]
        if any(op.kind == "lanemap" for op in ins.operands) and not pool:
            continue
        if not queues:
            continue
        q = draw(st.sampled_from(queues))
        dtype = isa.dtypes[draw(st.sampled_from(ins.dtypes))] if ins.typed else None
        dtype2 = isa.dtypes[draw(st.sampled_from(sorted(isa.dtypes)))] if ins.has_dtype2 else None
        ops = []
        repeat_nd = (1, 1)
        for op in ins.operands:
            if op.kind == "dtype2":
                continue
            if op.kind == "stream":
                acc = isa.dtypes[ACC_DTYPE.get(dtype.name if dtype else "", "fp32")]
                width = {"dtype": dtype.width if dtype else 1, "one": 1, "sg16": SG16,
                         "dtype2": dtype2.width if dtype2 else 1, "acc": acc.width,
                         "load": chip.mxm_load_streams}[op.width]
                ops.append(_stream(draw, width, streams))
            elif op.kind == "mem":
                here = [t for t in tensors if q.name in t[2]]
                if here and draw(st.booleans()):
                    name, _, _, extent = draw(st.sampled_from(here))
                    k = draw(st.integers(0, extent - 1))
                    form = draw(st.integers(0, 2))
                    ops.append(f"{name}[{k}]" if form == 0 else f"{name}+{k}" if form == 1 or k
                               else name)
                else:
                    bank, addr = draw(st.integers(0, banks - 1)), draw(st.integers(0, addrs - 1))
                    ops.append(f"{bank}:{addr}")
            elif op.kind == "imm32":
                if dtype is not None and dtype.kind == "float":
                    ops.append(_float_text(draw))
                else:
                    ops.append(str(draw(st.integers(-(1 << 31), (1 << 31) - 1))))
            elif op.kind == "lanemap":
                ops.append(draw(st.sampled_from(pool)))
            elif op.kind == "link":
                ops.append(str(draw(st.integers(0, int(chip.p("c2c_links_per_edge")) - 1))))
            elif op.kind == "simm":
                if op.default is not None and draw(st.booleans()):
                    continue
                ops.append(str(draw(st.integers(-100, 100))))
            else:  # uimm
                if op.default is not None and draw(st.booleans()):
                    continue
                hi = {"acc": int(chip.p("mxm_accumulators")) - 1, "shift": lanes - 1,
                      "count": 1000, "rep_n": 8, "rep_d": 4,
                      "rows": chip.mxm_load_streams // (dtype.width if dtype else 1),
                      }.get(op.fields[0], 0xFFFFFFFF)
                v = draw(st.integers(max(op.min, 0), hi))
                if op.fields[0] == "rep_n":
                    repeat_nd = (v, repeat_nd[1])
                if op.fields[0] == "rep_d":
                    repeat_nd = (repeat_nd[0], v)
                ops.append(f"0x{v:x}" if op.fields[0] == "imm32" else str(v))
        prev = last.get(q.name, -1)
        gap = draw(st.integers(1, 6))
        cycle = prev + gap
        choice = draw(st.integers(0, 3))
        if choice == 0 and prev >= 0:
            timing = f"+{gap}"
        elif choice == 0:
            timing = f"+{cycle}"
        elif choice == 1 and labels:
            lbl = draw(st.sampled_from(sorted(labels)))
            timing = f"@{lbl}+{cycle - labels[lbl]}" if labels[lbl] <= cycle else f"@{cycle}"
        else:
            timing = f"@{cycle}"
        prefix = ""
        if draw(st.integers(0, 4)) == 0:
            lbl = f"L{len(labels)}"
            labels[lbl] = cycle
            prefix = f"{lbl}: "
        mn = ins.mnemonic + (f".{dtype.name}" if dtype else "")
        mn += f".{dtype2.name}" if dtype2 else ""
        lines.append(f"{prefix}{q.name} {timing} {mn} {', '.join(ops)}".rstrip())
        if ins.occupancy == "repeat":
            n, d = repeat_nd
            cycle += (n - 1) * d
        last[q.name] = cycle
        prev_icu[q.name] = ins.slice == "ICU"
    return "\n".join(lines) + "\n"


TOKENS = [
    "MEM_W0", "MEM_E3", "VXM0", "VXM5", "SXM_W1", "MXM_E0", "C2C_W", "@", "+", "-", "*", "/", "%",
    "<<", ">>", "&", "|", "^", "~", "(", ")", "[", "]", ",", ":", "=", "..", "Read.int8",
    "Write.fp32", "Add.int8", "Add", "Cvt.int32.fp32", "Permute.int8", "NOP", "Repeat", "Sync",
    "ACC.int8", "Exp.fp32", "S0E", "S4W", "S31E", "S32W", "S3E", "0", "1", "-1", "320", "0x10",
    "0b101", "1.5", "inf", "nan", "f32(0x7fc00001)", "x", "x[0]", "y", "lbl:", "lbl", ".chip",
    ".equ", ".tensor", ".values", ".npy", ".hex", ".lanemap", ".file", ".loc", ".include", ".macro",
    ".endm", '"a.npy"', '"00ff"', '"x.inc"', "\\x", "\\@", ";", "int8", "fp32", "(320)", "lp30",
    "99999999999999999999999", "1e999", "((((((", "010", "\t", "\u00e9", "\x00",
]


@st.composite
def token_soups(draw) -> str:
    """Lines of random tokens from the assembler's vocabulary (and some that are not)."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        toks = draw(st.lists(st.sampled_from(TOKENS), max_size=12))
        lines.append(" ".join(toks))
    return "\n".join(lines)
