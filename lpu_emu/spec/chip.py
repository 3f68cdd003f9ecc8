"""Chip presets (isa/chips/*.toml): parameters with provenance, the slice layout, derived figures.

A preset lists its slices west to east as groups; `load_chip` expands them into one `Slice` per
instruction queue with its position. Derived figures (capacity, peak bandwidth, peak ops/s) are
computed here from the parameters, never typed into a preset.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lpu_emu.errors import SpecError, UsageError
from lpu_emu.spec.isa import PAIRED_WIDTH, default_isa, isa_dir

STATUSES = ("published", "inferred")
REQUIRED_PARAMS = (
    "clock_hz", "lanes", "superlane_lanes", "streams_per_direction", "mem_slices_per_hemisphere",
    "mem_banks", "mem_addresses_per_bank", "mxm_planes_per_hemisphere", "mxm_rows", "mxm_cols",
    "mxm_accumulators", "vxm_alus", "vxm_large_alus", "sxm_units_per_hemisphere",
    "c2c_links_per_edge", "c2c_link_bytes_per_s", "c2c_link_latency", "mxm_fp16_fraction",
    "mxm_load_streams", "mxm_fp16_planes",
)
# positive numbers; the others: integers
REAL_PARAMS = ("clock_hz", "c2c_link_bytes_per_s", "mxm_fp16_fraction")
LIST_PARAMS = ("vxm_large_alus",)  # lists of integers
LAYOUT_KEYS = ("kind", "hemisphere", "count", "units")


@dataclass(frozen=True)
class Param:
    name: str
    value: float | int | tuple[int, ...]
    status: str  # "published" | "inferred"
    source: str


@dataclass(frozen=True)
class Slice:
    """One instruction queue: a MEM slice, a VXM ALU, an MXM plane, an SXM unit, a C2C edge."""

    index: int
    name: str
    kind: str
    hemisphere: str  # "W" | "E" | "" (the VXM)
    position: int  # column, 0 = westmost
    unit: int  # MEM: slice number counted from the VXM outwards; others: unit at the position


@dataclass(frozen=True, eq=False)
class Chip:
    name: str
    title: str
    params: dict[str, Param]
    slices: tuple[Slice, ...]
    latency: dict[str, int]  # per-mnemonic overrides of isa/lpu.toml
    source: str

    def p(self, name: str):
        """A parameter's value."""
        return self.params[name].value

    @property
    def lanes(self) -> int:
        return int(self.p("lanes"))

    @property
    def clock_hz(self) -> float:
        return float(self.p("clock_hz"))

    @property
    def positions(self) -> int:
        return max(s.position for s in self.slices) + 1

    @property
    def mem_slices(self) -> tuple[Slice, ...]:
        return _mem_slices(self)

    def mem_ordinal(self, name: str) -> int | None:
        """A MEM slice's ordinal among the MEM slices, west to east (None: not a MEM slice)."""
        return _mem_ordinals(self).get(name.upper())

    def slice_named(self, name: str) -> Slice | None:
        return _slice_index(self).get(name.upper())

    # ---- derived figures ----
    @property
    def sram_bytes(self) -> int:
        banks, addresses = int(self.p("mem_banks")), int(self.p("mem_addresses_per_bank"))
        return len(self.mem_slices) * banks * addresses * self.lanes

    @property
    def sram_bytes_per_s(self) -> float:
        """Peak: every MEM slice reads one vector and writes one vector per cycle."""
        return len(self.mem_slices) * self.lanes * 2 * self.clock_hz

    @property
    def mxm_planes(self) -> int:
        return sum(1 for s in self.slices if s.kind == "MXM")

    @property
    def mxm_macs(self) -> int:
        return self.mxm_planes * int(self.p("mxm_rows")) * int(self.p("mxm_cols"))

    @property
    def mxm_int8_ops_per_s(self) -> float:
        """Peak int8 (and fp8) ops/s: one MAC (2 ops) per cell per cycle, one plane per product."""
        return self.mxm_macs * 2 * self.clock_hz

    @property
    def mxm_fp16_ops_per_s(self) -> float:
        """fp16/bf16 peak: the preset's ratio to the int8 peak (two planes per product and fewer
        products per cycle: GroqChip 1 publishes 188 FP16 TFLOPS against 750 INT8 TOPS)."""
        return self.mxm_int8_ops_per_s * float(self.p("mxm_fp16_fraction"))

    @property
    def mxm_load_streams(self) -> int:
        """Streams one plane takes per cycle when loading weights (one LW's load group)."""
        return int(self.p("mxm_load_streams"))

    @property
    def mxm_float_occupancy(self) -> int:
        """Cycles an fp16/bf16 ACC keeps its plane pair busy: the pair of mxm_fp16_planes planes
        delivers mxm_fp16_fraction of their int8 rate, so one product every
        1 / (planes x fraction) cycles (GroqChip 1: 1 / (2 x 0.25) = 2)."""
        return round(1 / (int(self.p("mxm_fp16_planes")) * float(self.p("mxm_fp16_fraction"))))

    @property
    def c2c_links(self) -> int:
        return 2 * int(self.p("c2c_links_per_edge"))

    @property
    def c2c_bytes_per_s(self) -> float:
        return self.c2c_links * float(self.p("c2c_link_bytes_per_s"))

    def derived(self) -> dict[str, float]:
        return {
            "sram_bytes": self.sram_bytes,
            "sram_bytes_per_s": self.sram_bytes_per_s,
            "mxm_int8_ops_per_s": self.mxm_int8_ops_per_s,
            "mxm_fp16_ops_per_s": self.mxm_fp16_ops_per_s,
            "c2c_bytes_per_s": self.c2c_bytes_per_s,
        }


