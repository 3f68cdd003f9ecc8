"""The schedule report: what a compiled program spends on the chip, and the roofline bound.

Work is counted from the program's Plan (`lpu_emu.core.plan.make_plan`: Repeats expanded, the
issues the cores execute), never from the compiler's intentions, so the report describes exactly
what the chip runs. Every capacity comes from the preset and the ISA spec:

- **MXM compute**: each ACC is one pass of an activation vector through a plane, mxm_rows x
  mxm_cols MACs; int8 and fp8 ACCs at one pass per plane per cycle, fp16 and bf16 at the preset's
  `mxm_fp16_fraction` of that rate.
- **MXM weight loads**: each LW appends rows to a plane's buffer; a plane takes one LW issue a
  cycle, and one LW's load group holds `rows_per_lw(dtype)` rows (the ISA's LW source group over
  width(dtype)); each IW/IWT keeps its plane busy for its occupancy.
- **MXM planes**: compute, loads and ABCs are issues of one queue per plane, so their sum over the
  planes bounds them together.
- **MXM plane pairs**: an fp16/bf16 ACC runs on the even plane of a pair with that plane's
  weights and accumulators, holding both queues (`mxm_fp16_planes`); so the loads, installs and
  ABCs of a plane whose ACCs are all fp16/bf16 are issues of the pair's even queue, which the odd
  queue cannot take. Their sum over the pairs bounds them: the planes bound above spreads those
  issues over all the queues, which a schedule of float work cannot do.
- **SRAM**: every Read/Gather moves one byte plane of `lanes` bytes out of a slice, every
  Write/Scatter one into it; the chip moves at most mem slices x lanes x 2 bytes a cycle (the
  preset's derived peak).
- **VXM ALUs**: one issue per ALU per cycle (and the transcendentals on the large ALUs only).
- **SXM**: one issue per unit per cycle.
- **Stream slots**: a stream (one direction, one position, one cycle) takes one placement; a
  position places at most 2 x streams_per_direction stream values a cycle, so the busiest
  position bounds the schedule.

The bound is the largest of these (in cycles); the schedule's efficiency is bound / cycles.

Beside it, for a compiled program, the **data bound** (`schedule.data_bound`): the cycles of the
same kernels if only data ordered them. The roofline says what the chip's resources allow; the
data bound what the kernels' chain of whole-tensor dependences allows; the schedule's cycles
past the data bound are what sharing queues, streams, ALUs and planes costs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpu_emu.compiler.schedule import data_bound
from lpu_emu.compiler.target import Target
from lpu_emu.core import plan as P
from lpu_emu.core.plan import Plan, make_plan
from lpu_emu.program import Program

MXM_OPS = ("ACC", "LW", "IW", "IWT", "ABC")
READS, WRITES = ("Read", "Gather"), ("Write", "Scatter")
FP16_RATE = ("fp16", "bf16")  # MXM dtypes that run at the preset's mxm_fp16_fraction


@dataclass(frozen=True)
class PlaneBusy:
    """One MXM plane: issues of each MXM instruction and the cycles its queue is busy."""

    name: str
    issues: dict[str, int]  # ACC, LW, IW, IWT, ABC
    busy: int  # sum of occupancies (design.md section 2)


@dataclass(frozen=True)
class Resource:
    """A chip resource of the roofline: the cycles its work needs at its capacity."""

    name: str
    cycles: float
    work: str  # how the cycles were counted, for people


@dataclass(frozen=True)
class OpTime:
    """One graph op: its kernels, their summed span, the MACs they do."""

    name: str
    kernels: int
    cycles: int
    macs: int


@dataclass(frozen=True)
class Report:
    name: str
    chip: str
    mode: str
    clock_hz: float
    cycles: int  # the cycle the last effect lands (what a run reports)
    instructions: int
    issues: int  # Plan rows: Repeats expanded
    planes: tuple[PlaneBusy, ...]
    acc_dtypes: dict[str, int]  # ACC issues per MXM dtype
    lw_rows: dict[str, int]  # weight rows loaded per MXM dtype
    macs: int  # MACs of the ACCs the chip issues (whole planes)
    useful_macs: int  # MACs of the graph's matmuls (the compiler's kernels, every precision pass)
    vxm_issues: int
    vxm_large_issues: int  # Exp, Rsqrt, Tanh, Erf, ...: the large ALUs only
    vxm_busiest: tuple[str, int]  # the ALU with most busy cycles
    sxm_issues: int
    sram_reads: int  # byte planes read (Read, Gather)
    sram_writes: int  # byte planes written (Write, Scatter)
    sram_bytes: int  # read + written
    mem_busiest: tuple[str, int]
    stream_values: int  # stream values placed (one stream, one cycle)
    stream_busiest: tuple[str, int]  # the position placing most (named by its slices), count
    resources: tuple[Resource, ...]
    ops: tuple[OpTime, ...] = field(default=())
    data_bound: int | None = None  # `schedule.data_bound` of the compiler's kernels (None: none)

    @property
    def seconds(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def binding(self) -> Resource:
        """The resource that bounds the schedule (the first of equals, in `resources` order)."""
        return max(self.resources, key=lambda r: r.cycles)

    @property
    def bound(self) -> float:
        return self.binding.cycles

    @property
    def efficiency(self) -> float:
        """bound / cycles: 1.0 is a schedule as short as the busiest resource allows."""
        return self.bound / self.cycles if self.cycles else 0.0

    def to_json(self) -> dict:
        """Every figure of the report as a JSON-ready dict (docs/compiler.md lists the keys)."""
        return {
            "name": self.name, "chip": self.chip, "mode": self.mode, "clock_hz": self.clock_hz,
            "cycles": self.cycles, "seconds": self.seconds, "instructions": self.instructions,
            "issues": self.issues,
            "mxm": {"planes": {p.name: {"issues": p.issues, "busy": p.busy} for p in self.planes},
                    "acc_dtypes": self.acc_dtypes, "lw_rows": self.lw_rows, "macs": self.macs,
                    "useful_macs": self.useful_macs},
            "vxm": {"issues": self.vxm_issues, "large_issues": self.vxm_large_issues,
                    "busiest": list(self.vxm_busiest)},
            "sxm": {"issues": self.sxm_issues},
            "sram": {"reads": self.sram_reads, "writes": self.sram_writes,
                     "bytes": self.sram_bytes, "busiest": list(self.mem_busiest)},
            "streams": {"values": self.stream_values, "busiest": list(self.stream_busiest)},
            "roofline": {"resources": [{"name": r.name, "cycles": r.cycles, "work": r.work}
                                       for r in self.resources],
                         "binding": self.binding.name, "bound": self.bound,
                         "efficiency": self.efficiency},
            "data_bound": self.data_bound,
            "ops": [{"name": o.name, "kernels": o.kernels, "cycles": o.cycles, "macs": o.macs}
                    for o in self.ops],
        }


# ---- capacities (from the preset and the spec) ----
def rows_per_lw(target: Target, dtype: str) -> int:
    """Weight rows one LW of `dtype` loads: its source stream group over width(dtype). The group
    is width(dtype) streams (one row) in the base ISA, the preset's `mxm_load_streams` once LW
    takes a load group (issue 6)."""
    src = next(op for op in target.ins("LW").operands if op.kind == "stream")
    width = target.width(dtype)
    group = int(target.chip.p("mxm_load_streams")) if src.width == "load" else width
    return max(group // width, 1)


def _lw_issues(target: Target, lw_rows: dict[str, int]) -> int:
    """LW issues that load these rows per dtype at full load groups."""
    return sum(-(-n // rows_per_lw(target, d)) for d, n in lw_rows.items())


def acc_passes_per_cycle(target: Target, dtype: str) -> float:
    """ACC passes a plane completes per cycle: 1 at the int8 rate, mxm_fp16_fraction for
    fp16/bf16 (fp8 runs at the int8 rate)."""
    return float(target.chip.p("mxm_fp16_fraction")) if dtype in FP16_RATE else 1.0


# ---- counting ----
class _Issues:
    """The Plan's issues with names: mnemonic, dtype and slice of every row."""

    def __init__(self, plan: Plan, target: Target) -> None:
        isa, chip = target.isa, target.chip
        self.rows = plan.issues
        by_op = isa.by_opcode()
        self.op_names = {code: ins.mnemonic for code, ins in by_op.items()}
        self.op_slice = {code: ins.slice for code, ins in by_op.items()}
        self.dtype_names = {d.code: d.name for d in isa.dtypes.values()}
        self.kind = np.array([s.kind for s in chip.slices])[self.rows[:, P.QUEUE]] \
            if len(self.rows) else np.zeros(0, dtype="<U3")
        self.chip = chip

    def of(self, *mnemonics: str) -> np.ndarray:
        codes = [c for c, m in self.op_names.items() if m in mnemonics]
        return np.isin(self.rows[:, P.OP], codes)

    def unit_work(self) -> np.ndarray:
        """Issues that are the unit's own work (ICU NOP/Sync/Notify/... excluded)."""
        codes = [c for c, s in self.op_slice.items() if s != "ICU"]
        return np.isin(self.rows[:, P.OP], codes)

    def per_dtype(self, mask: np.ndarray, weights: np.ndarray | None = None) -> dict[str, int]:
        codes = self.rows[mask, P.DTYPE]
        w = None if weights is None else weights[mask]
        counts = np.bincount(codes, weights=w, minlength=1) if len(codes) else np.zeros(0)
        return {self.dtype_names[c]: int(n) for c, n in enumerate(counts) if n}

    def busiest(self, mask: np.ndarray, weights: np.ndarray) -> tuple[str, int]:
        """The queue of the masked issues with the largest summed weight."""
        if not mask.any():
            return ("-", 0)
        per_q = np.bincount(self.rows[mask, P.QUEUE], weights=weights[mask])
        q = int(per_q.argmax())
        return (self.chip.slices[q].name, int(per_q[q]))


