"""The assembly language, feature by feature (design.md section 9 and the documented choices)."""

import textwrap
from fractions import Fraction

import numpy as np
import pytest

from lpu_emu.asm import assemble_file, assemble_text, disassemble
from lpu_emu.errors import AsmError
from lpu_emu.spec import default_isa, get_chip
from lpu_emu.spec.encoding import decode

ISA = default_isa()
LP30 = get_chip("lp30")


def asm(src: str, **kw):
    return assemble_text(textwrap.dedent(src), "t.lpu", **kw)


def message(src: str, **kw) -> str:
    with pytest.raises(AsmError) as info:
        asm(src, **kw)
    return info.value.render().splitlines()[0]


def queue_names(p) -> list[str]:
    chip = get_chip(p.chip)
    return [chip.slices[int(q)].name for q in p.queue]


def imm(p, i: int) -> int:
    return decode(ISA, int(p.word[i])).values["imm"]


# ---- timing, labels, expressions ----

def test_the_design_doc_example():
    p = asm("""\
        ; vecadd.lpu: z = x + y on 320 int8 lanes
        .chip lp30
        .equ T0, 10
        .tensor x, int8, (320), MEM_W0, 0, 0
        .values x, 1, 2, 3
        .tensor y, int8, (320), MEM_W1, 0, 0
        .tensor z, int8, (320), MEM_E0, 0, 0
        start:
                MEM_W0  @T0     Read.int8   x, S0E
                MEM_W1  @T0     Read.int8   y[0], S1E
                VXM0    +T0+2   Add.int8    S0E, S1E, S2W
                MEM_E0  @start+9 Write.int8 S2W, z
        """)
    assert p.cycle.tolist() == [10, 10, 12, 19]
    assert queue_names(p) == ["MEM_W0", "MEM_W1", "VXM0", "MEM_E0"]
    assert p.src_line.tolist() == [9, 10, 11, 12]
    assert p.src_col.tolist() == [9, 9, 9, 9]
    assert [s.slice for s in p.segments] == ["MEM_W0"]
    assert p.segments[0].data[:4] == bytes([1, 2, 3, 0]) and len(p.segments[0].data) == 320


def test_forward_labels_and_relative_timing():
    p = asm("""\
        VXM0 @done-2 NOP 1        ; a forward reference
        VXM0 +3 NOP 1
        done: VXM1 @10 NOP 1
        VXM1 +1 NOP 1
        """)
    assert p.cycle.tolist() == [8, 11, 10, 11]


def test_label_on_its_own_line_names_the_next_instruction():
    p = asm("""\
        VXM2 @4 NOP 1
        here:
        ; a comment between
        VXM3 @7 NOP 1
        VXM4 @here*2 NOP 1
        """)
    assert p.cycle.tolist() == [4, 7, 14]


def test_repeat_moves_the_queue_to_its_last_repetition():
    p = asm("""\
        .tensor x, int8, (8, 320), MEM_W0, 0, 0
        MEM_W0 @0 Read.int8 x, S0E
        MEM_W0 +1 Repeat 3, 2, 1
        MEM_W0 +1 NOP 1
        """)
    assert p.cycle.tolist() == [0, 1, 6]  # repetitions at 1, 3, 5
    assert decode(ISA, int(p.word[1])).values == {"n": 3, "d": 2, "step": 1}


def test_long_forward_chain_resolves_without_recursion():
    n = 3000
    lines = ["VXM0 @last-3000 NOP 1", "VXM1 @0 NOP 1"]
    lines += ["VXM1 +1 NOP 1"] * (n - 1) + ["last: VXM1 +1 NOP 1"]
    p = assemble_text("\n".join(lines))
    assert int(p.cycle[0]) == 0 and int(p.cycle[-1]) == 3000


@pytest.mark.parametrize(("expr", "value"), [
    ("-7 / 2", -3), ("-7 % 2", -1), ("7 % -2", 1), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20),
    ("1 << 4 | 1", 17), ("~0", -1), ("-8 >> 1", -4), ("6 & 3 ^ 1", 3), ("0x10 + 0b11", 19),
    ("10 - 4 - 3", 3), ("100 / 10 / 5", 2), ("- -5", 5), ("1 | 2 ^ 3 & 4", 3),
    ("C * 2 + L", 4 * 2 + 5), ("big", 1 << 30),
])
def test_expressions_follow_c(expr, value):
    p = asm(f"""\
        .equ C, 4
        big = 1 << 30
        L: VXM9 @5 NOP 1
        VXM7 @0 AddI.int32 S0E, {expr}, S4E
        """)
    assert imm(p, 1) == value & 0xFFFFFFFF