@cache
def _slice_index(chip: Chip) -> dict[str, Slice]:
    return {s.name: s for s in chip.slices}


@cache
def _mem_slices(chip: Chip) -> tuple[Slice, ...]:
    return tuple(s for s in chip.slices if s.kind == "MEM")


@cache
def _mem_ordinals(chip: Chip) -> dict[str, int]:
    return {s.name: i for i, s in enumerate(_mem_slices(chip))}


def _fail(path: Path, where: str, message: str) -> SpecError:
    return SpecError(f"{path.name}: {where}: {message}")


def _load_params(path: Path, raw: dict) -> dict[str, Param]:
    params = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != {"value", "status", "source"}:
            raise _fail(path, f"param {name}", "must be { value, status, source }")
        if entry["status"] not in STATUSES:
            message = f"status {entry['status']!r} is not one of {STATUSES}"
            raise _fail(path, f"param {name}", message)
        if not isinstance(entry["source"], str) or not entry["source"].strip():
            raise _fail(path, f"param {name}", "source must say where the value comes from")
        value = entry["value"]
        value = tuple(value) if isinstance(value, list) else value
        params[name] = Param(name, value, entry["status"], entry["source"])
    missing = [p for p in REQUIRED_PARAMS if p not in params]
    if missing:
        raise _fail(path, "params", f"missing {', '.join(missing)}")
    for name in REQUIRED_PARAMS:
        _check_value(path, params[name])
    large, alus = params["vxm_large_alus"].value, params["vxm_alus"].value
    if len(set(large)) != len(large) or any(a >= alus for a in large):  # type: ignore[arg-type, operator]
        message = f"must be distinct ALU numbers below vxm_alus ({alus})"
        raise _fail(path, "param vxm_large_alus", message)
    _check_mxm_params(path, params)
    return params


def _check_mxm_params(path: Path, params: dict[str, Param]) -> None:
    """A load group must tile the streams and hold whole rows of every MXM dtype; a float
    product takes one plane or a pair, at a whole number of cycles per product."""
    load, streams = params["mxm_load_streams"].value, params["streams_per_direction"].value
    if streams % load or load % PAIRED_WIDTH:  # type: ignore[operator]
        raise _fail(path, "param mxm_load_streams", f"{load} must divide streams_per_direction "
                    f"({streams}) and be a multiple of {PAIRED_WIDTH} (the widest MXM dtype)")
    planes = params["mxm_fp16_planes"].value
    if planes not in (1, PAIRED_WIDTH):
        raise _fail(path, "param mxm_fp16_planes", f"{planes} is not 1 or {PAIRED_WIDTH}")
    per_product = 1 / (planes * float(params["mxm_fp16_fraction"].value))  # type: ignore[operator]
    if per_product < 1 or abs(per_product - round(per_product)) > 1e-9:
        raise _fail(path, "param mxm_fp16_fraction",
                    f"1 / (mxm_fp16_planes x mxm_fp16_fraction) = {per_product:g} is not a whole "
                    "number of cycles per fp16 product")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_value(path: Path, param: Param) -> None:
    value = param.value
    if param.name in LIST_PARAMS:
        ok = isinstance(value, tuple) and all(_is_int(v) and v >= 0 for v in value)
        expected = "a list of integers >= 0"
    elif param.name in REAL_PARAMS:
        ok = (_is_int(value) or isinstance(value, float)) and value > 0  # type: ignore[operator]
        expected = "a positive number"
    else:
        ok = _is_int(value) and value > 0  # type: ignore[operator]
        expected = "a positive integer"
    if not ok:
        raise _fail(path, f"param {param.name}", f"value {value!r} is not {expected}")


