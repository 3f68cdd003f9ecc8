"""A `.lpx` with a valid checksum and hostile contents (issue 11): the header is untrusted input.

Every field of the JSON header is checked (types, ranges, sizes before allocating, names), the
chip-dependent extents are checked when the Program becomes a Plan, and a property-based fuzz
builds valid-checksum files with hostile headers and words and runs them on both cores: only
LpuErrors, never another exception (and never a signal: pytest would die with the process).
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpu_emu.asm import assemble_text, disassemble
from lpu_emu.core.run import run
from lpu_emu.errors import LoadError, LpuError
from lpu_emu.program import FORMAT_VERSION, MAGIC, Program

SRC = """.chip tsp-v1
.tensor x, int8, (2, 320), MEM_W1, 0, 4
.values x, 1, 2, 3
.tensor z, int8, (320), MEM_E0, 1, 0
.lanemap rev, 3, 2, 1, 0
        MEM_W1  @0      Read.int8   x, S0E
        MEM_W1  +1      Repeat      1, 1, 1
        VXM0    @3      Add.int8    S0E, S0E, S2E
        SXM_E0  @50     Distribute.int8 S2E, rev, S3E
        MEM_E0  @6      Write.int8  S2E, z
"""


def split(data: bytes) -> tuple[dict, bytes]:
    (hlen,) = struct.unpack_from("<I", data, 48)
    return json.loads(data[52:52 + hlen]), data[52 + hlen:]


def pack(header, body: bytes, raw_head: bytes | None = None) -> bytes:
    """A .lpx around `header` (any JSON value) and `body`, with a valid checksum."""
    head = raw_head if raw_head is not None else json.dumps(header).encode()
    payload = struct.pack("<I", len(head)) + head + body
    return (struct.pack("<4sHHQ32s", MAGIC, FORMAT_VERSION, 0, len(payload),
                        hashlib.sha256(payload).digest()) + payload)


# an instruction is 26 bytes of arrays: cycle 8, queue 2, word 8, file 2, line 4, column 2
GOOD = assemble_text(SRC, "h.lpu").to_bytes()
HEADER, BODY = split(GOOD)


def load_error(header=None, body: bytes = BODY, raw_head: bytes | None = None) -> str:
    with pytest.raises(LoadError) as e:
        Program.from_bytes(pack(header, body, raw_head), "h.lpx")
    return e.value.message


def edited(path: str, value) -> dict:
    h = copy.deepcopy(HEADER)
    *keys, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = h
    for k in keys:
        node = node[k]
    node[last] = value
    return h


def test_the_fixture_round_trips_and_runs():
    p = Program.from_bytes(pack(HEADER, BODY), "h.lpx")
    assert p == Program.from_bytes(GOOD)
    assert run(p, engine="reference").tensor("z")[:3].tolist() == [2, 4, 6]


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("symbols.0.addr", -5, "symbols[0].addr: -5 is outside 0..2147483647"),
    ("symbols.0.bank", True, "symbols[0].bank: must be an integer, not a boolean"),
    ("symbols.0.bank", 1.0, "symbols[0].bank: must be an integer, not a number"),
    ("symbols.0.shape", [10**6, 10**6], "symbols[0].shape: 1000000000000 elements, at most "
                                        "2147483647 are allowed"),
    ("symbols.0.shape", [], "symbols[0].shape: has no dimension"),
    ("symbols.0.shape", [0, 320], "symbols[0].shape[0]: 0 is outside 1..2147483647"),
    ("symbols.0.dtype", "int64", "symbols[0].dtype: 'int64' is not one of int8, int32, fp16, "
                                 "bf16, fp8e4m3, fp32"),
    ("symbols.0.name", "x" * 300, "symbols[0].name: must be 1..256 characters, not 300"),
    ("symbols.0.name", "a\x1b[2J", "symbols[0].name: contains control characters"),
    ("symbols.1.name", "x", "symbols: two entries are named 'x'"),
    ("symbols.0.slices", [], "symbols[0].slices: names no slice"),
    ("segments.0.offset", 10**9, "segments[0]: bytes 1000000000..1000000640 run past the end "
                                 f"of the file's data ({len(BODY)} bytes)"),
    ("segments.0.nbytes", -1, "segments[0].nbytes: -1 is outside 0..2147483647"),
    ("lanemaps.0.values", [0, 70000], "lanemaps[0].values[1]: 70000 is outside -1..65535"),
    ("lanemaps.0", {"name": "rev"}, "lanemaps[0]: missing key(s) 'values'"),
    ("count", 10**9, f"count: 1000000000 is outside 0..{len(BODY) // 26}"),
    ("count", -1, f"count: -1 is outside 0..{len(BODY) // 26}"),
    ("chip", None, "chip: must be a string, not null"),
    ("files", "h.lpu", "files: must be a list, not a string"),
])
def test_hostile_header_fields_are_named(path, value, expected):
    assert load_error(edited(path, value)) == f"h.lpx: malformed .lpx header: {expected}"


def test_hostile_header_shapes():
    assert load_error([1, 2]) == (
        "h.lpx: malformed .lpx header: header: must be an object, not a list")
    assert load_error({**HEADER, "extra": 1}) == (
        "h.lpx: malformed .lpx header: header: unknown key(s) 'extra'")
    assert load_error(raw_head=b'{"count": NaN}').startswith(
        "h.lpx: malformed .lpx header: not JSON: non-finite number NaN")
    assert load_error(raw_head=b'{"count": -Infinity}').startswith(
        "h.lpx: malformed .lpx header: not JSON: non-finite number -Infinity")
    assert load_error(raw_head=b"[" * 100_000 + b"]" * 100_000) == (
        "h.lpx: malformed .lpx header: nested too deeply")
    assert load_error(raw_head=b'{"count": 1' + b"0" * 5000 + b"}").startswith(
        "h.lpx: malformed .lpx header: not JSON: ")
    assert load_error(raw_head=b"\xff\xfe").startswith("h.lpx: malformed .lpx header: not JSON")


def test_a_header_length_past_the_payload():
    payload = struct.pack("<I", 2**32 - 1) + b"{}"
    data = struct.pack("<4sHHQ32s", MAGIC, FORMAT_VERSION, 0, len(payload),
                       hashlib.sha256(payload).digest()) + payload
    with pytest.raises(LoadError, match="the header length 4294967295 runs past the end"):
        Program.from_bytes(data, "h.lpx")


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("symbols.0.addr", 4095, "tensor 'x': addresses 4095..4096 do not fit a bank of tsp-v1 "
                             "(0..4095)"),
    ("symbols.0.bank", 2, "tensor 'x': bank 2 does not exist: MEM slices of tsp-v1 have 2 banks "
                          "(0..1)"),
    ("symbols.0.slices", ["VXM0"], "tensor 'x': 'VXM0' is not a MEM slice of tsp-v1"),
    ("symbols.0.shape", [2, 321], "tensor 'x': its last dimension 321 is more than the 320 "
                                  "lanes of tsp-v1"),
    ("symbols.1.slices", ["MEM_E0", "MEM_E1"], "tensor 'z': 2 slices; a int8 tensor lives in 1 "
                                               "or 1"),
    ("segments.0.addr", 4095, "data segment 0 (MEM_W1 bank 0 address 4095): addresses "
                              "4095..4096 do not fit a bank of tsp-v1 (0..4095)"),
    ("segments.0.slice", "MEM_Q9", "data segment 0 (MEM_Q9 bank 0 address 4): 'MEM_Q9' is not "
                                   "a MEM slice of tsp-v1"),
    ("lanemaps.0.values", [0, 320], "lane map 'rev': entry 1 is 320, neither -1 nor a lane "
                                    "(0..319)"),
])
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_chip_extents_are_checked_before_the_run(path, value, expected, engine):
    p = Program.from_bytes(pack(edited(path, value), BODY), "h.lpx")
    with pytest.raises(LoadError) as e:
        run(p, engine=engine)
    assert e.value.message == expected


# ---- the fuzz ----
HOSTILE = st.one_of(
    st.integers(-2**70, 2**70), st.sampled_from([-1, 0, 1, 2**31, 2**63, -2**63, 4095, 4096]),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
    st.text(max_size=20), st.lists(st.integers(-2, 400), max_size=6),
    st.recursive(st.integers(-3, 3), lambda c: st.lists(c, max_size=3), max_leaves=8),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def paths(node, prefix=()):
    """Every path into the header (dict keys and list indices), the root excluded."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for k, v in items:
        yield (*prefix, k)
        yield from paths(v, (*prefix, k))


