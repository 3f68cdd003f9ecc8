"""The loaders reject malformed ISA and preset data with a SpecError naming the file and the entry.

Each case is the shipped TOML with one deliberate fault, written to tmp_path under a name of its
own, so a message that names the file and the entry at fault is told apart from one that does not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lpu_emu.errors import SpecError
from lpu_emu.spec.chip import chips_dir, load_chip
from lpu_emu.spec.isa import isa_dir, load_isa

ISA_TEXT = (isa_dir() / "lpu.toml").read_text(encoding="utf-8")
CHIP_TEXT = (chips_dir() / "lp30.toml").read_text(encoding="utf-8")


def fault(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with `old` replaced by `new`; `old` must occur exactly `count` times (so a change
    to the shipped TOML cannot silently turn a case into a no-op)."""
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


ISA_CASES = {
    # name: (faulty text, words the message must contain)
    "overlapping-fields": (
        fault(ISA_TEXT, "sb = [30, 7]", "sb = [20, 7]"),
        ["instruction Scatter", "'sb'", "'sa'", "overlaps"],
    ),
    "unknown-operand-kind": (
        fault(ISA_TEXT, '["bank", "addr"] },\n  { name = "dst", kind = "stream"',
              '["bank", "addr"] },\n  { name = "dst", kind = "streem"'),
        ["instruction Read", "'streem'"],
    ),
    "missing-key": (
        fault(ISA_TEXT, 'semantics = "z = x + y, lane by lane (integers wrap)."\n', ""),
        ["instruction Add", "missing key 'semantics'"],
    ),
    "duplicate-opcode": (
        fault(ISA_TEXT, "opcode = 0x21", "opcode = 0x20"),
        ["instruction Sub", "duplicate opcode 0x20", "Add"],
    ),
    "duplicate-mnemonic-other-case": (
        fault(ISA_TEXT, 'mnemonic = "Sub"', 'mnemonic = "ADD"'),
        ["instruction ADD", "duplicate mnemonic", "Add"],
    ),
    "bad-origin": (
        fault(ISA_TEXT, 'mnemonic = "AddI"\nslice = "VXM"\nopcode = 0x28\norigin = "chosen"',
              'mnemonic = "AddI"\nslice = "VXM"\nopcode = 0x28\norigin = "invented"'),
        ["instruction AddI", "'invented'"],
    ),
    "bad-latency": (
        fault(ISA_TEXT, 'latency = 24\n', 'latency = "soon"\n'),
        ["instruction ACC", "latency 'soon'"],
    ),
    "zero-occupancy": (
        fault(ISA_TEXT, "occupancy = 20\n", "occupancy = 0\n"),
        ["instruction IW", "occupancy"],
    ),
    "operand-without-name": (
        fault(ISA_TEXT, '{ name = "n", kind = "uimm", field = "count", min = 1 }',
              '{ kind = "uimm", field = "count", min = 1 }'),
        ["instruction NOP", "needs a name"],
    ),
    "unknown-field": (
        fault(ISA_TEXT, '{ name = "link", kind = "link", field = "link" }]',
              '{ name = "link", kind = "link", field = "lnk" }]'),
        ["instruction Deskew", "'lnk'"],
    ),
    "field-past-64-bits": (
        fault(ISA_TEXT, "addr = [39, 20]", "addr = [50, 20]"),
        ["field addr", "50..69"],
    ),
    "typo-in-key": (
        fault(ISA_TEXT, "occupancy = 20\n", "ocupancy = 20\n"),
        ["instruction IW", "ocupancy"],
    ),
    "unknown-dtype-in-set": (
        fault(ISA_TEXT, 'byte = ["int8", "fp8e4m3"]', 'byte = ["int8", "fp8e5m2"]'),
        ["dtype set byte", "fp8e5m2"],
    ),
    "default-too-wide": (
        fault(ISA_TEXT, '{ name = "acc", kind = "uimm", field = "acc", default = 0 }',
              '{ name = "acc", kind = "uimm", field = "acc", default = 256 }'),
        ["instruction ACC", "default 256"],
    ),
    "large-alu-outside-vxm": (
        fault(ISA_TEXT, 'mnemonic = "Gather"\nslice = "MEM"\n',
              'mnemonic = "Gather"\nslice = "MEM"\nalu = "large"\n'),
        ["instruction Gather", "alu"],
    ),
    "load-width-without-rows": (
        fault(ISA_TEXT, '  { name = "rows", kind = "uimm", field = "rows", min = 1, '
              'default = "group" },\n', ""),
        ["instruction LW", "width load", "rows"],
    ),
    "group-default-without-load-stream": (
        fault(ISA_TEXT, '{ name = "acc", kind = "uimm", field = "acc", default = 0 }',
              '{ name = "acc", kind = "uimm", field = "acc", default = "group" }'),
        ["instruction ACC", "\"group\"", "width load"],
    ),
    "mxm-occupancy-off-the-mxm": (
        fault(ISA_TEXT, 'occupancy = "n"', 'occupancy = "mxm"'),
        ["instruction NOP", "occupancy \"mxm\""],
    ),
    "missing-fields-table": (
        fault(ISA_TEXT, "[fields]\n", "[fieldz]\n"),
        ["top level", "fields"],
    ),
}


