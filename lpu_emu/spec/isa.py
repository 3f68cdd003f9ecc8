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
STREAM_WIDTHS = ("dtype", "dtype2", "one", "acc", "sg16")
SG16 = 16  # a Transpose stream group: 16 streams (published: "Transpose sg16")
ACC_DTYPE = {"int8": "int32"}  # MXM accumulator dtype by input dtype; every float -> fp32


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
    default: int | None = None
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
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
            raise _fail(path, f"field {name}", "must be [lsb, width]")
        lsb, width = value
        if lsb < 0 or width < 1 or lsb + width > word_bits:
            raise _fail(path, f"field {name}", f"bits {lsb}..{lsb + width - 1} do not fit in {word_bits}")
        fields[name] = Field(name, lsb, width)
    for required in ("opcode", "dtype"):
        if required not in fields:
            raise _fail(path, "fields", f"missing the {required!r} field")
    return fields


def _load_dtypes(path: Path, raw: dict) -> dict[str, DType]:
    dtypes = {}
    for name, d in raw.items():
        try:
            dtypes[name] = DType(name, int(d["code"]), int(d["width"]), str(d["kind"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(path, f"dtype {name}", f"needs code, width, kind ({exc})") from None
    codes = [d.code for d in dtypes.values()]
    if len(set(codes)) != len(codes) or 0 in codes:
        raise _fail(path, "dtypes", "codes must be unique and non-zero (0 means untyped)")
    return dtypes


def _load_operand(path: Path, where: str, raw: dict, fields: dict[str, Field]) -> Operand:
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
        raise _fail(path, where, f"stream operand {raw.get('name')!r} needs role in {STREAM_ROLES} and width in {STREAM_WIDTHS}")
    return Operand(str(raw["name"]), kind, names, role, width, raw.get("default"), int(raw.get("min", 0)))


def _check_layout(path: Path, ins: Instruction, fields: dict[str, Field], word_bits: int) -> None:
    used = ["opcode"] + (["dtype"] if ins.typed else []) + [f for op in ins.operands for f in op.fields]
    bits = 0
    for name in used:
        f = fields[name]
        m = f.mask << f.lsb
        if bits & m:
            raise _fail(path, f"instruction {ins.mnemonic}", f"field {name!r} overlaps another field it uses")
        bits |= m
    seen_default = False
    for op in ins.operands:
        if op.default is None and seen_default and op.kind != "dtype2":
            raise _fail(path, f"instruction {ins.mnemonic}", "operands with defaults must come last")
        seen_default |= op.default is not None


def _load_instruction(path: Path, raw: dict, fields, dtype_sets, word_bits) -> Instruction:
    name = raw.get("mnemonic", "?")
    where = f"instruction {name}"
    for key in ("mnemonic", "slice", "opcode", "origin", "operands", "latency", "semantics", "example"):
        if key not in raw:
            raise _fail(path, where, f"missing key {key!r}")
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
    if isinstance(ins.latency, int) and ins.latency < 1:
        raise _fail(path, where, "latency must be at least 1 cycle")
    _check_layout(path, ins, fields, word_bits)
    return ins


def load_isa(path: Path | None = None) -> Isa:
    """Load and validate the ISA; raise SpecError naming the file and the entry at fault."""
    path = path or isa_dir() / "lpu.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the ISA: {exc}") from None
    word_bits = int(raw["format"]["word_bits"])
    fields = _load_fields(path, raw["fields"], word_bits)
    dtypes = _load_dtypes(path, raw["dtypes"])
    dtype_sets = {k: tuple(v) for k, v in raw["dtype_sets"].items()}
    for k, v in dtype_sets.items():
        unknown = set(v) - set(dtypes)
        if unknown:
            raise _fail(path, f"dtype set {k}", f"unknown dtypes {sorted(unknown)}")
    instructions = tuple(
        _load_instruction(path, r, fields, dtype_sets, word_bits) for r in raw["instruction"]
    )
    for attr in ("mnemonic", "opcode"):
        values = [getattr(i, attr) for i in instructions]
        dups = {v for v in values if values.count(v) > 1}
        if dups:
            raise _fail(path, "instructions", f"duplicate {attr}: {sorted(dups)}")
    return Isa(int(raw["format"]["version"]), word_bits, fields, dtypes, instructions, str(path))


@cache
def default_isa() -> Isa:
    """The shipped ISA, loaded once per process."""
    return load_isa()
