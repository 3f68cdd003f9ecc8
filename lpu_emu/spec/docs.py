"""docs/isa.md, generated from the `Isa` object; the plain facts it is built from are shared with
`lpu isa` (lpu_emu/render/isa.py), so the reference and the docs never disagree.

    python -m lpu_emu.spec.docs            write docs/isa.md
    python -m lpu_emu.spec.docs --check    exit 1 if docs/isa.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lpu_emu.spec.isa import (
    OPERAND_KINDS,
    SLICE_KINDS,
    Field,
    Instruction,
    Isa,
    Operand,
    default_isa,
)

COMMAND = "python -m lpu_emu.spec.docs"

# One line per slice kind and per operand kind. The loader's kind lists are the keys: a kind
# without a line here fails the docs test (tests/spec/test_spec_docs.py).
SLICE_SUMMARY = {
    "ICU": "queue control; an ICU instruction is issued on the queue it controls",
    "MEM": "SRAM slices: read and write vectors, gather and scatter lanes",
    "VXM": "vector ALUs, one queue per ALU: lane-by-lane arithmetic, z = x op y and z = op x",
    "MXM": "matrix planes, one queue per plane: weights stationary, activations stream through",
    "SXM": "lane movement: shift, rotate, permute, distribute, transpose",
    "C2C": "chip-to-chip links (on one chip, links are looped back)",
}
OPERAND_FORMS = {  # kind -> (assembly form, meaning)
    "stream": (
        "S<i><E|W>",
        "a stream: index in bits 0..5 of the field, direction in bit 6 (0 east, 1 west)",
    ),
    "mem": (
        "BANK:ADDR, x, x[k], x+k",
        "an SRAM address of the instruction's slice: bank and address fields; x is a tensor",
    ),
    "uimm": (
        "integer expression",
        "an unsigned integer of the field's width (a preset may bound it further)",
    ),
    "simm": ("integer expression", "a signed integer of the field's width, two's complement"),
    "imm32": (
        "number, f32(0xBITS)",
        "a number stored as the instruction dtype: int32 for integer dtypes, fp32 bits for floats",
    ),
    "lanemap": ("NAME", "the index of a .lanemap table of the program"),
    "link": ("integer", "a C2C link of the slice's edge"),
    "dtype2": (
        ".<dtype> (second suffix)",
        "the conversion target dtype, written as the mnemonic's second suffix",
    ),
}
STREAM_WIDTHS = {  # an operand's `width` -> how many streams its group spans
    "dtype": "width(dtype) streams",
    "dtype2": "width(second dtype) streams",
    "one": "1 stream (one byte plane)",
    "acc": "width(accumulator) streams: int32 for int8, fp32 for floats",
    "sg16": "16 streams",
    "load": "a load group of the preset's mxm_load_streams streams (16 on both presets), aligned "
            "to it; row r is the width(dtype) streams from src + r x width(dtype), and only the "
            "rows' streams are read",
}
DEFAULT_TEXT = {"group": "the whole load group (mxm_load_streams / width(dtype) rows)"}
ORIGINS = {
    "published": "published: named in ISCA 2020 'Think Fast', Table I",
    "chosen": "chosen: added by lpu-emu (docs/design.md)",
}


# ---- plain facts, shared by the markdown below and the `lpu isa` renderer ----
def bit_range(field: Field) -> str:
    """`lsb..msb` of a field (bit 0 is the least significant bit of the word)."""
    return f"{field.lsb}..{field.lsb + field.width - 1}" if field.width > 1 else str(field.lsb)


def slice_groups(isa: Isa) -> list[tuple[str, list[Instruction]]]:
    """Instructions by slice kind, in SLICE_KINDS order, each group in spec order."""
    groups = [(kind, [i for i in isa.instructions if i.slice == kind]) for kind in SLICE_KINDS]
    return [(kind, ins) for kind, ins in groups if ins]


def dtypes_text(isa: Isa, ins: Instruction, short: bool = False) -> str:
    if not ins.typed:
        return "-" if short else "untyped"
    if short and set(ins.dtypes) == set(isa.dtypes):
        return "all"
    return ", ".join(ins.dtypes)


def cycles(n: int) -> str:
    return f"{n} cycle" if n == 1 else f"{n} cycles"


def latency_text(ins: Instruction) -> str:
    if ins.latency == "link":
        return "the preset's C2C link latency (param c2c_link_latency)"
    return cycles(int(ins.latency))


def occupancy_text(ins: Instruction) -> str:
    if ins.occupancy == "n":
        return "n cycles (its operand n)"
    if ins.occupancy == "repeat":
        return "while its repetitions issue (n of them, d cycles apart)"
    if ins.occupancy == "mxm":
        return ("1 cycle (int8, fp8e4m3); fp16/bf16: the preset's float occupancy, "
                "1 / (mxm_fp16_planes x mxm_fp16_fraction) = 2 cycles on both presets, on both "
                "queues of the plane pair (issued on the even plane)")
    return cycles(int(ins.occupancy))


def alu_text(ins: Instruction) -> str | None:
    if ins.alu == "large":
        return "runs only on the large VXM ALUs (the preset's vxm_large_alus)"
    return None


def instruction_facts(isa: Isa, ins: Instruction) -> list[tuple[str, str]]:
    """(what, value) lines of one instruction, in the order the reference shows them."""
    facts = [
        ("slice", ins.slice),
        ("opcode", f"0x{ins.opcode:02x}"),
        ("origin", ORIGINS[ins.origin]),
        ("dtypes", dtypes_text(isa, ins)),
        ("latency", latency_text(ins)),
        ("occupancy", occupancy_text(ins)),
    ]
    alu = alu_text(ins)
    if alu:
        facts.append(("ALU", alu))
    facts.append(("example", ins.example))
    return facts


def operand_notes(isa: Isa, op: Operand) -> str:
    if op.kind == "stream":
        notes = f"{'input' if op.role == 'in' else 'output'}, {STREAM_WIDTHS[op.width]}"
    elif op.kind in ("uimm", "simm", "link", "lanemap"):
        width = isa.fields[op.fields[0]].width
        if op.kind == "simm":
            lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        else:
            lo, hi = op.min, (1 << width) - 1
        notes = f"{'signed' if op.kind == 'simm' else 'unsigned'} {lo}..{hi}"
        if op.default == "group":  # bounded by the load group, not the field
            notes = (f"unsigned {lo}..mxm_load_streams / width(dtype) (16 int8/fp8e4m3 rows, "
                     "8 fp16/bf16 rows on both presets)")
    elif op.kind == "mem":
        bank, addr = (isa.fields[f] for f in op.fields)
        notes = f"bank 0..{bank.mask}, address 0..{addr.mask} (the preset bounds both)"
    else:
        notes = OPERAND_FORMS[op.kind][1]
        notes = notes[0].lower() + notes[1:]
    if op.default is not None:
        notes += f"; optional, default {DEFAULT_TEXT.get(str(op.default), op.default)}"
    return notes


def operand_rows(isa: Isa, ins: Instruction) -> list[tuple[str, str, str, str, str]]:
    """(operand, kind, field(s), bits, notes) per operand, in assembly order."""
    return [
        (
            op.name,
            op.kind,
            ", ".join(op.fields),
            ", ".join(bit_range(isa.fields[f]) for f in op.fields),
            operand_notes(isa, op),
        )
        for op in ins.operands
    ]


def encoding_rows(isa: Isa, ins: Instruction) -> list[tuple[str, str, str]]:
    """(bits, field, content) from bit 0 up, covering the whole word: unused bits must be zero."""
    used: list[tuple[Field, str]] = [(isa.fields["opcode"], f"0x{ins.opcode:02x}")]
    if ins.typed:
        used.append((isa.fields["dtype"], "dtype code"))
    for op in ins.operands:
        for f in op.fields:
            content = "dtype code" if op.kind == "dtype2" else f"operand {op.name}"
            used.append((isa.fields[f], content))
    used.sort(key=lambda u: u[0].lsb)
    rows, bit = [], 0
    for field, content in used:
        if field.lsb > bit:
            rows.append((bit_range(Field("", bit, field.lsb - bit)), "-", "0"))
        rows.append((bit_range(field), field.name, content))
        bit = field.lsb + field.width
    if bit < isa.word_bits:
        rows.append((bit_range(Field("", bit, isa.word_bits - bit)), "-", "0"))
    return rows


def field_users(isa: Isa) -> dict[str, list[str]]:
    """Field name -> the mnemonics whose word uses it."""
    users: dict[str, list[str]] = {name: [] for name in isa.fields}
    for ins in isa.instructions:
        names = ["opcode"] + (["dtype"] if ins.typed else [])
        names += [f for op in ins.operands for f in op.fields]
        for name in dict.fromkeys(names):
            users[name].append(ins.mnemonic)
    return users


# ---- markdown ----
def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows), ""]


def _users_text(isa: Isa, users: list[str]) -> str:
    if len(users) == len(isa.instructions):
        return "every instruction"
    return ", ".join(users) or "-"


def _link(ins: Instruction) -> str:
    return f"[{ins.mnemonic}](#{ins.mnemonic.lower()})"


def _instruction_md(isa: Isa, ins: Instruction) -> list[str]:
    facts = [(k, f"`{v}`" if k == "example" else v) for k, v in instruction_facts(isa, ins)]
    out = [f"### {ins.mnemonic}", "", f"`{ins.syntax()}`", "", ins.semantics, ""]
    out += _table(("", ""), facts)
    if ins.operands:
        out += ["Operands:", ""]
        out += _table(("operand", "kind", "field", "bits", "notes"), operand_rows(isa, ins))
    out += [f"Encoding ({isa.word_bits}-bit word, little-endian):", ""]
    out += _table(("bits", "field", "content"), encoding_rows(isa, ins))
    return out


def render_markdown(isa: Isa) -> str:
    """The whole of docs/isa.md: deterministic, depends only on the Isa."""
    out = [
        "<!-- generated from isa/lpu.toml by `" + COMMAND + "`: do not edit -->",
        "",
        "# The lpu-emu instruction set",
        "",
        f"ISA version {isa.version}: {len(isa.instructions)} instructions, one {isa.word_bits}-bit "
        "word each. Written once in `isa/lpu.toml`; this page, `lpu isa`, the assembler, the "
        "disassembler and the core's decode tables are derived from it. Latencies and occupancies "
        "are inferred (no per-instruction table is public); a chip preset may override latencies. "
        "The assembly language and the timing model are in [design.md](design.md).",
        "",
        "## Instruction word fields",
        "",
        "Bit 0 is the least significant bit. Fields may overlap across instructions, never within "
        "one.",
        "",
    ]
    users = field_users(isa)
    out += _table(
        ("field", "bits", "width", "used by"),
        [
            (f.name, bit_range(f), str(f.width), _users_text(isa, users[f.name]))
            for f in isa.fields.values()
        ],
    )
    out += ["## Data types", "", "A value of w bytes travels as a stream group of w streams.", ""]
    out += _table(
        ("dtype", "code", "width (bytes, streams)", "kind"),
        [(d.name, str(d.code), str(d.width), d.kind) for d in isa.dtypes.values()],
    )
    out += ["## Operand kinds", ""]
    out += _table(
        ("kind", "written", "meaning"),
        [(k, f"`{OPERAND_FORMS[k][0]}`", OPERAND_FORMS[k][1]) for k in OPERAND_KINDS],
    )
    groups = slice_groups(isa)
    out += ["## Instructions by slice", ""]
    out += _table(
        ("slice", "what", "instructions"),
        [(k, SLICE_SUMMARY[k], ", ".join(_link(i) for i in g)) for k, g in groups],
    )
    for kind, group in groups:
        out += [f"## {kind}", "", f"{SLICE_SUMMARY[kind][0].upper()}{SLICE_SUMMARY[kind][1:]}.", ""]
        out += _table(
            ("mnemonic", "syntax", "dtypes", "latency", "origin"),
            [
                (_link(i), f"`{i.syntax()}`", dtypes_text(isa, i, short=True), str(i.latency),
                 i.origin)
                for i in group
            ],
        )
        for ins in group:
            out += _instruction_md(isa, ins)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def default_output() -> Path:
    """docs/isa.md of the source checkout this module runs from."""
    return Path(__file__).resolve().parents[2] / "docs" / "isa.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Generate docs/isa.md from the ISA.")
    parser.add_argument("-o", "--output", type=Path, help="where to write (default: docs/isa.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    path = args.output or default_output()
    text = render_markdown(default_isa())
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            print(f"{path} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if not path.parent.is_dir():
        print(f"{path.parent} is not a directory: use a source checkout or -o", file=sys.stderr)
        return 2
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