HEADER_PATHS = list(paths(HEADER))
N = HEADER["count"]


@st.composite
def hostile_lpx(draw) -> bytes:
    h = copy.deepcopy(HEADER)
    for _ in range(draw(st.sampled_from((0, 0, 0, 1, 1, 3)))):  # most files reach the cores
        *keys, last = draw(st.sampled_from(HEADER_PATHS))
        node = h
        try:
            for k in keys:
                node = node[k]
            node[last] = draw(HOSTILE)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit replaced the path
    body = bytearray(BODY)
    arrays = {"cycle": (0, "<i8"), "queue": (8 * N, "<i2"), "word": (10 * N, "<u8")}
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(sorted(arrays)))
        start, dt = arrays[name]
        i = draw(st.integers(0, N - 1))
        size = np.dtype(dt).itemsize
        value = draw(st.integers(0, 2**(8 * size) - 1))
        if name == "queue" and draw(st.booleans()):  # an existing queue, maybe of another kind
            value = draw(st.integers(0, 100))
        if name == "word" and draw(st.booleans()):  # a plausible word: one field changed
            word = int(np.frombuffer(bytes(body[start + 8 * i:start + 8 * i + 8]), "<u8")[0])
            lsb = draw(st.integers(0, 63))
            value = word ^ (draw(st.integers(1, 255)) << lsb) & (2**64 - 1)
        body[start + size * i:start + size * (i + 1)] = value.to_bytes(size, "little")
    return pack(h, bytes(body))


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(hostile_lpx(), st.sampled_from(["fast", "reference"]), st.booleans())
def test_hostile_lpx_files_raise_only_lpu_errors(data, engine, lenient):
    try:
        program = Program.from_bytes(data, "fuzz.lpx")
        disassemble(program)
        result = run(program, engine=engine, lenient=lenient, max_issues=100_000,
                     max_cycles=10**7)
        for t in program.symbols:
            result.tensor(t.name)
    except LpuError:
        pass


@pytest.mark.skipif(not __import__("os").path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_named_lpx_is_refused_before_reading(tmp_path):
    (tmp_path / "z.lpx").symlink_to("/dev/zero")
    with pytest.raises(LoadError) as e:
        Program.load(tmp_path / "z.lpx")
    assert e.value.message == (f"{tmp_path / 'z.lpx'}: cannot read: it is not a regular file (a "
                               "device, FIFO or socket)")
