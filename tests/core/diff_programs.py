"""Random programs for the differential tests: mostly valid schedules, some deliberate violations.

A program is built consumer first. For each random consumer (a VXM op, a Write, an MXM load or
accumulate, an SXM move, a C2C send, a Gather/Scatter), each input operand is fed by what already
passes its position at its cycle (a value placed earlier: chains), or by a group of MEM Reads
timed so that their planes meet on the consumer's diagonal, or (rarely, on purpose) by nothing or
a value of another dtype. Outputs go onto random streams, so values keep flowing; queues are kept
free of overlaps except when a violation is wanted. Encoded directly with lpu_emu.spec.encoding
(independent of the assembler). SRAM and lane maps are random bytes: NaN payloads, infinities and
subnormals of every format turn up all the time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from lpu_emu.program import LaneMap, Program, Segment
from lpu_emu.spec import Chip, default_isa, get_chip, load_chip
from lpu_emu.spec.encoding import encode, stream_code

TINY = Path(__file__).parent / "chips" / "tiny.toml"
DTYPES = ("int8", "int32", "fp16", "bf16", "fp8e4m3", "fp32")
MXM_DTYPES = ("int8", "fp16", "bf16", "fp8e4m3")
BYTE_DTYPES = ("int8", "fp8e4m3")


@cache
def tiny_chip() -> Chip:
    return load_chip(TINY)


def chip_named(name: str) -> Chip:
    return tiny_chip() if name == "tiny" else get_chip(name)


@dataclass
class Placed:
    pos: int
    t: int
    tag: str


@dataclass
class Gen:
    rnd: random.Random
    chip: Chip
    violate: float = 0.05  # probability of each deliberate mistake
    rows: list[tuple[int, int, int, int]] = field(default_factory=list)  # cycle order queue word
    busy: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # queue -> [(cycle, occ)]
    placed: dict[int, list[Placed]] = field(default_factory=dict)  # stream code -> placements
    sends: list[tuple[int, int, int]] = field(default_factory=list)  # (edge, link, arrival)

    def __post_init__(self) -> None:
        self.isa = default_isa()
        self.by_kind: dict[str, list] = {}
        for s in self.chip.slices:
            self.by_kind.setdefault(s.kind, []).append(s)
        self.lanes = self.chip.lanes
        self.size = int(self.chip.p("mem_addresses_per_bank"))
        self.region = min(self.size, 24)  # addresses with data (big chips: keep the image small)
        self.banks = int(self.chip.p("mem_banks"))
        self.nmaps = 2
        self.links = int(self.chip.p("c2c_links_per_edge"))
        self.large = set(self.chip.p("vxm_large_alus"))
        planes = {(p.hemisphere, p.unit): p.index for p in self.by_kind.get("MXM", ())}
        self.partners = {q: planes[(h, u + 1)] for (h, u), q in planes.items()
                         if u % 2 == 0 and (h, u + 1) in planes}  # even plane -> odd plane

    # ---- bookkeeping ----
    def lat(self, mnemonic: str) -> int:
        ins = self.isa.lookup(mnemonic)
        if ins.latency == "link":
            return int(self.chip.p("c2c_link_latency"))
        return int(self.chip.latency.get(mnemonic.lower(), ins.latency))

    def occ(self, mnemonic: str, n: int = 1) -> int:
        o = self.isa.lookup(mnemonic).occupancy
        return n if o == "n" else (1 if o == "repeat" else int(o))

    def free(self, q: int, c: int, occ: int = 1) -> bool:
        if c < 0:
            return False
        return all(not (c0 < c + occ and c < c0 + o) for c0, o in self.busy.get(q, ()))

    def take(self, q: int, c: int, occ: int = 1) -> None:
        self.busy.setdefault(q, []).append((c, occ))

    def emit(self, q: int, c: int, mnemonic: str, dtype: str | None = None, occ: int = 1,
             **values) -> None:
        isa = self.isa
        ins = isa.lookup(mnemonic)
        dt = isa.dtypes[dtype] if dtype else None
        full = {}
        for op in ins.operands:
            v = values.get(op.name, op.default)
            if op.kind == "dtype2":
                v = isa.dtypes[v].code
            full[op.name] = v
        self.rows.append((c, len(self.rows), q, encode(isa, ins, dt, full)))
        self.take(q, c, occ)

    def place(self, code: int, pos: int, t: int, tag: str) -> None:
        self.placed.setdefault(code, []).append(Placed(pos, t, tag))

    def passing(self, code: int, q: int, u: int) -> Placed | None:
        """What a reader at (q, u) sees on `code` (the cores' rule, on the placements so far)."""
        west = bool(code & 64)
        best = None
        for p in self.placed.get(code, ()):
            if (p.pos + p.t if west else p.pos - p.t) != (q + u if west else q - u):
                continue
            if (p.pos >= q if west else p.pos <= q) and (
                    best is None or (p.pos < best.pos if west else p.pos > best.pos)):
                best = p
        return best

    # ---- feeding inputs ----
    def source(self, q: int, u: int, dtype: str, w: int, align: int = 0) -> int:
        """A stream group code whose w streams pass (q, u) carrying dtype: found, or made by
        MEM Reads, or (rarely) a group with nothing or another dtype on it. The group starts at
        a multiple of `align` (default w)."""
        r = self.rnd
        align = align or w
        if r.random() < self.violate:  # a random group: most likely no value there
            return stream_code(r.randrange(0, 32 // align) * align, r.random() < 0.5)
        found = [code for code in self._aligned(align) if all(
            (p := self.passing(code + i, q, u)) is not None and p.tag == dtype for i in range(w))]
        if found and r.random() < 0.7:
            return r.choice(found)
        return self.read_group(q, u, dtype, w, align)

    def _aligned(self, w: int) -> list[int]:
        return [stream_code(i, west) for west in (False, True) for i in range(0, 32, w)]

    def read_group(self, q: int, u: int, dtype: str, w: int, align: int = 0) -> int:
        """Reads from w MEM slices upstream of q, timed so the planes meet at (q, u)."""
        r = self.rnd
        lat = self.lat("Read")
        mems = self.by_kind["MEM"]
        west = r.random() < 0.5
        ups = [s for s in mems if (s.position >= q if west else s.position <= q)]
        if not ups:
            west = not west
            ups = [s for s in mems if (s.position >= q if west else s.position <= q)]
        align = align or w
        code0 = stream_code(r.randrange(0, 32 // align) * align, west)
        r.shuffle(ups)
        for i in range(w):
            for s in ups:
                c = u - abs(q - s.position) - lat
                if self.free(s.index, c) or (c >= 0 and r.random() < self.violate / 4):
                    tag = dtype if r.random() > self.violate / 2 else r.choice(DTYPES)
                    self.emit(s.index, c, "Read", tag, src=(r.randrange(self.banks),
                              self._addr()), dst=code0 + i)
                    self.place(code0 + i, s.position, c + lat, tag)
                    break
        return code0

    def _addr(self) -> int:
        r = self.rnd
        if r.random() < self.violate / 2:
            return self.size + r.randrange(4)  # out of range: an address violation
        if r.random() < 0.05:
            return r.randrange(self.size)
        return r.randrange(self.region)

    def out_code(self, w: int) -> int:
        r = self.rnd
        return stream_code(r.randrange(0, 32 // w) * w, r.random() < 0.5)

    def output(self, q: int, c: int, lat: int, code: int, w: int, tag: str) -> None:
        pos = self.chip.slices[q].position
        for i in range(w):
            self.place(code + i, pos, c + lat, tag)

    def slot(self, q: int, lo: int, occ: int = 1) -> int:
        """A cycle >= lo at which queue q is free (or, rarely, busy on purpose)."""
        c = lo
        if self.rnd.random() < self.violate / 2:
            return c
        while not self.free(q, c, occ):
            c += 1
        return c

    # ---- consumers, one per slice kind ----
    def vxm(self, t0: int) -> None:
        r = self.rnd
        alus = self.by_kind["VXM"]
        kind = r.random()
        if kind < 0.35:
            mn = r.choice(("Add", "Sub", "Mul", "Max", "Min"))
        elif kind < 0.55:
            mn = r.choice(("AddI", "MulI", "MaxI", "MinI"))
        elif kind < 0.75:
            mn = r.choice(("Mov", "Neg", "Abs", "Relu"))
        elif kind < 0.88:
            mn = r.choice(("Exp", "Rsqrt", "Tanh", "Erf"))
        else:
            mn = "Cvt"
        floats_only = mn in ("Exp", "Rsqrt", "Tanh", "Erf")
        dtype = r.choice(DTYPES[2:] if floats_only else DTYPES)
        pool = [s for s in alus if s.unit in self.large] if floats_only else alus
        s = r.choice(pool)
        c = self.slot(s.index, t0)
        w = self.isa.dtypes[dtype].width
        values = {"x": self.source(s.position, c, dtype, w)}
        if mn in ("Add", "Sub", "Mul", "Max", "Min"):
            values["y"] = self.source(s.position, c, dtype, w)
        if mn.endswith("I"):
            values["imm"] = self._imm(dtype)
        out = dtype
        if mn == "Cvt":
            out = r.choice(DTYPES)
            values["to"] = out
        wo = self.isa.dtypes[out].width
        values["z"] = self.out_code(wo)
        self.emit(s.index, c, mn, dtype, **values)
        self.output(s.index, c, self.lat(mn), values["z"], wo, out)
        if r.random() < 0.1:  # repeat it: the same streams, later
            n, d = r.randint(1, 3), r.randint(1, 3)
            start = c + r.randint(1, 3)
            if all(self.free(s.index, start + k * d) for k in range(n)):
                self.emit(s.index, start, "Repeat", n=n, d=d, step=0)
                for k in range(1, n):
                    self.take(s.index, start + k * d)

    def _imm(self, dtype: str) -> int:
        r = self.rnd
        if dtype in ("int8", "int32"):
            return r.choice((0, 1, -1, 127, -128, 0x7FFFFFFF, r.getrandbits(32))) & 0xFFFFFFFF
        return r.choice((0x3F800000, 0xBF000000, 0x7FC00001, 0x7F800000, 0x00000001,
                         0x477FE000, r.getrandbits(32)))

    def mem(self, t0: int) -> None:
        r = self.rnd
        s = r.choice(self.by_kind["MEM"])
        kind = r.random()
        c = self.slot(s.index, t0)
        bank = r.randrange(self.banks)
        if kind < 0.45:  # Write one plane of whatever passes
            dtype = r.choice(DTYPES)
            code = self.source(s.position, c, dtype, 1)
            self.emit(s.index, c, "Write", dtype, src=code, dst=(bank, self._addr()))
            if r.random() < 0.15:
                n, d = r.randint(1, 3), 1
                if all(self.free(s.index, c + 1 + k) for k in range(n)):
                    self.emit(s.index, c + 1, "Repeat", n=n, d=d, step=r.choice((1, -1, 2)))
                    for k in range(1, n):
                        self.take(s.index, c + 1 + k)
        elif kind < 0.65:  # a plain Read onto a stream (and maybe a Repeat with a step)
            dtype = r.choice(DTYPES)
            code = self.out_code(1)
            self.emit(s.index, c, "Read", dtype, src=(bank, self._addr()), dst=code)
            self.output(s.index, c, self.lat("Read"), code, 1, dtype)
        elif kind < 0.82:
            dtype = r.choice(BYTE_DTYPES)
            idx = self.source(s.position, c, dtype, 1)
            out = self.out_code(1)
            self.emit(s.index, c, "Gather", dtype, base=(bank, self._addr()), index=idx, dst=out)
            self.output(s.index, c, self.lat("Gather"), out, 1, dtype)
        else:
            dtype = r.choice(BYTE_DTYPES)
            idx = self.source(s.position, c, dtype, 1)
            src = self.source(s.position, c, dtype, 1)
            self.emit(s.index, c, "Scatter", dtype, index=idx, src=src, base=(bank, self._addr()))

    def mxm(self, t0: int) -> None:
        """Load groups of rows (LW's rows operand at random), install (IW or IWT), then ACCs.
        fp16/bf16 ACCs
        go to the even plane of a pair and keep both queues busy for the float occupancy (an odd
        plane or a busy partner, rarely, on purpose: mxm-pair)."""
        r = self.rnd
        dtype = r.choice(MXM_DTYPES)
        w = self.isa.dtypes[dtype].width
        paired = w == 2 and int(self.chip.p("mxm_fp16_planes")) == 2
        evens = [p for p in self.by_kind["MXM"] if p.index in self.partners]
        if paired and evens and r.random() > self.violate:
            s = r.choice(evens)
        else:
            s = r.choice(self.by_kind["MXM"])
        partner = self.partners.get(s.index) if paired else None
        load = self.chip.mxm_load_streams
        c = t0
        if r.random() > self.violate:  # load some rows and install them
            for _ in range(r.randint(1, 4)):
                c = self.slot(s.index, c)
                rows = r.randint(1, load // w)
                src = self.source(s.position, c, dtype, rows * w, load)
                self.emit(s.index, c, "LW", dtype, src=src, rows=rows)
                c += 1
            c = self.slot(s.index, c, 20)
            install = r.choice(("IW", "IWT"))  # IWT: the rows installed as columns
            self.emit(s.index, c, install, occ=self.occ(install))
            c += r.choice((self.lat(install), 20, 2))  # 2: the ACC may come before they land
        nacc = int(self.chip.p("mxm_accumulators"))
        occ = self.chip.mxm_float_occupancy if paired else 1
        for _ in range(r.randint(1, 3)):
            acc = r.randrange(nacc)
            if r.random() < 0.3:
                c = self.slot(s.index, c)
                self.emit(s.index, c, "ABC", acc=acc)
                c += 1
            c = self.slot(s.index, c, occ)
            while partner is not None and not self.free(partner, c, occ) and (
                    r.random() > self.violate):
                c = self.slot(s.index, c + 1, occ)
            z = self.out_code(4)
            x = self.source(s.position, c, dtype, w)
            self.emit(s.index, c, "ACC", dtype, occ=occ, x=x, z=z, acc=acc)
            if partner is not None:
                self.take(partner, c, occ)
            self.output(s.index, c, self.lat("ACC"), z, 4, "int32" if dtype == "int8" else "fp32")
            c += occ

    def sxm(self, t0: int) -> None:
        r = self.rnd
        s = r.choice(self.by_kind["SXM"])
        c = self.slot(s.index, t0)
        mn = r.choice(("ShiftUp", "ShiftDown", "Rotate", "Permute", "Distribute", "Transpose"))
        dtype = r.choice(BYTE_DTYPES if mn == "Transpose" else DTYPES)
        w = 16 if mn == "Transpose" else self.isa.dtypes[dtype].width
        values = {"x": self.source(s.position, c, dtype, w), "z": self.out_code(w)}
        if mn in ("ShiftUp", "ShiftDown", "Rotate"):
            values["n"] = r.choice((0, 1, 5, self.lanes - 1, self.lanes, self.lanes + 3))
        elif mn != "Transpose":
            values["map"] = r.randrange(self.nmaps)
        self.emit(s.index, c, mn, dtype, **values)
        self.output(s.index, c, self.lat(mn), values["z"], w, dtype)

    def c2c(self, t0: int) -> None:
        r = self.rnd
        s = r.choice(self.by_kind["C2C"])
        edge = 0 if s.hemisphere == "W" else 1
        if self.sends and r.random() < 0.6:  # receive something sent earlier, when it arrives
            e, link, arrival = r.choice(self.sends)
            q = next(x for x in self.by_kind["C2C"] if (0 if x.hemisphere == "W" else 1) == e)
            if r.random() < self.violate:
                arrival += 1
            dtype = r.choice(DTYPES)
            w = self.isa.dtypes[dtype].width
            if self.free(q.index, arrival):
                z = self.out_code(w)
                self.emit(q.index, arrival, "Receive", dtype, link=link, z=z)
                self.output(q.index, arrival, self.lat("Receive"), z, w, dtype)
            return
        c = self.slot(s.index, t0, 4)
        if r.random() < 0.15:
            self.emit(s.index, c, "Deskew", occ=4, link=r.randrange(self.links))
            return
        dtype = r.choice(DTYPES)
        w = self.isa.dtypes[dtype].width
        link = r.randrange(self.links)
        self.emit(s.index, c, "Send", dtype, src=self.source(s.position, c, dtype, w), link=link)
        self.sends.append((edge, link, c + self.lat("Send")))

    def icu(self, t0: int) -> None:
        r = self.rnd
        s = r.choice(self.chip.slices)
        c = self.slot(s.index, t0)
        kind = r.random()
        if kind < 0.4:
            n = r.randint(1, 4)
            if self.free(s.index, c, n):
                self.emit(s.index, c, "NOP", occ=n, n=n)
        elif kind < 0.6:
            self.emit(s.index, c, r.choice(("Ifetch", "Config")),
                      **({"value": r.getrandbits(16)}))
        else:  # Sync, released by a Notify on another queue
            other = r.choice(self.chip.slices)
            cn = self.slot(other.index, c + r.randint(0, 3))
            if other.index != s.index and r.random() > self.violate:
                self.emit(other.index, cn, "Notify")
                release = cn + self.lat("Notify")
                self.emit(s.index, c, "Sync", occ=max(1, release - c))
            elif r.random() < 0.5:
                self.emit(s.index, c, "Sync")  # never released: a sync violation

    # ---- the program ----
    def program(self, n_ops: int) -> Program:
        r = self.rnd
        makers = (self.vxm, self.vxm, self.vxm, self.mem, self.mem, self.mxm, self.sxm, self.c2c,
                  self.icu)
        t = 8
        for _ in range(n_ops):
            r.choice(makers)(t)
            t += r.randint(0, 3)
        self.rows.sort(key=lambda row: (row[0], row[1]))
        return self.build()

    def build(self) -> Program:
        r = self.rnd
        n = len(self.rows)
        segments = []
        mems = self.by_kind["MEM"]
        with_data = mems if len(mems) <= 8 else r.sample(mems, 8)  # big chips: a few slices
        for s in mems:
            for bank in range(self.banks):
                if s in with_data and r.random() < 0.8:
                    data = r.randbytes(self.region * self.lanes)
                    segments.append(Segment(s.name, bank, 0, data))
        maps = []
        for i in range(self.nmaps):
            perm = list(range(self.lanes))
            r.shuffle(perm)
            if i == 1:
                perm = [v if r.random() < 0.8 else -1 for v in perm]
            maps.append(LaneMap(f"m{i}", tuple(perm)))
        rows = self.rows
        return Program(
            chip=self.chip.name,
            cycle=np.array([x[0] for x in rows], np.int64),
            queue=np.array([x[2] for x in rows], np.int16),
            word=np.array([x[3] for x in rows], np.uint64),
            src_file=np.zeros(n, np.int16),
            src_line=np.arange(1, n + 1, dtype=np.int32),
            src_col=np.ones(n, np.int16),
            files=("gen.lpu",),
            segments=tuple(segments),
            lanemaps=tuple(maps),
        )


def random_program(seed_or_rnd, chip: str = "tiny", n_ops: int = 12,
                   violate: float = 0.05) -> Program:
    rnd = seed_or_rnd if isinstance(seed_or_rnd, random.Random) else random.Random(seed_or_rnd)
    return Gen(rnd, chip_named(chip), violate).program(n_ops)
