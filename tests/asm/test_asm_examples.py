"""Every instruction of the ISA: its spec example assembles, disassembles to the canonical form
and reassembles to the same bytes; a few words are checked bit by bit against the field table."""

import re

import pytest

from lpu_emu.asm import assemble_text, disassemble
from lpu_emu.spec import default_isa
from lpu_emu.spec.encoding import decode

ISA = default_isa()


def prelude(queue: str) -> str:
    """The tensors and lane maps the examples name; `table` lives in the example's own slice
    (the Gather and Scatter examples use it on MEM_W1 and MEM_E1)."""
    table_slice = queue if queue.startswith("MEM_") else "MEM_W1"
    return "\n".join([
        ".tensor x, int8, (320), MEM_W0, 0, 0",
        ".tensor z, int8, (320), MEM_E0, 0, 0",
        f".tensor table, int8, (256, 320), {table_slice}, 1, 0",
        ".lanemap reverse, " + ", ".join(str(319 - i) for i in range(320)),
        ".lanemap bcast0, " + ", ".join("0" for _ in range(320)),
        "",
    ])


def example_source(ins) -> str:
    queue = ins.example.split()[0]
    setup = ""
    if ins.occupancy == "repeat":  # Repeat needs an instruction of its queue to repeat
        setup = f"{queue} @0 Read.int8 x[0], S0E\n"
    return prelude(queue) + setup + ins.example + "\n"


def canonical(example: str) -> str:
    """The example as the disassembler writes it: absolute cycle, tensor operands as name[k],
    integers in decimal, single spaces."""
    text = example.replace("+1 Repeat", "@1 Repeat")
    text = re.sub(r"\btable\b(?!\[)", "table[0]", text)
    text = re.sub(r"\b0x([0-9a-f]+)\b", lambda m: str(int(m.group(1), 16)), text)
    return " ".join(text.split())


@pytest.mark.parametrize("ins", ISA.instructions, ids=lambda i: i.mnemonic)
def test_example_round_trips(ins):
    p = assemble_text(example_source(ins), "example.lpu")
    assert decode(ISA, int(p.word[-1])).ins is ins
    text = disassemble(p)
    last_line = text.strip().splitlines()[-1]
    assert " ".join(last_line.split()) == canonical(ins.example)
    again = assemble_text(text, "example.dis")
    assert again == p
    assert again.files == ("example.lpu",)
    assert disassemble(again) == text


# Words written out from isa/lpu.toml's [fields] table by hand:
# opcode [0,8] dtype [8,4] dtype2 [12,4] sa [16,7] sc [23,7] sb [30,7] bank [37,2] addr [39,20]
# map [37,8] link [37,7] acc [37,8] rows [37,8] imm32 [32,32] rep_n [16,16] rep_d [32,16]
# rep_step [48,16];
# stream code = index | 0x40 for west; dtype codes int8 1, int32 2, fp16 3, fp32 6.
WORDS = [
    # Read 0x10, fp32, sc = S5W = 0x45, bank 1, addr 4656 + 4 = 0x1234
    ("MEM_W3 @7 Read.fp32 w[4], S5W",
     0x10 | 6 << 8 | 0x45 << 23 | 1 << 37 | 0x1234 << 39, 0x00091A2022800610),
    # Cvt 0x38, int32 -> fp32, sa S0E, sc S4W = 0x44
    ("VXM1 @3 Cvt.int32.fp32 S0E, S4W", 0x38 | 2 << 8 | 6 << 12 | 0x44 << 23, 0x22006238),
    # AddI 0x28, fp32, sa S0E, sc S8E, imm32 = fp32(1.5) = 0x3fc00000
    ("VXM5 @3 AddI.fp32 S0E, 1.5, S8E", 0x28 | 6 << 8 | 8 << 23 | 0x3FC00000 << 32,
     0x3FC0000004000628),
    # Repeat 0x02, n 7, d 1, step -1 as 16-bit two's complement
    ("MEM_W3 @7 Read.int8 w, S0E\nMEM_W3 @8 Repeat 7, 1, -1",
     0x02 | 7 << 16 | 1 << 32 | 0xFFFF << 48, 0xFFFF000100070002),
    # LW 0x40, bf16, sa S16W = 0x50, rows [37, 8] defaulted: 16 streams / 2 bytes = 8
    ("MXM_W0 @5 LW.bf16 S16W", 0x40 | 4 << 8 | 0x50 << 16 | 8 << 37, 0x10000500440),
    # LW 0x40, int8, sa S0E, rows 3 (a partial group)
    ("MXM_W1 @5 LW.int8 S0E, 3", 0x40 | 1 << 8 | 3 << 37, 0x6000000140),
    # ACC 0x43, fp16, sa S2W = 0x42, sc S4E (fp32 accumulator group), acc 63
    ("MXM_E1 @0 ACC.fp16 S2W, S4E, 63", 0x43 | 3 << 8 | 0x42 << 16 | 4 << 23 | 63 << 37,
     0x7E002420343),
    # Permute 0x53, int8, sa S0E, sc S1E, map = index 1 (the second .lanemap)
    ("SXM_E0 @1 Permute.int8 S0E, rev, S1E", 0x53 | 1 << 8 | 1 << 23 | 1 << 37, 0x2000800153),
    # Send 0x61, int8, sa S0E, link 47
    ("C2C_E @0 Send.int8 S0E, 47", 0x61 | 1 << 8 | 47 << 37, 0x5E000000161),
    # MaxI 0x2A, int32, imm32 = -128 as 32-bit two's complement
    ("VXM7 @3 MaxI.int32 S4W, -128, S8E",
     0x2A | 2 << 8 | 0x44 << 16 | 8 << 23 | 0xFFFFFF80 << 32, 0xFFFFFF80_0444022A),
]
WORD_PRELUDE = (".tensor w, fp32, (2, 320), MEM_W3, 1, 4656\n.lanemap id\n.lanemap rev, "
                + ", ".join(str(319 - i) for i in range(320)) + "\n")


WORD_IDS = [w[0].split()[-4 if "Repeat" in w[0] else 2] for w in WORDS]


@pytest.mark.parametrize(("line", "by_fields", "literal"), WORDS, ids=WORD_IDS)
def test_word_bits(line, by_fields, literal):
    assert by_fields == literal
    p = assemble_text(WORD_PRELUDE + line + "\n")
    assert int(p.word[-1]) == literal


def test_program_arrays_of_an_example():
    p = assemble_text(example_source(ISA.lookup("Read")), "example.lpu")
    assert p.chip == "lp30"
    assert p.cycle.tolist() == [0]
    from lpu_emu.spec import get_chip

    assert get_chip("lp30").slices[int(p.queue[0])].name == "MEM_W0"
    assert (p.src_file.tolist(), p.src_line.tolist(), p.src_col.tolist()) == ([0], [6], [1])
    assert [t.name for t in p.symbols] == ["x", "z", "table"]
    assert [m.name for m in p.lanemaps] == ["reverse", "bcast0"]
    assert p.lanemaps[0].values[:3] == (319, 318, 317)
