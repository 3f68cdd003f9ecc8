"""docs/isa.md is generated from the ISA and committed; it must be current. The facts it is built
from (also shown by `lpu isa`) must agree with the encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpu_emu.spec import docs, encoding, isa
from lpu_emu.spec.isa import Instruction, default_isa

ISA = default_isa()
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "isa.md"


def test_docs_isa_md_is_current() -> None:
    expected = docs.render_markdown(ISA)
    current = COMMITTED.read_text(encoding="utf-8") if COMMITTED.is_file() else ""
    assert current == expected, f"docs/isa.md is stale: run `{docs.COMMAND}` and commit the result"


def test_docs_header_says_generated() -> None:
    first = docs.render_markdown(ISA).splitlines()[0]
    assert "generated" in first and "do not edit" in first and docs.COMMAND in first


def test_docs_have_a_section_per_instruction() -> None:
    text = docs.render_markdown(ISA)
    for ins in ISA.instructions:
        assert f"\n### {ins.mnemonic}\n\n`{ins.syntax()}`\n\n{ins.semantics}\n" in text
        assert f"`{ins.example}`" in text


def test_every_kind_is_described() -> None:
    assert set(docs.SLICE_SUMMARY) == set(isa.SLICE_KINDS)
    assert set(docs.OPERAND_FORMS) == set(isa.OPERAND_KINDS)
    assert set(docs.STREAM_WIDTHS) == set(isa.STREAM_WIDTHS)
    assert set(docs.ORIGINS) == set(isa.ORIGINS)


def test_docs_main_check_and_write(tmp_path: Path) -> None:
    out = tmp_path / "isa.md"
    assert docs.main(["--check", "-o", str(out)]) == 1  # missing counts as stale
    assert docs.main(["-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == docs.render_markdown(ISA)
    assert docs.main(["--check", "-o", str(out)]) == 0
    out.write_text(out.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    assert docs.main(["--check", "-o", str(out)]) == 1


def test_read_encoding_rows_by_hand() -> None:
    # isa/lpu.toml: opcode [0, 8], dtype [8, 4], sc [23, 7], bank [37, 2], addr [39, 20]
    assert docs.encoding_rows(ISA, ISA.lookup("Read")) == [
        ("0..7", "opcode", "0x10"),
        ("8..11", "dtype", "dtype code"),
        ("12..22", "-", "0"),
        ("23..29", "sc", "operand dst"),
        ("30..36", "-", "0"),
        ("37..38", "bank", "operand src"),
        ("39..58", "addr", "operand src"),
        ("59..63", "-", "0"),
    ]


def test_repeat_operand_rows_by_hand() -> None:
    # rep_n [16, 16] min 1, rep_d [32, 16] min 1, rep_step [48, 16] simm default 0
    assert docs.operand_rows(ISA, ISA.lookup("Repeat")) == [
        ("n", "uimm", "rep_n", "16..31", "unsigned 1..65535"),
        ("d", "uimm", "rep_d", "32..47", "unsigned 1..65535"),
        ("step", "simm", "rep_step", "48..63", "signed -32768..32767; optional, default 0"),
    ]


def _ranges(rows) -> list[tuple[int, int, str]]:
    out = []
    for bits, field, _ in rows:
        lo, _, hi = bits.partition("..")
        out.append((int(lo), int(hi or lo), field))
    return out


def _max_values(ins: Instruction) -> dict:
    values = {}
    for op in ins.operands:
        masks = [ISA.fields[f].mask for f in op.fields]
        if op.kind == "mem":
            values[op.name] = tuple(masks)
        elif op.kind == "simm":
            values[op.name] = -1  # all ones
        elif op.kind == "dtype2":
            values[op.name] = max(d.code for d in ISA.dtypes.values())
        else:
            values[op.name] = masks[0]
    return values


@pytest.mark.parametrize("ins", ISA.instructions, ids=lambda i: i.mnemonic)
def test_encoding_rows_tile_the_word_and_agree_with_the_encoder(ins: Instruction) -> None:
    rows = _ranges(docs.encoding_rows(ISA, ins))
    assert rows[0][0] == 0 and rows[-1][1] == ISA.word_bits - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(rows, rows[1:], strict=False))
    dtype = ISA.dtypes[ins.dtypes[0]] if ins.typed else None
    word = encoding.encode(ISA, ins, dtype, _max_values(ins))
    for lo, hi, field in rows:
        mask = ((1 << (hi - lo + 1)) - 1) << lo
        if field == "-":
            assert word & mask == 0, f"{ins.mnemonic}: the encoder sets bits {lo}..{hi}"
        elif field not in ("opcode", "dtype", "dtype2"):
            assert word & mask == mask, f"{ins.mnemonic}: the encoder leaves {field} unset"
