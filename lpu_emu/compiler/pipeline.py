"""compile_graph: the compiler's pipeline, one flat sequence of named stages.

    graph -> lower -> finite padding -> [feed conversions] -> place -> kernels -> schedule
          -> emit -> Program (+ Report)

The bracketed pass is a choice: where it moves a conversion into the matmuls' feeds, the rest
of the pipeline up to the schedule runs both ways and the shorter schedule is kept (the
greedy scheduler's outcome is what decides: a moved conversion shortens BERT's chain and
lengthens a GPT layer's, conversions.py).

`Compiled.run` runs the program on either core and returns the graph's outputs; a `Session`
keeps one machine (its SRAM) across runs, so a KV cache written by one program is read by the
next.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np

from lpu_emu.compiler import build
from lpu_emu.compiler.conversions import feed_conversions
from lpu_emu.compiler.emit import emit, program
from lpu_emu.compiler.graph import Graph
from lpu_emu.compiler.lowering import Lowered, lower, step_tensors
from lpu_emu.compiler.padding import finite_padding
from lpu_emu.compiler.placement import Loc, Memory
from lpu_emu.compiler.precision import Mode
from lpu_emu.compiler.precision import mode as get_mode
from lpu_emu.compiler.schedule import Placed, schedule
from lpu_emu.compiler.target import Target
from lpu_emu.core.tensors import encode_tensor
from lpu_emu.errors import UsageError
from lpu_emu.gc_pause import gc_paused
from lpu_emu.program import LaneMap, Program, Segment, Tensor
from lpu_emu.spec import Chip


@dataclass
class Compiled:
    graph: Graph
    mode: Mode
    target: Target
    program: Program
    lowered: Lowered
    locs: dict[str, Loc]
    placed: list[Placed]
    notes: list[str]
    memory: Memory
    symbol_of: dict[str, str] = field(default_factory=dict)  # chip tensor -> program symbol
    note_ix: np.ndarray | None = None  # per instruction: index into notes (its graph op)

    def assembly(self, name: str | None = None) -> tuple[str, Program]:
        """The program as commented assembly, and the Program that assembling the text under
        the file name `name` gives (identical to `self.program` but for the source map)."""
        from lpu_emu.compiler.assembly import assembly
        return assembly(self.program, self.notes, self.note_ix, name or self.program.files[0],
                        self.mode.name, self.cycles)

    @property
    def cycles(self) -> int:
        return max((p.end for p in self.placed), default=0)

    @functools.cached_property
    def plan(self):
        """The program decoded, expanded and checked (core.plan.make_plan), once for every run:
        a layer runs many times (decode steps, a backend's rep), and making its Plan costs about
        a fifth of a run."""
        from lpu_emu.core.plan import make_plan
        from lpu_emu.spec import default_isa
        return make_plan(self.program, self.target.chip, default_isa())

    def inputs_for(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Graph inputs -> the program's input tensors (one per 320-column chunk)."""
        out = {}
        for name, chip_name in self.lowered.inputs.items():
            if name not in inputs and self.lowered.tensors[chip_name].pinned is not None:
                continue  # resident: left in SRAM by an earlier program (a KV cache)
            if name not in inputs:
                raise UsageError(f"no value for input {name!r}",
                                 hint=f"inputs: {', '.join(self.lowered.inputs)}")
            arr = np.asarray(inputs[name], dtype=np.float32)
            shape = self.lowered.shapes[name]
            if tuple(arr.shape) != tuple(shape):
                raise UsageError(f"input {name!r} has shape {tuple(arr.shape)}, the compiled "
                                 f"graph takes {tuple(shape)}")
            loc = self.locs[chip_name]
            flat = arr.reshape(loc.rows, loc.cols)
            for c, sym in enumerate(loc.symbols()):
                name = self._sym(sym.name, chip_name)
                part = flat[:, c * loc.lanes:c * loc.lanes + loc.chunk_cols(c)]
                out[name] = part.reshape(self._shape(name, part.shape))
        return out

    def _shape(self, symbol: str, default: tuple[int, ...]) -> tuple[int, ...]:
        return next((t.shape for t in self.program.symbols if t.name == symbol), default)

    def _sym(self, sym: str, chip_name: str) -> str:
        base = self.symbol_of.get(chip_name, chip_name)
        return base + sym[len(chip_name):]

    def outputs_from(self, tensor) -> dict[str, np.ndarray]:
        """Read the graph's outputs from a finished run (`tensor(name)` of a RunResult)."""
        out = {}
        for name, chip_name in self.lowered.outputs.items():
            loc = self.locs[chip_name]
            parts = [np.asarray(tensor(self._sym(s.name, chip_name)),
                                dtype=np.float32).reshape(s.shape) for s in loc.symbols()]
            out[name] = np.concatenate(parts, axis=1).reshape(self.lowered.shapes[name])
        return out

    def run(self, inputs: dict[str, np.ndarray], engine: str = "fast") -> dict[str, np.ndarray]:
        from lpu_emu.core.run import run
        result = run(self.program, self.target.chip, inputs=self.inputs_for(inputs),
                     engine=engine, plan=self.plan)
        if not result.ok:
            raise UsageError(f"the compiled program broke a schedule rule: "
                             f"{result.violations[0].message} (a compiler bug: please report)")
        return self.outputs_from(result.tensor)


def _sanitise(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.]", "_", name).strip(".") or "t"
    return name if name[0].isalpha() or name[0] == "_" else "t" + name


def place(low: Lowered, target: Target, memory: Memory) -> dict[str, Loc]:
    """Every chip tensor gets a Loc; tensors that one run of steps (one kernel) uses together
    get different homes (a kernel reads or writes each MEM slice at most once a cycle)."""
    together: dict[str, set[str]] = {n: set() for n in low.tensors}
    order: list[str] = []
    for run in build.runs(low.steps):  # a view stands for its storage (placed before it)
        names = list(dict.fromkeys(_storage(low, n) for step in run
                                   for n in step_tensors(step)))
        for n in names:
            together[n] |= set(names) - {n}
            if n not in order:
                order.append(n)
    for n in low.tensors:
        if n not in order:
            order.append(n)
    locs: dict[str, Loc] = {}
    for n in order:  # decided elsewhere (a KV cache): first, so the others keep clear of them
        spec = low.tensors[n]
        if spec.pinned is not None:
            locs[n] = spec.pinned.view(n, 0, spec.pinned.rows)
    for n in order:
        spec = low.tensors[n]
        if n in locs:
            continue
        if spec.view is not None:
            base, row0 = spec.view
            locs[n] = locs[base].view(n, row0, spec.rows)
            continue
        if spec.stripes > 1 and spec.rows > 1:
            # weights: the passes of a kernel load one weight tensor at a time, so the striped
            # weights of a run may share slices (the queue order keeps their loads apart)
            avoid = set().union(*(locs[m].homes() for m in together[n]
                                  if m in locs and low.tensors[m].stripes == 1))
            locs[n] = memory.alloc_striped(n, spec.dtype, spec.rows, spec.cols, spec.stripes,
                                           avoid)
        else:
            avoid = set().union(*(locs[m].homes() for m in together[n] if m in locs))
            locs[n] = memory.alloc(n, spec.dtype, spec.rows, spec.cols, avoid)
    return locs


def _storage(low: Lowered, name: str) -> str:
    """The tensor whose storage `name` is (itself, or what its view chain ends at)."""
    while low.tensors[name].view is not None:
        name = low.tensors[name].view[0]
    return name


def _segments(low: Lowered, locs: dict[str, Loc], lanes: int) -> list[Segment]:
    segs = []
    for name, spec in low.tensors.items():
        if spec.data is None:
            continue
        loc = locs[name]
        parts = [(s, spec.data[k::len(loc.stripes)]) for k, s in enumerate(loc.stripes)] or [
            (loc, spec.data)]
        for part, data in parts:
            if not len(data):  # an empty stripe: no storage (its address is another's)
                continue
            for c, sym in enumerate(part.symbols()):
                vals = data[:, c * lanes:c * lanes + part.chunk_cols(c)]
                image = encode_tensor(sym, vals, lanes)
                for p, s in enumerate(sym.slices):
                    segs.append(Segment(s, sym.bank, sym.addr, image[:, p].tobytes()))
    return segs


def _in_symbol_order(segments: list[Segment], symbols: list[Tensor]) -> list[Segment]:
    """Segments in the order the assembler makes them (each symbol's slices in turn), so the
    compiled Program equals the one its assembly text assembles to."""
    rank = {(s, t.bank, t.addr): k for k, (t, s) in
            enumerate((t, s) for t in symbols for s in t.slices)}
    return sorted(segments, key=lambda g: rank[(g.slice, g.bank, g.addr)])


def compile_graph(graph: Graph, chip: Chip | str | None = None, dtype: str = "fp32", *,
                  memory: Memory | None = None, pinned: dict[str, Loc] | None = None,
                  calibration: dict[str, np.ndarray] | None = None,
                  name: str | None = None) -> Compiled:
    """Compile a graph for a chip in a precision mode; see the module doc for the stages."""
    with gc_paused():  # steps, slots and pipes: many small acyclic objects (lpu_emu/gc_pause.py)
        return _compile(graph, chip, dtype, memory, pinned, calibration, name)


def _compile(graph: Graph, chip: Chip | str | None, dtype: str, memory: Memory | None,
             pinned: dict[str, Loc] | None, calibration: dict[str, np.ndarray] | None,
             name: str | None) -> Compiled:
    target = Target.of(chip)
    mode = get_mode(dtype)
    scales = _calibrate(graph, calibration) if mode.quantized else {}
    lowered = finite_padding(lower(graph, mode, target, pinned, scales), target)
    memory = memory or Memory(target)
    lowered, locs, placed = _shorter(lowered, feed_conversions(lowered, target), target, memory)
    em, notes = emit(placed, target)
    symbol_of = {c: _sanitise(g) for g, c in lowered.inputs.items()}
    symbol_of.update({c: _sanitise(g) for g, c in lowered.outputs.items()})
    taken = set(symbol_of.values())
    for n in locs:  # a temporary named like a graph input or output ('matmul_1') steps aside
        if n not in symbol_of and n in taken:
            alt = n + "_"
            while alt in taken or alt in locs:
                alt += "_"
            symbol_of[n] = alt
            taken.add(alt)
    graph_shape = {c: lowered.shapes[g] for g, c in
                   [*lowered.inputs.items(), *lowered.outputs.items()]}
    symbols: list[Tensor] = []
    for n, loc in locs.items():
        if loc.base != loc.name and lowered.tensors[n].role == "temp":
            continue  # rows of another tensor (a KV cache with its new row): named by it
        syms = loc.symbols()
        for s in syms:
            if not s.shape[0]:  # a stripe past the last row (3 rows in 4 stripes): no storage
                continue
            base = symbol_of.get(n, n)
            shape = s.shape
            if len(syms) == 1 and len(graph_shape.get(n, ())) not in (0, 2):
                shape = tuple(graph_shape[n])  # one chunk: the model's own (N-d) shape
            symbols.append(Tensor(base + s.name[len(n):], s.dtype, shape, s.slices, s.bank,
                                  s.addr))
    fname = f"{name or _sanitise(graph.name)}.lpu"
    lanemaps = [LaneMap(f"map{i}", m) for i, m in enumerate(lowered.lanemaps)]
    prog = program(em, target, fname, symbols, _in_symbol_order(
        _segments(lowered, locs, target.lanes), symbols), lanemaps, 1)
    return Compiled(graph, mode, target, prog, lowered, locs, placed, notes, memory, symbol_of,
                    em.note)


def _scheduled(low: Lowered, target: Target, memory: Memory
               ) -> tuple[dict[str, Loc], list[Placed]]:
    """place -> kernels -> schedule."""
    locs = place(low, target, memory)
    return locs, schedule(build.kernels(target, low.steps, locs), target)


def _shorter(low: Lowered, alt: Lowered, target: Target, memory: Memory
             ) -> tuple[Lowered, dict[str, Loc], list[Placed]]:
    """`low` placed and scheduled, or `alt` where it is another lowering whose schedule ends
    sooner; `memory` keeps the chosen one's allocations."""
    if alt is low:
        return (low, *_scheduled(low, target, memory))
    best = None
    for cand in (low, alt):
        trial = memory.fork()
        locs, placed = _scheduled(cand, target, trial)
        end = max((p.end for p in placed), default=0)
        if best is None or end < best[0]:
            best = (end, cand, trial, locs, placed)
    _, chosen, trial, locs, placed = best
    memory.adopt(trial)
    return chosen, locs, placed


def _calibrate(graph: Graph, calibration: dict[str, np.ndarray] | None) -> dict[str, float]:
    """int8 activation scales: max |x| / 127 of every value, evaluated on calibration inputs
    (default: standard normal inputs, seed 0)."""
    from lpu_emu.compiler.evaluate import EVAL
    rng = np.random.default_rng(0)
    env = {k: np.asarray(v, dtype=np.float64) for k, v in graph.constants.items()}
    for name in graph.inputs:
        v = graph.value(name)
        env[name] = np.asarray(calibration[name] if calibration and name in calibration
                               else rng.standard_normal(v.shape), dtype=np.float64)
    for node in graph.nodes:
        r = EVAL[node.op](node, [env[i] for i in node.inputs])
        env.update(zip(node.outputs, r if isinstance(r, list) else [r], strict=True))
    return {k: max(float(np.abs(v).max()), 1e-30) / 127.0 for k, v in env.items()}