@pytest.mark.parametrize(("expr", "error"), [
    ("1 << 64", "shift count 64 is out of range (0..63)"),
    ("(1 << 62) * 2", "integer overflow: 4611686018427387904 * 2 does not fit in 64 bits"),
    ("5 % 0", "remainder by zero"),
    ("9223372036854775808", "number 9223372036854775808 does not fit in int64 "
                            "(max 9223372036854775807)"),
    ("1.5 + 1", "a float immediate cannot be part of an expression ('+')"),
    ("reverse", "'reverse' is a lane map, not a number"),
])
def test_expression_errors(expr, error):
    src = f".lanemap reverse\nVXM7 @0 AddI.int32 S0E, {expr}, S4E\n"
    assert message(src).split(": error: ")[1] == error


def test_expression_nesting_limit_and_long_sums():
    deep = "(" * 32 + "1" + ")" * 32
    assert asm(f".equ a, {deep}\nVXM0 @a NOP 1\n").cycle.tolist() == [1]
    assert "nested more than 32" in message(f".equ a, ({deep})\n")
    long_sum = "+".join(["1"] * 5000)
    assert asm(f"VXM0 @{long_sum} NOP 1\n").cycle.tolist() == [5000]


def test_tensor_name_in_an_expression_is_its_address():
    p = asm(".tensor x, int8, (320), MEM_W0, 1, 17\nVXM0 @x+1 NOP 1\n")
    assert p.cycle.tolist() == [18]


# ---- names and case ----

def test_mnemonics_queues_dtypes_streams_are_case_insensitive():
    p = asm("vxm0 @0 add.INT8 s0e, S1w, s2E\n")
    q = asm("VXM0 @0 Add.int8 S0E, S1W, S2E\n")
    assert p.word.tolist() == q.word.tolist()
    assert "VXM0  @0  Add.int8  S0E, S1W, S2E" in disassemble(p)


def test_symbols_are_case_sensitive():
    p = asm(".equ T, 1\n.equ t, 2\nVXM0 @T NOP 1\nVXM1 @t NOP 1\n")
    assert p.cycle.tolist() == [1, 2]


@pytest.mark.parametrize(("src", "error"), [
    (".equ S4E, 1\n", "'S4E' is a stream name and cannot name a constant"),
    ("nan: VXM0 @0 NOP 1\n", "'nan' is reserved for float immediates and cannot name a label"),
    (".tensor t, int8, (320), MEM_W0, 0, 0\n.lanemap t\n",
     "duplicate symbol 't'"),
    (".x: VXM0 @0 NOP 1\n", "'.x' starts with '.' like a directive and cannot name a label"),
])
def test_reserved_and_duplicate_names(src, error):
    assert message(src).split(": error: ")[1] == error


# ---- float immediates ----

HALFWAY_PLUS = Fraction(1) + Fraction(1, 2**24) + Fraction(1, 10**19)  # just above a fp32 tie


@pytest.mark.parametrize(("text", "bits"), [
    ("1.5", 0x3FC00000), ("0.1", 0x3DCCCCCD), ("-0.0", 0x80000000), ("inf", 0x7F800000),
    ("-inf", 0xFF800000), ("nan", 0x7FC00000), ("f32(0x7fc00001)", 0x7FC00001),
    ("-f32(0x3f800000)", 0xBF800000), ("1e39", 0x7F800000), ("1e-46", 0x00000000),
    ("1e-45", 0x00000001), ("16777217", 0x4B800000), ("3", 0x40400000), ("-2e-3", 0xBB03126F),
    ("3.4028235e+38", 0x7F7FFFFF), (".5", 0x3F000000), ("5.", 0x40A00000),
    # decimal -> double -> fp32 would round twice and land on 1.0; the assembler rounds once
    ("1.0000000596046447755", 0x3F800001),
])
def test_float_immediate_bits(text, bits):
    p = asm(f"VXM5 @3 AddI.fp32 S0E, {text}, S8E\n")
    assert imm(p, 0) == bits