def _planes(iss: _Issues, target: Target) -> tuple[PlaneBusy, ...]:
    out = []
    for hemisphere in ("W", "E"):
        for s in target.planes(hemisphere):
            on = iss.rows[:, P.QUEUE] == s.index
            counts = {m: int((on & iss.of(m)).sum()) for m in MXM_OPS}
            out.append(PlaneBusy(s.name, counts, int(iss.rows[on, P.OCC].sum())))
    return tuple(sorted(out, key=lambda p: target.chip.slice_named(p.name).index))


def _pair_work(iss: _Issues, target: Target, width_of: np.ndarray) -> Resource:
    """The fp16/bf16 work only the even planes of the pairs can do, per pair: its ACCs, each
    holding the pair 1 / (mxm_fp16_planes x mxm_fp16_fraction) cycles; and the loads (at the
    LW's full rate), installs and ABCs of the planes whose ACCs are all fp16/bf16 (a plane that
    also runs int8 or fp8 ACCs is left out: its odd partner could take part of that work)."""
    chip, rows = target.chip, iss.rows
    per_pair = int(chip.p("mxm_fp16_planes"))
    n_pairs = (len(target.planes("W")) + len(target.planes("E"))) // per_pair
    hold = 1 / (per_pair * float(chip.p("mxm_fp16_fraction")))
    acc = iss.of("ACC")
    fp16_codes = [c for c, name in iss.dtype_names.items() if name in FP16_RATE]
    floats = acc & np.isin(rows[:, P.DTYPE], fp16_codes)
    other = np.unique(rows[acc & ~floats, P.QUEUE])
    pure = np.isin(rows[:, P.QUEUE], np.setdiff1d(np.unique(rows[floats, P.QUEUE]), other))
    lw = pure & iss.of("LW") & np.isin(rows[:, P.DTYPE], fp16_codes)
    lw_rows = iss.per_dtype(lw, rows[:, P.WA] // width_of[rows[:, P.DTYPE]])
    loads = _lw_issues(target, lw_rows) + int(rows[pure & iss.of("IW", "IWT"), P.OCC].sum())
    abc = pure & iss.of("ABC")
    n_float = int(floats.sum())
    cycles = (n_float * hold + loads + int(rows[abc, P.OCC].sum())) / n_pairs if n_pairs else 0.0
    names = ", ".join(f"{n:,} {d}" for d, n in iss.per_dtype(floats).items()) or "no"
    work = f"({names} ACCs x {hold:g} + loads + ABCs) / {n_pairs}"
    return Resource("MXM plane pairs", cycles, work)


def _streams(iss: _Issues, target: Target) -> tuple[int, tuple[str, int]]:
    """Stream values placed in all, and the position placing most (named by its slices)."""
    placing = iss.rows[:, P.SC] >= 0
    if not placing.any():
        return 0, ("-", 0)
    per_pos = np.bincount(iss.rows[placing, P.POS], weights=iss.rows[placing, P.WC])
    pos = int(per_pos.argmax())
    kinds = sorted({s.kind for s in target.chip.slices if s.position == pos})
    names = [s.name for s in target.chip.slices if s.position == pos]
    where = names[0] if len(names) == 1 else "/".join(kinds)
    return int(per_pos.sum()), (where, int(per_pos[pos]))


def _ops(placed) -> tuple[OpTime, ...]:
    spans: Counter = Counter()
    kernels: Counter = Counter()
    macs: Counter = Counter()
    for pl in placed:
        k = pl.kernel
        spans[k.name] += pl.end - pl.start
        kernels[k.name] += 1
        macs[k.name] += int(k.stats.get("macs", 0))
    return tuple(OpTime(n, kernels[n], spans[n], macs[n])
                 for n in sorted(spans, key=lambda n: (-spans[n], n)))


def report(compiled, plan: Plan | None = None) -> Report:
    """The report of a Compiled program (its Plan is made here unless given)."""
    return report_program(compiled.program, compiled.target, compiled.mode.name, plan,
                          placed=compiled.placed)


def _data_bound(placed, target: Target, cycles: int) -> int | None:
    """In the units of the plan's cycles (the cycle the last effect lands; a kernel's end is
    the cycle after)."""
    if not placed:
        return None
    return data_bound(list(placed), target) - (max(p.end for p in placed) - cycles)


def report_program(program: Program, target: Target, mode: str, plan: Plan | None = None, *,
                   placed=()) -> Report:
    """The report of any program for `target` (`placed`: the compiler's kernels, for the graph
    ops and their MACs; none for a hand-written program)."""
    chip = target.chip
    plan = plan or make_plan(program, chip, target.isa)
    iss = _Issues(plan, target)
    rows = iss.rows
    n_planes = len(target.planes("W")) + len(target.planes("E"))
    plane_macs = target.mxm_rows * target.mxm_cols

    acc = iss.of("ACC")
    acc_dtypes = iss.per_dtype(acc)
    lw = iss.of("LW")
    width_of = np.ones(max(iss.dtype_names) + 1, dtype=np.int64)
    for code, name in iss.dtype_names.items():
        width_of[code] = target.width(name)
    lw_rows = iss.per_dtype(lw, rows[:, P.WA] // width_of[rows[:, P.DTYPE]])
    installs = iss.of("IW", "IWT")
    abc = iss.of("ABC")

    compute = sum(n / acc_passes_per_cycle(target, d) for d, n in acc_dtypes.items()) / n_planes
    pairs = _pair_work(iss, target, width_of)
    loads = (_lw_issues(target, lw_rows) + int(rows[installs, P.OCC].sum())) / n_planes
    abc_cycles = int(rows[abc, P.OCC].sum()) / n_planes

    reads = int(iss.of(*READS).sum())
    writes = int(iss.of(*WRITES).sum())
    sram_bytes = (reads + writes) * chip.lanes
    sram_per_cycle = chip.sram_bytes_per_s / chip.clock_hz

    work = iss.unit_work()
    vxm = work & (iss.kind == "VXM")
    large_ops = [ins.mnemonic for ins in target.isa.instructions if ins.alu == "large"]
    vxm_large = vxm & iss.of(*large_ops)
    sxm = work & (iss.kind == "SXM")
    n_alus, n_large_alus = len(target.vxm_alus), len(target.large_alus)
    n_sxm = len(target.sxm("W")) + len(target.sxm("E"))
    stream_values, stream_busiest = _streams(iss, target)
    per_position = 2 * target.streams

    fraction = float(chip.p("mxm_fp16_fraction"))
    acc_text = ", ".join(f"{n:,} {d}" for d, n in acc_dtypes.items()) or "no"
    slow = [d for d in acc_dtypes if d in FP16_RATE]
    rate_text = f", {'/'.join(slow)} at {fraction:g}x" if slow else ""
    lw_text = ", ".join(f"{n:,} {d} rows at {rows_per_lw(target, d)}/LW"
                        for d, n in lw_rows.items()) or "no rows"
    n_vxm, n_large, n_sxm_issues = int(vxm.sum()), int(vxm_large.sum()), int(sxm.sum())
    where, at_busiest = stream_busiest
    resources = (
        Resource("MXM compute", compute, f"{acc_text} ACCs / {n_planes} planes{rate_text}"),
        Resource("MXM weight loads", loads,
                 f"{lw_text} + {int(installs.sum())} IW x {target.occupancy('IW')}"),
        Resource("MXM planes", compute + loads + abc_cycles,
                 f"compute + loads + {int(abc.sum()):,} ABCs"),
        pairs,
        Resource("SRAM bandwidth", sram_bytes / sram_per_cycle,
                 f"{sram_bytes:,} B / {sram_per_cycle:,.0f} B a cycle"),
        Resource("VXM ALUs", n_vxm / n_alus, f"{n_vxm:,} issues / {n_alus} ALUs"),
        Resource("VXM large ALUs", n_large / n_large_alus,
                 f"{n_large:,} issues / {n_large_alus} ALUs"),
        Resource("SXM", n_sxm_issues / n_sxm, f"{n_sxm_issues:,} issues / {n_sxm} units"),
        Resource("stream slots", at_busiest / per_position,
                 f"{at_busiest:,} values at {where} / {per_position} a cycle"),
    )
    occ = rows[:, P.OCC]
    return Report(
        name=Path(program.files[0]).name if program.files else "program",
        chip=chip.name, mode=mode, clock_hz=chip.clock_hz, cycles=plan.cycles,
        instructions=len(program), issues=len(plan), planes=_planes(iss, target),
        acc_dtypes=acc_dtypes, lw_rows=lw_rows, macs=int(acc.sum()) * plane_macs,
        useful_macs=sum(int(p.kernel.stats.get("macs", 0)) for p in placed),
        vxm_issues=int(vxm.sum()), vxm_large_issues=int(vxm_large.sum()),
        vxm_busiest=iss.busiest(vxm, occ), sxm_issues=int(sxm.sum()),
        sram_reads=reads, sram_writes=writes, sram_bytes=sram_bytes,
        mem_busiest=iss.busiest(work & (iss.kind == "MEM"), occ),
        stream_values=stream_values, stream_busiest=stream_busiest, resources=resources,
        ops=_ops(placed), data_bound=_data_bound(placed, target, plan.cycles))