@pytest.mark.parametrize("case", sorted(ISA_CASES))
def test_load_isa_rejects_fault(tmp_path: Path, case: str) -> None:
    text, words = ISA_CASES[case]
    path = tmp_path / f"bad-{case}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_isa(path)
    message = info.value.render()
    assert f"bad-{case}.toml" in message
    for word in words:
        assert word in message


def test_load_isa_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(ISA_TEXT + "\n[[instruction]\n", encoding="utf-8")
    with pytest.raises(SpecError, match="broken.toml"):
        load_isa(path)


def test_load_isa_accepts_the_shipped_text_copied(tmp_path: Path) -> None:
    # the faults above are the only difference: the unmodified text loads
    path = tmp_path / "lpu.toml"
    path.write_text(ISA_TEXT, encoding="utf-8")
    assert len(load_isa(path).instructions) == ISA_TEXT.count("[[instruction]]")


CHIP_CASES = {
    "bad-status": (
        fault(CHIP_TEXT, 'lanes = { value = 320, status = "published"',
              'lanes = { value = 320, status = "guessed"'),
        ["param lanes", "'guessed'"],
    ),
    "missing-param": (
        re.sub(r"^mem_banks = .*\n", "", CHIP_TEXT, flags=re.M),
        ["params", "missing mem_banks"],
    ),
    "empty-source": (
        fault(CHIP_TEXT, 'mxm_cols = { value = 320, status = "inferred", source = "as the TSP" }',
              'mxm_cols = { value = 320, status = "inferred", source = "" }'),
        ["param mxm_cols", "source"],
    ),
    "param-without-source": (
        fault(CHIP_TEXT, 'mxm_cols = { value = 320, status = "inferred", source = "as the TSP" }',
              'mxm_cols = { value = 320, status = "inferred" }'),
        ["param mxm_cols"],
    ),
    "string-value": (
        fault(CHIP_TEXT, "lanes = { value = 320,", 'lanes = { value = "320",'),
        ["param lanes", "'320'"],
    ),
    "large-alu-out-of-range": (
        fault(CHIP_TEXT, "value = [0, 5, 10, 15]", "value = [0, 5, 10, 16]"),
        ["param vxm_large_alus"],
    ),
    "no-layout": (
        CHIP_TEXT.split("[[layout]]")[0] + "[latency]\n",
        ["layout", "missing"],
    ),
    "layout-unknown-param": (
        fault(CHIP_TEXT, 'units = "vxm_alus"', 'units = "vxm_alu"'),
        ["layout VXM", "'vxm_alu'"],
    ),
    "two-vxm-groups": (
        fault(CHIP_TEXT, 'kind = "VXM"\nunits = "vxm_alus"\n',
              'kind = "VXM"\nunits = "vxm_alus"\n[[layout]]\nkind = "VXM"\nunits = 1\n'),
        ["layout", "VXM0"],
    ),
    "load-group-not-dividing-the-streams": (
        fault(CHIP_TEXT, "mxm_load_streams = { value = 16,", "mxm_load_streams = { value = 12,"),
        ["param mxm_load_streams", "12 must divide streams_per_direction (32)"],
    ),
    "odd-load-group": (
        fault(CHIP_TEXT, "mxm_load_streams = { value = 16,", "mxm_load_streams = { value = 1,"),
        ["param mxm_load_streams", "a multiple of 2"],
    ),
    "three-planes-per-fp16-product": (
        fault(CHIP_TEXT, "mxm_fp16_planes = { value = 2,", "mxm_fp16_planes = { value = 3,"),
        ["param mxm_fp16_planes", "3 is not 1 or 2"],
    ),
    "fp16-rate-not-a-whole-number-of-cycles": (
        fault(CHIP_TEXT, "mxm_fp16_fraction = { value = 0.25,",
              "mxm_fp16_fraction = { value = 0.3,"),
        ["param mxm_fp16_fraction", "1.66667 is not a whole number of cycles"],
    ),
    "latency-unknown-mnemonic": (
        CHIP_TEXT + "Frobnicate = 3\n",
        ["latency Frobnicate", "not an instruction"],
    ),
    "latency-not-a-number": (
        CHIP_TEXT + 'Add = "fast"\n',
        ["latency Add", "'fast'"],
    ),
}


@pytest.mark.parametrize("case", sorted(CHIP_CASES))
def test_load_chip_rejects_fault(tmp_path: Path, case: str) -> None:
    text, words = CHIP_CASES[case]
    assert text != CHIP_TEXT
    path = tmp_path / f"bad-{case}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_chip(path)
    message = info.value.render()
    assert f"bad-{case}.toml" in message
    for word in words:
        assert word in message


def test_load_chip_accepts_the_shipped_text_copied(tmp_path: Path) -> None:
    path = tmp_path / "copy.toml"
    path.write_text(CHIP_TEXT, encoding="utf-8")
    assert load_chip(path).name == "lp30"
