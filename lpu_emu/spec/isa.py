"""The instruction set, loaded from isa/lpu.toml into frozen dataclasses and validated.

This is the single source of truth: the assembler's vocabulary, the disassembler, the core's
decode tables and docs/isa.md are all derived from the `Isa` object built here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lpu_emu.errors import SpecError

SLICE_KINDS = ("ICU", "MEM", "VXM", "MXM", "SXM", "C2C")
OPERAND_KINDS = ("stream", "mem", "uimm", "simm", "imm32", "lanemap", "link", "dtype2")
STREAM_ROLES = ("in", "out")
STREAM_WIDTHS = ("dtype", "dtype2", "one", "acc", "sg16", "load")  # load: mxm_load_streams
ORIGINS = ("published", "chosen")
DTYPE_KINDS = ("int", "float")
ALUS = ("large",)
LATENCY_NAMES = ("link",)  # a latency that is a preset parameter, not a number
OCCUPANCY_NAMES = ("n", "repeat", "mxm")  # NOP's n; Repeat's repetitions; MXM by dtype
TABLES = ("format", "fields", "dtypes", "dtype_sets", "instruction")
INSTRUCTION_KEYS = (
    "mnemonic", "slice", "opcode", "origin", "dtypes", "operands", "latency", "occupancy", "alu",
    "semantics", "example",
)
REQUIRED_INSTRUCTION_KEYS = (
    "mnemonic", "slice", "opcode", "origin", "operands", "latency", "semantics", "example",
)
OPERAND_KEYS = ("name", "kind", "field", "fields", "role", "width", "default", "min")
SG16 = 16  # a Transpose stream group: 16 streams (published: "Transpose sg16")
ACC_DTYPE = {"int8": "int32"}  # MXM accumulator dtype by input dtype; every float -> fp32
DEFAULT_NAMES = ("group",)  # a default that depends on the chip and dtype: the load group's rows
PAIRED_WIDTH = 2  # MXM input dtypes this wide (fp16, bf16) take a plane pair (ISCA 2020)


def isa_dir() -> Path:
    """Where the isa/ data lives: shipped in the wheel as lpu_emu/_isa, or the source checkout."""
    here = Path(__file__).resolve().parent.parent
    shipped = here / "_isa"
    return shipped if shipped.is_dir() else here.parent / "isa"


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


@dataclass(frozen=True)
class DType:
    name: str
    code: int
    width: int  # bytes per lane = streams per stream group
    kind: str  # "int" | "float"


@dataclass(frozen=True)
class Operand:
    name: str
    kind: str
    fields: tuple[str, ...]
    role: str | None = None  # streams: "in" | "out"
    width: str = "dtype"  # streams: how many streams the group spans
    default: int | str | None = None  # a number, or a DEFAULT_NAMES entry
    min: int = 0


@dataclass(frozen=True)
class Instruction:
    mnemonic: str
    slice: str
    opcode: int
    origin: str
    dtypes: tuple[str, ...]  # empty: untyped
    operands: tuple[Operand, ...]
    latency: int | str  # cycles, or "link" (the preset's C2C link latency)
    occupancy: int | str  # cycles, or "n" (NOP) / "repeat"
    alu: str | None
    semantics: str
    example: str

    @property
    def typed(self) -> bool:
        return bool(self.dtypes)

    @property
    def has_dtype2(self) -> bool:
        return any(op.kind == "dtype2" for op in self.operands)

    def syntax(self) -> str:
        """The assembly form, e.g. `Add.<dtype> x, y, z`."""
        head = self.mnemonic
        if self.typed:
            head += ".<dtype>"
        ops = [op for op in self.operands if op.kind != "dtype2"]
        if self.has_dtype2:
            head += ".<dtype>"
        parts = [f"[{op.name}]" if op.default is not None else op.name for op in ops]
        return head + (" " + ", ".join(parts) if parts else "")


@dataclass(frozen=True, eq=False)
class Isa:
    version: int
    word_bits: int
    fields: dict[str, Field]
    dtypes: dict[str, DType]
    instructions: tuple[Instruction, ...]
    source: str

    def by_mnemonic(self) -> dict[str, Instruction]:
        return _tables(self)[0]

    def by_opcode(self) -> dict[int, Instruction]:
        return _tables(self)[1]

    def dtype_by_code(self) -> dict[int, DType]:
        return _tables(self)[2]

    def lookup(self, mnemonic: str) -> Instruction | None:
        return self.by_mnemonic().get(mnemonic.lower())


@cache
def _tables(isa: Isa) -> tuple[dict, dict, dict]:
    """Lookup tables, built once per Isa (identity-hashed)."""
    return (
        {ins.mnemonic.lower(): ins for ins in isa.instructions},
        {ins.opcode: ins for ins in isa.instructions},
        {d.code: d for d in isa.dtypes.values()},
    )


def _fail(path: Path, where: str, message: str) -> SpecError:
    return SpecError(f"{path.name}: {where}: {message}")


def _load_fields(path: Path, raw: dict, word_bits: int) -> dict[str, Field]:
    fields = {}
    for name, value in raw.items():
        if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)):
            raise _fail(path, f"field {name}", "must be [lsb, width]")
        lsb, width = value
        if lsb < 0 or width < 1 or lsb + width > word_bits:
            bits = f"{lsb}..{lsb + width - 1}"
            raise _fail(path, f"field {name}", f"bits {bits} do not fit in {word_bits}")
        fields[name] = Field(name, lsb, width)
    for required in ("opcode", "dtype"):
        if required not in fields:
            raise _fail(path, "fields", f"missing the {required!r} field")
    return fields


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _load_dtypes(path: Path, raw: dict, fields: dict[str, Field]) -> dict[str, DType]:
    dtypes = {}
    for name, d in raw.items():
        try:
            dtypes[name] = DType(name, int(d["code"]), int(d["width"]), str(d["kind"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(path, f"dtype {name}", f"needs code, width, kind ({exc})") from None
        if dtypes[name].kind not in DTYPE_KINDS:
            valid = ", ".join(DTYPE_KINDS)
            raise _fail(path, f"dtype {name}", f"kind {d['kind']!r} is not one of {valid}")
        if dtypes[name].width not in (1, 2, 4):
            raise _fail(path, f"dtype {name}", f"width {d['width']!r} is not 1, 2 or 4 bytes")
        if not 0 < dtypes[name].code <= fields["dtype"].mask:
            raise _fail(path, f"dtype {name}", f"code {d['code']!r} does not fit the dtype field")
    codes = [d.code for d in dtypes.values()]
    if len(set(codes)) != len(codes) or 0 in codes:
        raise _fail(path, "dtypes", "codes must be unique and non-zero (0 means untyped)")
    return dtypes


def _load_operand(path: Path, where: str, raw: dict, fields: dict[str, Field]) -> Operand:
    if not isinstance(raw, dict):
        raise _fail(path, where, f"an operand must be a table, not {raw!r}")
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise _fail(path, where, f"an operand needs a name: {raw}")
    unknown = sorted(set(raw) - set(OPERAND_KEYS))
    if unknown:
        raise _fail(path, where, f"operand {raw['name']!r} has unknown key(s) {', '.join(unknown)}")
    kind = raw.get("kind")
    if kind not in OPERAND_KINDS:
        raise _fail(path, where, f"operand kind {kind!r} is not one of {', '.join(OPERAND_KINDS)}")
    names = tuple(raw["fields"]) if "fields" in raw else (raw.get("field"),)
    for f in names:
        if f not in fields:
            raise _fail(path, where, f"operand {raw.get('name')!r} names unknown field {f!r}")
    expected = 2 if kind == "mem" else 1
    if len(names) != expected:
        raise _fail(path, where, f"a {kind} operand fills {expected} field(s), not {len(names)}")
    role = raw.get("role")
    width = raw.get("width", "dtype")
    if kind == "stream" and (role not in STREAM_ROLES or width not in STREAM_WIDTHS):
        raise _fail(
            path, where,
            f"stream operand {raw.get('name')!r} needs role in {STREAM_ROLES} and width in "
            f"{STREAM_WIDTHS}",
        )
    op = Operand(str(raw["name"]), kind, names, role, width, raw.get("default"), raw.get("min", 0))
    limit = fields[names[0]].mask
    for key in ("default", "min"):
        value = getattr(op, key)
        if value is None or (key == "default" and value in DEFAULT_NAMES and kind == "uimm"):
            continue
        low = -(limit // 2 + 1) if kind == "simm" else 0
        high = limit // 2 if kind == "simm" else limit
        if not _is_int(value) or not low <= value <= high:
            message = f"operand {op.name!r}: {key} {value!r} does not fit field {names[0]!r}"
            raise _fail(path, where, message)
    return op


def _check_layout(path: Path, ins: Instruction, fields: dict[str, Field], word_bits: int) -> None:
    used = ["opcode"] + (["dtype"] if ins.typed else [])
    used += [f for op in ins.operands for f in op.fields]
    owner: dict[int, str] = {}  # bit -> the field that uses it
    for name in used:
        f = fields[name]
        for bit in range(f.lsb, f.lsb + f.width):
            if bit in owner:
                other = fields[owner[bit]]
                raise _fail(
                    path, f"instruction {ins.mnemonic}",
                    f"field {name!r} (bits {f.lsb}..{f.lsb + f.width - 1}) overlaps field "
                    f"{other.name!r} (bits {other.lsb}..{other.lsb + other.width - 1})",
                )
            owner[bit] = name
    seen_default = False
    for op in ins.operands:
        if op.default is None and seen_default and op.kind != "dtype2":
            raise _fail(path, f"instruction {ins.mnemonic}", "operands with defaults come last")
        seen_default |= op.default is not None


def _check_timing(path: Path, where: str, ins: Instruction) -> None:
    timing = (
        ("latency", ins.latency, LATENCY_NAMES), ("occupancy", ins.occupancy, OCCUPANCY_NAMES),
    )
    for key, value, names in timing:
        if _is_int(value):
            if value < 1:
                raise _fail(path, where, f"{key} must be at least 1 cycle")
        elif value not in names:
            valid = ", ".join(names)
            raise _fail(path, where, f"{key} {value!r} is not a number of cycles or one of {valid}")
    if ins.occupancy == "n" and "n" not in [op.name for op in ins.operands]:
        raise _fail(path, where, "occupancy \"n\" needs an operand named n")


def _load_instruction(path: Path, raw: dict, fields, dtype_sets, word_bits) -> Instruction:
    name = raw.get("mnemonic", "?")
    where = f"instruction {name}"
    for key in REQUIRED_INSTRUCTION_KEYS:
        if key not in raw:
            raise _fail(path, where, f"missing key {key!r}")
    unknown = sorted(set(raw) - set(INSTRUCTION_KEYS))
    if unknown:
        valid = ", ".join(INSTRUCTION_KEYS)
        raise _fail(path, where, f"unknown key(s) {', '.join(unknown)} (valid: {valid})")
    if not isinstance(raw["mnemonic"], str) or not raw["mnemonic"].isidentifier():
        raise _fail(path, where, f"mnemonic {raw['mnemonic']!r} is not a name")
    if raw["origin"] not in ORIGINS:
        raise _fail(path, where, f"origin {raw['origin']!r} is not one of {', '.join(ORIGINS)}")
    for key in ("semantics", "example"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise _fail(path, where, f"{key} must be a non-empty string")
    if not isinstance(raw["operands"], list):
        raise _fail(path, where, "operands must be a list")
    if not _is_int(raw["opcode"]):
        raise _fail(path, where, f"opcode {raw['opcode']!r} is not an integer")
    if raw["slice"] not in SLICE_KINDS:
        raise _fail(path, where, f"slice {raw['slice']!r} is not one of {', '.join(SLICE_KINDS)}")
    dt = raw.get("dtypes")
    if dt is not None and dt not in dtype_sets:
        raise _fail(path, where, f"dtypes {dt!r} is not a dtype set ({', '.join(dtype_sets)})")
    operands = tuple(_load_operand(path, where, op, fields) for op in raw["operands"])
    ins = Instruction(
        mnemonic=raw["mnemonic"],
        slice=raw["slice"],
        opcode=int(raw["opcode"]),
        origin=raw["origin"],
        dtypes=tuple(dtype_sets[dt]) if dt else (),
        operands=operands,
        latency=raw["latency"],
        occupancy=raw.get("occupancy", 1),
        alu=raw.get("alu"),
        semantics=raw["semantics"],
        example=raw["example"],
    )
    if not (0 < ins.opcode <= fields["opcode"].mask):
        raise _fail(path, where, f"opcode {ins.opcode} does not fit the opcode field")
    _check_timing(path, where, ins)
    names = [op.name for op in ins.operands]
    if len(set(names)) != len(names):
        raise _fail(path, where, f"two operands share a name: {', '.join(names)}")
    if ins.alu is not None and (ins.alu not in ALUS or ins.slice != "VXM"):
        raise _fail(path, where, f"alu {ins.alu!r}: only VXM instructions may say alu = \"large\"")
    if ins.has_dtype2 and not ins.typed:
        raise _fail(path, where, "a dtype2 operand needs a typed instruction (dtypes = ...)")
    if any(op.width == "dtype2" for op in operands if op.kind == "stream") and not ins.has_dtype2:
        raise _fail(path, where, "a stream of width dtype2 needs a dtype2 operand")
    _check_mxm_forms(path, where, ins)
    _check_layout(path, ins, fields, word_bits)
    return ins


def _check_mxm_forms(path: Path, where: str, ins: Instruction) -> None:
    """A load-group stream needs its `rows` operand (the group width read is rows x width);
    occupancy "mxm" and a "group" default only make sense on typed MXM instructions."""
    loads = [op for op in ins.operands if op.kind == "stream" and op.width == "load"]
    rows = [op for op in ins.operands if op.name == "rows" and op.kind == "uimm"]
    if loads and (not rows or not ins.typed or len(loads) > 1):
        raise _fail(path, where, "a stream of width load needs a typed instruction with one "
                    "such stream and a uimm operand named rows")
    if any(isinstance(op.default, str) for op in ins.operands) and not loads:
        raise _fail(path, where, "a default of \"group\" needs a stream of width load")
    if ins.occupancy == "mxm" and not (ins.slice == "MXM" and ins.typed):
        raise _fail(path, where, "occupancy \"mxm\" is for typed MXM instructions")


def load_isa(path: Path | None = None) -> Isa:
    """Load and validate the ISA; raise SpecError naming the file and the entry at fault."""
    path = path or isa_dir() / "lpu.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the ISA: {exc}") from None
    missing = [t for t in TABLES if t not in raw]
    if missing:
        raise _fail(path, "top level", f"missing table(s) {', '.join(missing)}")
    try:
        word_bits, version = int(raw["format"]["word_bits"]), int(raw["format"]["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, "format", f"needs integer word_bits and version ({exc})") from None
    fields = _load_fields(path, raw["fields"], word_bits)
    dtypes = _load_dtypes(path, raw["dtypes"], fields)
    dtype_sets = {k: tuple(v) for k, v in raw["dtype_sets"].items()}
    for k, v in dtype_sets.items():
        unknown = set(v) - set(dtypes)
        if unknown:
            raise _fail(path, f"dtype set {k}", f"unknown dtypes {sorted(unknown)}")
    entries = raw["instruction"]
    if not isinstance(entries, list) or not all(isinstance(r, dict) for r in entries):
        raise _fail(path, "instruction", "must be an array of tables ([[instruction]])")
    instructions = tuple(
        _load_instruction(path, r, fields, dtype_sets, word_bits) for r in raw["instruction"]
    )
    seen_mnemonic: dict[str, Instruction] = {}
    seen_opcode: dict[int, Instruction] = {}
    for ins in instructions:
        first = seen_mnemonic.setdefault(ins.mnemonic.lower(), ins)
        if first is not ins:
            message = f"duplicate mnemonic: {first.mnemonic} (case-insensitive)"
            raise _fail(path, f"instruction {ins.mnemonic}", message)
        first = seen_opcode.setdefault(ins.opcode, ins)
        if first is not ins:
            message = f"duplicate opcode 0x{ins.opcode:02x}: also {first.mnemonic}"
            raise _fail(path, f"instruction {ins.mnemonic}", message)
    return Isa(version, word_bits, fields, dtypes, instructions, str(path))


@cache
def default_isa() -> Isa:
    """The shipped ISA, loaded once per process."""
    return load_isa()