def test_float_immediate_prints_back_to_the_same_bits():
    values = ["0.1", "-0.0", "inf", "nan", "f32(0x7fc00001)", "1e-45", "3.4028235e+38",
              "f32(0xffc00000)", "123456.79", "1e+20"]
    src = "".join(f"VXM5 @{k} AddI.fp32 S0E, {v}, S8E\n" for k, v in enumerate(values))
    p = asm(src)
    text = disassemble(p)
    printed = [line.split(", ")[1] for line in text.splitlines() if "AddI" in line]
    assert printed == ["0.1", "-0.0", "inf", "nan", "f32(0x7fc00001)", "1e-45",
                       "3.4028235e+38", "f32(0xffc00000)", "123456.79", "1e+20"]
    assert assemble_text(text) == p


# ---- tensors and data ----

def test_one_slice_layout_and_values():
    p = asm("""\
        .tensor w, int32, (2, 3), MEM_E5, 1, 100
        .values w, 1, 256, -1, 0x01020304
        """)
    (seg,) = p.segments
    assert (seg.slice, seg.bank, seg.addr, len(seg.data)) == ("MEM_E5", 1, 100, 8 * 320)
    image = np.frombuffer(seg.data, dtype=np.uint8).reshape(8, 320)  # address-major
    # vector 0 planes at 100..103: lane 0 = 1, lane 1 = 256, lane 2 = -1
    assert image[0, :3].tolist() == [1, 0, 0xFF] and image[1, :3].tolist() == [0, 1, 0xFF]
    assert image[2, :3].tolist() == [0, 0, 0xFF] and image[3, :3].tolist() == [0, 0, 0xFF]
    # vector 1 (address 104..107): lane 0 = 0x01020304, little-endian planes
    assert image[4:8, 0].tolist() == [4, 3, 2, 1]
    assert int(image.sum()) == 1 + 1 + 4 * 0xFF + 10
    assert p.symbols[0].shape == (2, 3) and p.symbols[0].slices == ("MEM_E5",)


def test_spread_layout_in_the_order_written():
    p = asm("""\
        .tensor h, fp16, (2, 320), MEM_W1..MEM_W0, 0, 7
        .values h, 1.0, -2.0
        """)
    assert [(s.slice, s.addr, len(s.data)) for s in p.segments] == [
        ("MEM_W1", 7, 640), ("MEM_W0", 7, 640)]
    lo, hi = (np.frombuffer(s.data, np.uint8).reshape(2, 320) for s in p.segments)
    # fp16 1.0 = 0x3c00, -2.0 = 0xc000: the low bytes in MEM_W1, the high bytes in MEM_W0
    assert lo[0, :2].tolist() == [0x00, 0x00] and hi[0, :2].tolist() == [0x3C, 0xC0]
    assert p.symbols[0].slices == ("MEM_W1", "MEM_W0")
    p2 = asm(".tensor h, fp16, (320), MEM_W0..MEM_W1, 0, 0\n")
    assert p2.symbols[0].slices == ("MEM_W0", "MEM_W1")


def test_spread_tensor_operands_address_its_vectors():
    p = asm("""\
        .tensor h, fp32, (3, 320), MEM_E0..MEM_E3, 1, 10
        MEM_E2 @0 Read.fp32 h[2], S2E
        """)
    assert decode(ISA, int(p.word[0])).values["src"] == (1, 12)
    assert "h[3] is outside tensor 'h'" in message(
        ".tensor h, fp32, (3, 320), MEM_E0..MEM_E3, 1, 10\nMEM_E2 @0 Read.fp32 h+3, S2E\n")


