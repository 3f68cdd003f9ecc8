"""Program: what the assembler produces and the core runs; saved as a `.lpx` object file.

`.lpx` layout (little-endian): b"LPX\\0", u16 format version, u16 reserved, u64 payload length,
32-byte SHA-256 of the payload; payload = u32 header length, a canonical JSON header (sorted keys,
UTF-8), then the raw arrays it describes. A file that is truncated, corrupted, foreign or of another
version is rejected with a LoadError, never run.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpu_emu.errors import LoadError
from lpu_emu.files import FileRefused, read_bounded
from lpu_emu.spec.isa import default_isa

MAGIC = b"LPX\x00"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<4sHHQ32s")

# name -> numpy dtype of the per-instruction arrays, in file order
INSTRUCTION_ARRAYS = {
    "cycle": np.dtype("<i8"),
    "queue": np.dtype("<i2"),
    "word": np.dtype("<u8"),
    "src_file": np.dtype("<i2"),
    "src_line": np.dtype("<i4"),
    "src_col": np.dtype("<i2"),
}
INSTRUCTION_BYTES = sum(dt.itemsize for dt in INSTRUCTION_ARRAYS.values())
HEADER_KEYS = ("chip", "count", "files", "symbols", "segments", "lanemaps")
# Bounds on what a header may say (a loaded file is untrusted input; the chip-dependent checks,
# such as a tensor fitting its slice, are the core's: lpu_emu.core.decode.check_data).
MAX_INDEX = 2**31 - 1  # a count, bank, address, offset or number of elements
MAX_NAME = 256  # characters in a chip, tensor, slice, dtype or lane map name
MAX_PATH = 4096  # characters in a source file name
MAX_FILES = 2**15 - 1  # source files (src_file is int16)
MAX_ENTRIES = 2**20  # symbols, segments or lane maps
MAX_DIMS = 8  # dimensions of a tensor
MAX_DTYPE_BYTES = 4  # slices of a tensor (one, or one per byte of its dtype)
MAX_LANES = 2**16  # entries of a lane map
MAX_LPX_BYTES = 4 * 2**30  # a whole .lpx (instructions and the SRAM images of its tensors)


@dataclass(frozen=True)
class Tensor:
    """A named tensor placed in SRAM (see docs/design.md section 4 for the layout)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    slices: tuple[str, ...]  # one MEM slice, or width(dtype) slices (one byte plane each)
    bank: int
    addr: int

    def vectors(self) -> int:
        """Number of 320-lane vectors (all dimensions but the last)."""
        n = 1
        for d in self.shape[:-1]:
            n *= d
        return n


@dataclass(frozen=True)
class Segment:
    """Initial SRAM contents: whole 320-byte vectors from (slice, bank, addr) upwards."""

    slice: str
    bank: int
    addr: int
    data: bytes


@dataclass(frozen=True)
class LaneMap:
    name: str
    values: tuple[int, ...]  # one source lane per lane; -1: zero (Distribute only)


