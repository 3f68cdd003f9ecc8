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
            data = path.read_bytes()
        except OSError as exc:
            raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
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
        return _parse_payload(payload)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError) as exc:
        # A payload with a valid checksum but bad contents was written by something else.
        raise LoadError(f"{name}: malformed .lpx payload: {exc}") from None


def _parse_payload(payload: bytes) -> Program:
    (hlen,) = struct.unpack_from("<I", payload)
    header = json.loads(payload[4 : 4 + hlen].decode("utf-8"))
    body = memoryview(payload)[4 + hlen :]
    n = int(header["count"])
    arrays, off = {}, 0
    for key, dt in INSTRUCTION_ARRAYS.items():
        size = n * dt.itemsize
        if off + size > len(body):
            raise ValueError(f"array {key} runs past the end")
        arrays[key] = np.frombuffer(body[off : off + size], dtype=dt).copy()
        off += size
    segments = []
    for s in header["segments"]:
        start, nbytes = int(s["offset"]), int(s["nbytes"])
        if start + nbytes > len(body):
            raise ValueError("a data segment runs past the end")
        segments.append(
            Segment(
                str(s["slice"]), int(s["bank"]), int(s["addr"]), bytes(body[start : start + nbytes])
            )
        )
    symbols = tuple(
        Tensor(
            str(t["name"]),
            str(t["dtype"]),
            tuple(int(d) for d in t["shape"]),
            tuple(str(x) for x in t["slices"]),
            int(t["bank"]),
            int(t["addr"]),
        )
        for t in header["symbols"]
    )
    lanemaps = tuple(
        LaneMap(str(m["name"]), tuple(int(v) for v in m["values"])) for m in header["lanemaps"]
    )
    return Program(
        chip=str(header["chip"]),
        files=tuple(str(f) for f in header["files"]),
        symbols=symbols,
        segments=tuple(segments),
        lanemaps=lanemaps,
        **arrays,
    )