@pytest.mark.parametrize(("dtype", "values", "expected"), [
    ("bf16", "1.0, -inf, nan", [0x3F80, 0xFF80, 0x7FC0]),
    ("fp8e4m3", "1.0, 448, 1000", [0x38, 0x7E, 0x7F]),
    ("fp32", "0.1, f32(0x7fc00001)", [0x3DCCCCCD, 0x7FC00001]),
    ("int8", "-128, 127", [0x80, 0x7F]),
])
def test_values_convert_to_the_dtype(dtype, values, expected):
    p = asm(f".tensor v, {dtype}, (320), MEM_W9, 0, 0\n.values v, {values}\n")
    width = {"bf16": 2, "fp8e4m3": 1, "fp32": 4, "int8": 1}[dtype]
    planes = np.frombuffer(p.segments[0].data, np.uint8).reshape(width, 320)
    lanes = [sum(int(planes[b, k]) << (8 * b) for b in range(width)) for k in range(len(expected))]
    assert lanes == expected


def test_values_hex_and_npy_agree(tmp_path):
    data = np.arange(-5, 5, dtype=np.int32).reshape(2, 5) * 1000
    np.save(tmp_path / "d.npy", data)
    flat = ", ".join(str(v) for v in data.reshape(-1))
    a = assemble_text(f".tensor d, int32, (2, 5), MEM_W2, 0, 0\n.values d, {flat}\n")
    b = assemble_text('.tensor d, int32, (2, 5), MEM_W2, 0, 0\n.npy d, "d.npy"\n',
                      base_dir=tmp_path)
    image = b"".join(s.data for s in a.segments)
    c = assemble_text(".tensor d, int32, (2, 5), MEM_W2, 0, 0\n"
                      f'.hex d, "{image[:700].hex()}", "{image[700:].hex(" ")}"\n')
    assert a == b == c


def test_data_may_precede_its_tensor_and_only_once():
    p = asm(".values q, 7\n.tensor q, int8, (320), MEM_W4, 0, 0\n")
    assert p.segments[0].data[0] == 7
    assert message(".tensor q, int8, (320), MEM_W4, 0, 0\n.values q, 1\n.hex q, \"00\"\n") == (
        "t.lpu:3:1: error: tensor 'q' already has data (.values at t.lpu:2)")


def test_too_many_values():
    assert message(".tensor q, int8, (2), MEM_W4, 0, 0\n.values q, 1, 2, 3\n") == (
        "t.lpu:2:18: error: too many values for tensor 'q': it has 2 elements")


def test_lanemap_padding_and_distribute_repeats():
    p = asm(".lanemap b, 0, 0, -1, 5\nSXM_W1 @3 Distribute.fp32 S0E, b, S4E\n")
    assert p.lanemaps[0].values[:5] == (0, 0, -1, 5, -1)
    assert len(p.lanemaps[0].values) == 320 and set(p.lanemaps[0].values[4:]) == {-1}


# ---- macros ----

def test_macros_with_defaults_counter_and_nesting():
    p = asm("""\
        .macro step q, n=1
        lbl\\@: \\q +\\n NOP 1
        .endm
        .macro two q
        step \\q
        step \\q, 4
        .endm
        two VXM3
        VXM4 @lbl2 NOP 1
        """)
    assert p.cycle.tolist() == [1, 5, 5]  # \@ counts expansions: two = 0, step = 1 and 2
    assert p.src_line.tolist() == [2, 2, 9]  # instructions from the macro map to its body line


def test_macro_argument_errors():
    src = ".macro m a, b\nVXM0 +1 NOP \\a\n.endm\n"
    assert message(src + "m 1\n") == "t.lpu:4:4: error: macro 'm' needs argument 'b'"
    assert message(src + "m 1, 2, 3\n") == "t.lpu:4:9: error: macro 'm' takes 2 argument(s), got 3"
    assert message(".macro r\nr\n.endm\nr\n").endswith(
        "macro expansion nested more than 64 deep (does 'r' expand itself?)")
    assert message(".macro VXM0\n.endm\n") == "t.lpu:1:8: error: macro name 'VXM0' is a queue name"


def test_same_source_position_gets_one_loc():
    p = asm(".macro m\nVXM0 +1 NOP 1\n.endm\nm\nm\n")
    text = disassemble(p)
    assert text.count(".loc") == 1
    assert assemble_text(text) == p


# ---- files, includes, source map ----