@dataclass(frozen=True, eq=False)
class Program:
    chip: str
    cycle: np.ndarray
    queue: np.ndarray
    word: np.ndarray
    src_file: np.ndarray
    src_line: np.ndarray
    src_col: np.ndarray
    files: tuple[str, ...] = ()
    symbols: tuple[Tensor, ...] = ()
    segments: tuple[Segment, ...] = ()
    lanemaps: tuple[LaneMap, ...] = ()
    meta: dict = field(default_factory=dict)  # not saved: e.g. the path it was loaded from

    def __len__(self) -> int:
        return len(self.word)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def symbol(self, name: str) -> Tensor | None:
        return next((t for t in self.symbols if t.name == name), None)

    def where(self, i: int) -> str:
        """`file:line` of instruction i, for messages."""
        f = int(self.src_file[i])
        name = self.files[f] if 0 <= f < len(self.files) else "?"
        return f"{name}:{int(self.src_line[i])}"

    # ---- serialisation ----
    def to_bytes(self) -> bytes:
        arrays = {
            k: np.ascontiguousarray(getattr(self, k), dtype=dt)
            for k, dt in INSTRUCTION_ARRAYS.items()
        }
        n = len(self.word)
        if any(len(a) != n for a in arrays.values()):
            raise ValueError("instruction arrays differ in length")
        blobs, offset, seg_meta = [], 0, []
        for a in arrays.values():
            blobs.append(a.tobytes())
            offset += len(blobs[-1])
        for s in self.segments:
            seg_meta.append(
                {
                    "slice": s.slice,
                    "bank": s.bank,
                    "addr": s.addr,
                    "offset": offset,
                    "nbytes": len(s.data),
                }
            )
            blobs.append(s.data)
            offset += len(s.data)
        header = {
            "chip": self.chip,
            "count": n,
            "files": list(self.files),
            "symbols": [
                {
                    "name": t.name,
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                    "slices": list(t.slices),
                    "bank": t.bank,
                    "addr": t.addr,
                }
                for t in self.symbols
            ],
            "segments": seg_meta,
            "lanemaps": [{"name": m.name, "values": list(m.values)} for m in self.lanemaps],
        }
        head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
        payload = struct.pack("<I", len(head)) + head + b"".join(blobs)
        digest = hashlib.sha256(payload).digest()
        return _PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(payload), digest) + payload

    def save(self, path: str | Path) -> None:
        """Write atomically: a failure never leaves a half-written file."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> Program:
        return _decode(data, name)

    @classmethod
    def load(cls, path: str | Path) -> Program:
        path = Path(path)
        try:
            data = read_bounded(path, MAX_LPX_BYTES)
        except FileRefused as exc:
            raise LoadError(f"{path}: cannot read: {exc}") from None
        prog = _decode(data, str(path))
        prog.meta["path"] = str(path)
        return prog


def _decode(data: bytes, name: str) -> Program:
    if len(data) < _PREAMBLE.size:
        if not MAGIC.startswith(data[:4]) or len(data) < 4:
            raise LoadError(
                f"{name}: not an lpu-emu object file (.lpx): too short ({len(data)} bytes)"
            )
        raise LoadError(
            f"{name}: truncated .lpx: {len(data)} bytes, the header alone is {_PREAMBLE.size}"
        )
    magic, version, _, length, digest = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise LoadError(f"{name}: not an lpu-emu object file (.lpx): bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise LoadError(
            f"{name}: .lpx format version {version}, this lpu-emu reads version {FORMAT_VERSION}",
            hint="reassemble the program from its source",
        )
    payload = data[_PREAMBLE.size :]
    if len(payload) != length:
        raise LoadError(
            f"{name}: truncated or padded .lpx: payload is {len(payload)} bytes, "
            f"the header says {length}"
        )
    if hashlib.sha256(payload).digest() != digest:
        raise LoadError(f"{name}: corrupted .lpx: checksum mismatch")
    try:
        return _parse_payload(payload, name)
    except LoadError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, RecursionError,
            MemoryError, struct.error, UnicodeDecodeError) as exc:
        # A payload with a valid checksum but bad contents was written by something else.
        raise LoadError(f"{name}: malformed .lpx payload: {type(exc).__name__}: {exc}") from None


class _Header:
    """Reads the untrusted JSON header: every field checked for type and range before use, so a
    hostile header is a LoadError naming the field, never an exception, a negative index or an
    allocation the file's own size does not pay for."""

    def __init__(self, name: str, body_size: int) -> None:
        self.name, self.body_size = name, body_size

    def fail(self, field: str, problem: str) -> LoadError:
        return LoadError(f"{self.name}: malformed .lpx header: {field}: {problem}",
                         hint="the .lpx was not written by lpu-emu's assembler; reassemble it")

    def table(self, value, field: str, keys: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, not {_kind(value)}")
        if set(value) != set(keys):
            extra, missing = sorted(set(value) - set(keys)), sorted(set(keys) - set(value))
            problem = "; ".join(p for p in (
                f"unknown key(s) {', '.join(map(repr, extra))}" if extra else "",
                f"missing key(s) {', '.join(map(repr, missing))}" if missing else "") if p)
            raise self.fail(field, problem)
        return value

    def integer(self, value, field: str, low: int = 0, high: int = MAX_INDEX) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(field, f"must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(field, f"{value} is outside {low}..{high}")
        return value

    def text(self, value, field: str, limit: int = MAX_NAME) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"must be a string, not {_kind(value)}")
        if not 0 < len(value) <= limit:
            raise self.fail(field, f"must be 1..{limit} characters, not {len(value)}")
        if not value.isprintable():
            raise self.fail(field, "contains control characters")
        return value

    def array(self, value, field: str, limit: int) -> list:
        if not isinstance(value, list):
            raise self.fail(field, f"must be a list, not {_kind(value)}")
        if len(value) > limit:
            raise self.fail(field, f"has {len(value)} entries, at most {limit} are allowed")
        return value

    def extent(self, offset: int, nbytes: int, field: str) -> None:
        if offset + nbytes > self.body_size:
            raise self.fail(field, f"bytes {offset}..{offset + nbytes} run past the end of the "
                            f"file's data ({self.body_size} bytes)")


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int:
            "an integer", float: "a number", type(None): "null"}.get(type(value), "?")


def _reject_constant(token: str):
    raise ValueError(f"non-finite number {token} in the header")


