"""What the compiler knows about a chip: every number read from the preset and the ISA spec.

`Target` gathers positions (where the VXM, the MXM planes, the SXM units and each MEM slice sit),
queue indices, latencies (with the preset's overrides), and sizes. Nothing here is typed in: a
different preset is a different target.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from lpu_emu.spec import Chip, Isa, Slice, default_isa, get_chip
from lpu_emu.spec.isa import Instruction


@dataclass(frozen=True, eq=False)
class Target:
    chip: Chip
    isa: Isa

    @classmethod
    def of(cls, chip: Chip | str | None = None) -> Target:
        return cls(chip if isinstance(chip, Chip) else get_chip(chip), default_isa())

    # ---- sizes ----
    @property
    def lanes(self) -> int:
        return self.chip.lanes

    @property
    def streams(self) -> int:
        return int(self.chip.p("streams_per_direction"))

    @property
    def banks(self) -> int:
        return int(self.chip.p("mem_banks"))

    @property
    def addresses(self) -> int:
        return int(self.chip.p("mem_addresses_per_bank"))

    @property
    def mxm_rows(self) -> int:
        return int(self.chip.p("mxm_rows"))

    @property
    def mxm_cols(self) -> int:
        return int(self.chip.p("mxm_cols"))

    @property
    def accumulators(self) -> int:
        return int(self.chip.p("mxm_accumulators"))

    @property
    def clock_hz(self) -> float:
        return self.chip.clock_hz

    @property
    def lane_maps(self) -> int:
        """Lane maps one program can name: the values of Distribute's map field."""
        op = next(o for o in self.ins("Distribute").operands if o.kind == "lanemap")
        return self.isa.fields[op.fields[0]].mask + 1

    # ---- instructions ----
    def ins(self, mnemonic: str) -> Instruction:
        ins = self.isa.lookup(mnemonic)
        if ins is None:
            raise KeyError(mnemonic)
        return ins

    def latency(self, mnemonic: str) -> int:
        ins = self.ins(mnemonic)
        if ins.latency == "link":
            return int(self.chip.p("c2c_link_latency"))
        return int(self.chip.latency.get(mnemonic.lower(), ins.latency))

    def occupancy(self, mnemonic: str, dtype: str | None = None) -> int:
        occ = self.ins(mnemonic).occupancy
        if occ == "mxm":
            return self.acc_period(dtype or "int8")
        return occ if isinstance(occ, int) else 1

    def acc_period(self, dtype: str) -> int:
        """Cycles between ACCs on one plane (pair): the float occupancy for fp16/bf16."""
        return self.chip.mxm_float_occupancy if dtype in ("fp16", "bf16") else 1

    def planes_for(self, dtype: str) -> list[int]:
        """Plane queues an MXM dtype may use, alternating hemispheres (W0, E0, W1, E1, ...):
        fp16/bf16 products issue on the even plane of each pair, whose partner stays idle."""
        step = int(self.chip.p("mxm_fp16_planes")) if dtype in ("fp16", "bf16") else 1
        w, e = self.planes("W")[::step], self.planes("E")[::step]
        out = []
        for i in range(max(len(w), len(e))):
            out += [s.index for s in (w[i:i + 1] + e[i:i + 1])]
        return out

    def lw_rows(self, dtype: str, wide: bool = False) -> int:
        """Weight rows one LW takes per cycle when every plane an MXM kernel may use loads at
        once: a hemisphere's planes share the streams flowing toward them, a load group
        (`mxm_load_streams`) each, less the half the activations and epilogues need. `wide`
        weights (more than one output chunk) leave them at least three quarters: a kernel
        feeding a plane on each side carries both planes' results and epilogues on each
        side's streams (with one plane a side, half is too few for a bias add)."""
        per_side = max(1, len(self.planes_for(dtype)) // 2)
        if wide:
            per_side = max(per_side, 2)
        streams = min(self.chip.mxm_load_streams, self.streams // (2 * per_side))
        return max(1, streams // self.width(dtype))

    def width(self, dtype: str) -> int:
        return self.isa.dtypes[dtype].width

    # ---- places ----
    def _kind(self, kind: str, hemisphere: str | None = None) -> tuple[Slice, ...]:
        return tuple(s for s in self.chip.slices if s.kind == kind
                     and (hemisphere is None or s.hemisphere == hemisphere))

    @cached_property
    def vxm_alus(self) -> tuple[Slice, ...]:
        return self._kind("VXM")

    @cached_property
    def large_alus(self) -> frozenset[int]:
        """Queue indices of the ALUs that run Exp, Rsqrt, Tanh, Erf."""
        units = set(self.chip.p("vxm_large_alus"))
        return frozenset(s.index for s in self.vxm_alus if s.unit in units)

    @property
    def vxm_position(self) -> int:
        return self.vxm_alus[0].position

    def mem(self, hemisphere: str) -> tuple[Slice, ...]:
        """MEM slices of a hemisphere, nearest the VXM first."""
        return tuple(sorted(self._kind("MEM", hemisphere), key=lambda s: s.unit))

    def planes(self, hemisphere: str) -> tuple[Slice, ...]:
        return self._kind("MXM", hemisphere)

    def sxm(self, hemisphere: str) -> tuple[Slice, ...]:
        return self._kind("SXM", hemisphere)

    @staticmethod
    def hops(a: int, b: int) -> int:
        """Cycles a stream value takes from position a to position b."""
        return abs(a - b)

    @staticmethod
    def toward_west(src: int, dst: int) -> bool:
        """The direction a value placed at src must flow to reach dst (west if dst < src)."""
        return dst < src