def test_includes_and_files(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/defs.inc").write_text(".equ T, 3\nVXM1 @T NOP 1\n")
    (tmp_path / "lib/more.inc").write_text('.include "defs.inc"\n')
    (tmp_path / "main.lpu").write_text('.include "lib/defs.inc"\nVXM0 @T NOP 1\n'
                                       '.include "lib/other.inc"\n')
    (tmp_path / "lib/other.inc").write_text("VXM2 @1 NOP 1\n")
    monkeypatch.chdir(tmp_path)
    p = assemble_file("main.lpu")
    assert p.files == ("main.lpu", "lib/defs.inc", "lib/other.inc")
    assert p.src_file.tolist() == [1, 0, 2] and p.src_line.tolist() == [2, 2, 1]
    assert p.where(0) == "lib/defs.inc:2"
    # the same file included twice is read twice: T is defined twice
    (tmp_path / "twice.lpu").write_text('.include "lib/defs.inc"\n.include "lib/more.inc"\n')
    with pytest.raises(AsmError, match="duplicate symbol 'T'"):
        assemble_file("twice.lpu")


def test_include_from_a_macro_body_is_relative_to_the_macro_file(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/mac.inc").write_text('.macro use\n.include "part.inc"\n.endm\n')
    (tmp_path / "lib/part.inc").write_text("VXM3 @3 NOP 1\n")
    (tmp_path / "top.lpu").write_text('.include "lib/mac.inc"\nuse\n')
    monkeypatch.chdir(tmp_path)
    p = assemble_file("top.lpu")
    assert p.files == ("top.lpu", "lib/mac.inc", "lib/part.inc")
    assert p.where(0) == "lib/part.inc:1"


def test_assemble_text_base_dir(tmp_path):
    (tmp_path / "h.inc").write_text("VXM1 @2 NOP 1\n")
    p = assemble_text('.include "h.inc"\n', base_dir=tmp_path)
    assert p.files == ("<input>", f"{tmp_path}/h.inc")


def test_file_and_loc_override_the_source_map():
    p = asm("""\
        .file 0, "orig.lpu"
        .file 1, "lib \\"q\\".inc"
        .loc 1, 40, 3
        VXM0 @0 NOP 1
        VXM0 @1 NOP 1
        .loc 0, 7, 9
        VXM0 @2 NOP 1
        """)
    assert p.files == ("orig.lpu", 'lib "q".inc')
    assert p.src_file.tolist() == [1, 1, 0]
    assert p.src_line.tolist() == [40, 40, 7]
    assert p.src_col.tolist() == [3, 3, 9]


def test_instruction_without_loc_adds_its_file():
    p = asm('.file 0, "gen.lpu"\nVXM0 @0 NOP 1\n')
    assert p.files == ("gen.lpu", "t.lpu") and p.src_file.tolist() == [1]


# ---- chips ----

def test_chip_selection():
    assert asm("VXM0 @0 NOP 1\n").chip == "lp30"
    p = asm(".chip tsp-v1\nMEM_E43 @0 NOP 1\n")
    assert p.chip == "tsp-v1" and queue_names(p) == ["MEM_E43"]
    assert asm("MEM_E43 @0 NOP 1\n", chip="tsp-v1").chip == "tsp-v1"
    assert asm('.chip "TSP-V1"\n', chip="tsp-v1").chip == "tsp-v1"
    assert message("MEM_E50 @0 NOP 1\n", chip="tsp-v1") == (
        "t.lpu:1:1: error: unknown queue 'MEM_E50' on tsp-v1")
    assert message(".chip lp30\n.chip tsp-v1\n") == (
        "t.lpu:2:7: error: .chip tsp-v1 contradicts .chip lp30 at t.lpu:1")
    # the preset's address range applies
    assert "4096 addresses per bank" in message("MEM_W0 @0 Read.int8 0:4096, S0E\n", chip="tsp-v1")
    assert asm("MEM_W0 @0 Read.int8 0:4096, S0E\n").chip == "lp30"


def test_queue_index_is_the_slice_index():
    p = asm("C2C_W @0 Deskew 0\nC2C_E @0 Deskew 1\nVXM15 @0 NOP 1\n")
    vxm15 = next(s.index for s in LP30.slices if s.name == "VXM15")
    assert p.queue.tolist() == [0, len(LP30.slices) - 1, vxm15]
    assert queue_names(p) == ["C2C_W", "C2C_E", "VXM15"]