def _read_header(payload: bytes, name: str) -> tuple[dict, memoryview]:
    if len(payload) < 4:
        raise LoadError(f"{name}: malformed .lpx payload: {len(payload)} bytes, no header length")
    (hlen,) = struct.unpack_from("<I", payload)
    if 4 + hlen > len(payload):
        raise LoadError(f"{name}: malformed .lpx payload: the header length {hlen} runs past "
                        f"the end ({len(payload) - 4} bytes)")
    try:
        header = json.loads(payload[4 : 4 + hlen].decode("utf-8"),
                            parse_constant=_reject_constant)
    except RecursionError:
        raise LoadError(f"{name}: malformed .lpx header: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoadError(f"{name}: malformed .lpx header: not JSON: {exc}") from None
    return header, memoryview(payload)[4 + hlen :]


def _parse_payload(payload: bytes, name: str = "<bytes>") -> Program:
    raw, body = _read_header(payload, name)
    h = _Header(name, len(body))
    header = h.table(raw, "header", HEADER_KEYS)
    n = h.integer(header["count"], "count", 0, len(body) // INSTRUCTION_BYTES)
    arrays, off = {}, 0
    for key, dt in INSTRUCTION_ARRAYS.items():
        size = n * dt.itemsize
        arrays[key] = np.frombuffer(body[off : off + size], dtype=dt).copy()
        off += size
    files = tuple(h.text(f, f"files[{k}]", MAX_PATH)
                  for k, f in enumerate(h.array(header["files"], "files", MAX_FILES)))
    segments = []
    for k, raw_seg in enumerate(h.array(header["segments"], "segments", MAX_ENTRIES)):
        field = f"segments[{k}]"
        s = h.table(raw_seg, field, ("slice", "bank", "addr", "offset", "nbytes"))
        start = h.integer(s["offset"], f"{field}.offset")
        nbytes = h.integer(s["nbytes"], f"{field}.nbytes")
        h.extent(start, nbytes, field)
        segments.append(Segment(h.text(s["slice"], f"{field}.slice"),
                                h.integer(s["bank"], f"{field}.bank"),
                                h.integer(s["addr"], f"{field}.addr"),
                                bytes(body[start : start + nbytes])))
    symbols = tuple(_tensor(h, t, f"symbols[{k}]")
                    for k, t in enumerate(h.array(header["symbols"], "symbols", MAX_ENTRIES)))
    lanemaps = tuple(_lanemap(h, m, f"lanemaps[{k}]")
                     for k, m in enumerate(h.array(header["lanemaps"], "lanemaps", MAX_ENTRIES)))
    for what, names in (("symbols", [t.name for t in symbols]),
                        ("lanemaps", [m.name for m in lanemaps])):
        if len(set(names)) != len(names):
            dup = next(x for x in names if names.count(x) > 1)
            raise h.fail(what, f"two entries are named {dup!r}")
    return Program(chip=h.text(header["chip"], "chip"), files=files, symbols=symbols,
                   segments=tuple(segments), lanemaps=lanemaps, **arrays)


def _tensor(h: _Header, raw, field: str) -> Tensor:
    t = h.table(raw, field, ("name", "dtype", "shape", "slices", "bank", "addr"))
    shape = tuple(h.integer(d, f"{field}.shape[{k}]", 1)
                  for k, d in enumerate(h.array(t["shape"], f"{field}.shape", MAX_DIMS)))
    if not shape:
        raise h.fail(f"{field}.shape", "has no dimension")
    size = 1
    for d in shape:
        size *= d
    if size > MAX_INDEX:
        raise h.fail(f"{field}.shape", f"{size} elements, at most {MAX_INDEX} are allowed")
    slices = tuple(h.text(x, f"{field}.slices[{k}]")
                   for k, x in enumerate(h.array(t["slices"], f"{field}.slices", MAX_DTYPE_BYTES)))
    if not slices:
        raise h.fail(f"{field}.slices", "names no slice")
    dtype = h.text(t["dtype"], f"{field}.dtype")
    if dtype not in default_isa().dtypes:
        raise h.fail(f"{field}.dtype", f"{dtype!r} is not one of "
                     + ", ".join(default_isa().dtypes))
    return Tensor(h.text(t["name"], f"{field}.name"), dtype, shape, slices,
                  h.integer(t["bank"], f"{field}.bank"), h.integer(t["addr"], f"{field}.addr"))


def _lanemap(h: _Header, raw, field: str) -> LaneMap:
    m = h.table(raw, field, ("name", "values"))
    values = tuple(h.integer(v, f"{field}.values[{k}]", -1, MAX_LANES - 1)
                   for k, v in enumerate(h.array(m["values"], f"{field}.values", MAX_LANES)))
    return LaneMap(h.text(m["name"], f"{field}.name"), values)