def _count(path: Path, params: dict[str, Param], group: dict, key: str) -> int:
    value = group.get(key, 1)
    if isinstance(value, str):
        if value not in params:
            raise _fail(path, f"layout {group.get('kind')}", f"{key} names unknown param {value!r}")
        value = params[value].value
    if not isinstance(value, int) or value < 1:
        raise _fail(path, f"layout {group.get('kind')}", f"{key} must be a positive integer")
    return value


def _expand_layout(path: Path, params: dict[str, Param], layout: list[dict]) -> tuple[Slice, ...]:
    slices: list[Slice] = []
    position = 0
    if not isinstance(layout, list) or not layout:
        raise _fail(path, "layout", "missing: list the slices west to east as [[layout]] groups")
    for group in layout:
        kind, hemi = group.get("kind"), group.get("hemisphere", "")
        if kind not in ("MEM", "VXM", "MXM", "SXM", "C2C") or hemi not in ("W", "E", ""):
            raise _fail(path, "layout", f"bad group kind={kind!r} hemisphere={hemi!r}")
        unknown = sorted(set(group) - set(LAYOUT_KEYS))
        if unknown:
            raise _fail(path, f"layout {kind}", f"unknown key(s) {', '.join(unknown)}")
        if (kind == "VXM") != (hemi == ""):
            message = "the VXM has no hemisphere; every other group needs W or E"
            raise _fail(path, f"layout {kind}", message)
        count, units = _count(path, params, group, "count"), _count(path, params, group, "units")
        if kind == "MEM":
            # West MEM slices are numbered from the VXM outwards: MEM_W{n-1} is westmost.
            numbers = range(count - 1, -1, -1) if hemi == "W" else range(count)
            for n in numbers:
                slices.append(Slice(len(slices), f"MEM_{hemi}{n}", kind, hemi, position, n))
                position += 1
            continue
        for _ in range(count):
            for u in range(units):
                if kind == "C2C" and units == 1:
                    name = f"C2C_{hemi}"
                elif kind == "VXM":
                    name = f"VXM{u}"
                else:
                    name = f"{kind}_{hemi}{u}"
                slices.append(Slice(len(slices), name, kind, hemi, position, u))
            position += 1
    names = [s.name for s in slices]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise _fail(path, "layout", f"two slices share a name: {', '.join(dups)}")
    if sum(1 for g in layout if g.get("kind") == "VXM") != 1:
        raise _fail(path, "layout", "needs exactly one VXM group (the centre)")
    return tuple(slices)


def _load_latency(path: Path, raw: dict) -> dict[str, int]:
    known = default_isa().by_mnemonic()
    latency = {}
    for mnemonic, cycles in raw.items():
        if mnemonic.lower() not in known:
            raise _fail(path, f"latency {mnemonic}", "not an instruction of the ISA")
        if not _is_int(cycles) or cycles < 1:
            raise _fail(path, f"latency {mnemonic}", f"{cycles!r} is not a number of cycles >= 1")
        latency[mnemonic.lower()] = cycles
    return latency


def load_chip(path: Path) -> Chip:
    """Load and validate one preset file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the chip preset: {exc}") from None
    params = _load_params(path, raw.get("params", {}))
    slices = _expand_layout(path, params, raw.get("layout", []))
    meta = raw.get("chip", {})
    latency = _load_latency(path, raw.get("latency", {}))
    name, title = meta.get("name", path.stem), meta.get("title", "")
    return Chip(name, title, params, slices, latency, str(path))


def chips_dir() -> Path:
    return isa_dir() / "chips"


@cache
def chip_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in chips_dir().glob("*.toml")))


@cache
def default_chip_name() -> str:
    for name in chip_names():
        if tomllib.loads((chips_dir() / f"{name}.toml").read_text()).get("chip", {}).get("default"):
            return name
    raise SpecError(f"{chips_dir()}: no preset is marked default = true")


@cache
def get_chip(name: str | None = None) -> Chip:
    """A preset by name (default: the one marked default); UsageError lists the valid names."""
    name = name or default_chip_name()
    if name not in chip_names():
        raise UsageError(f"unknown chip {name!r}", hint=f"valid chips: {', '.join(chip_names())}")
    return load_chip(chips_dir() / f"{name}.toml")
