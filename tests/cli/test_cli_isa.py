"""`lpu isa` output, checked against lines worked out by hand from isa/lpu.toml.

The house table puts columns 3 spaces apart (1 padding, 1 space, 1 padding), each as wide as its
widest cell or header; lat and occ are right-aligned.
"""

from __future__ import annotations

from cli_helpers import lines


def test_isa_overview_rows(lpu) -> None:
    r = lpu("isa")
    assert r.exit_code == 0 and r.stderr == ""
    out = lines(r.stdout)
    # ICU table: syntax column as wide as "Repeat n, d, [step]" (19), opcode 6 (header),
    # dtypes 6 (header), lat 3, occ 6 ("repeat"), origin
    assert "Repeat n, d, [step]   0x02     -          1   repeat   published" in out
    assert "NOP n                 0x01     -          1        n   published" in out
    # C2C table: syntax as wide as "Receive.<dtype> link, z" (23), lat 4 ("link")
    assert "Send.<dtype> src, link    0x61     all      link     1   published" in out
    assert "Deskew link               0x60     -           1     4   published" in out


def test_isa_overview_groups_in_slice_order(lpu) -> None:
    out = lines(lpu("isa").stdout)
    kinds = ("ICU", "MEM", "VXM", "MXM", "SXM", "C2C")
    headings = [line[:3] for line in out if line[:3] in kinds and line[3:4] == ":"]
    assert headings == ["ICU", "MEM", "VXM", "MXM", "SXM", "C2C"]
    assert "large ALUs only: Exp, Rsqrt, Tanh, Erf" in out
    # 6 ICU + 4 MEM + 18 VXM + 5 MXM (IWT included) + 6 SXM + 3 C2C
    legend = " ".join(out[out.index(next(x for x in out if x.startswith("42 instructions;"))):])
    assert legend == (
        '42 instructions; lat/occ: latency and occupancy in cycles; dtypes "all": every dtype '
        '(int8 int32 fp16 bf16 fp8e4m3 fp32), "-": untyped; origin: published (Groq\'s ISCA 2020 '
        "paper, Table I) or chosen (added by lpu-emu); `lpu isa MNEMONIC` shows one in full.")


def test_isa_one_instruction_in_full(lpu) -> None:
    r = lpu("isa", "Add")
    assert r.exit_code == 0
    out = lines(r.stdout)
    assert out[:3] == ["Add.<dtype> x, y, z", "z = x + y, lane by lane (integers wrap).", ""]
    # facts: a grid, keys padded to "occupancy" (9) plus 2
    assert "slice      VXM" in out
    assert "opcode     0x20" in out
    assert "dtypes     int8, int32, fp16, bf16, fp8e4m3, fp32" in out
    assert "latency    2 cycles" in out
    assert "occupancy  1 cycle" in out
    assert "example    VXM0 @3 Add.fp32 S0E, S4W, S8E" in out
    # operands: sa [16, 7], sb [30, 7], sc [23, 7]
    i = out.index("Operands")
    assert out[i + 1].split() == ["operand", "kind", "field", "bits", "notes"]
    assert out[i + 3 : i + 6] == [
        "x         stream   sa      16..22   input, width(dtype) streams",
        "y         stream   sb      30..36   input, width(dtype) streams",
        "z         stream   sc      23..29   output, width(dtype) streams",
    ]
    i = out.index("Encoding (64-bit word, little-endian)")
    assert out[i + 3 :] == [
        "0..7     opcode   0x20",
        "8..11    dtype    dtype code",
        "12..15   -        0",
        "16..22   sa       operand x",
        "23..29   sc       operand z",
        "30..36   sb       operand y",
        "37..63   -        0",
    ]


def test_isa_large_alu_note_and_case(lpu) -> None:
    out = lines(lpu("isa", "rsqrt.fp32").stdout)
    assert out[0] == "Rsqrt.<dtype> x, z"
    assert "ALU        runs only on the large VXM ALUs (the preset's vxm_large_alus)" in out
    assert "dtypes     fp16, bf16, fp8e4m3, fp32" in out


def test_isa_untyped_and_symbolic_occupancy(lpu) -> None:
    out = lines(lpu("isa", "NOP").stdout)
    assert "dtypes     untyped" in out
    assert "occupancy  n cycles (its operand n)" in out
    assert "n         uimm   count   16..47   unsigned 1..4294967295" in out


def test_isa_unknown_mnemonic(lpu) -> None:
    r = lpu("isa", "Addd")
    assert r.exit_code == 2
    assert r.stdout == ""
    err = r.stderr.splitlines()
    assert err[0] == "error: unknown instruction 'Addd'"
    assert err[1].startswith("hint: did you mean 'Add'")
    assert "Traceback" not in r.stderr


def test_isa_unknown_mnemonic_without_suggestion(lpu) -> None:
    r = lpu("isa", "qqqqqq")
    assert r.exit_code == 2
    assert r.stderr == "error: unknown instruction 'qqqqqq'\nhint: `lpu isa` lists them all\n"
