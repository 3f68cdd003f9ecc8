"""run(): a Program in, a RunResult out, on either core.

The pipeline, in order: pick the chip -> make the Plan (decode and validate, check max_cycles and
max_issues, expand, static checks) -> build the Machine (SRAM from the program's segments) ->
write the inputs -> run the Plan on the chosen core -> turn raw violations into located ones and
derive the statistics.
"""

from __future__ import annotations

import importlib

import numpy as np

from lpu_emu.core.plan import CYCLE, DEFAULT_MAX_ISSUES, DTYPE, OP, Plan, check_limits, make_plan
from lpu_emu.core.result import RunResult, make_violation, plan_stats
from lpu_emu.core.state import Machine, lanemap_table, load_segments, new_machine
from lpu_emu.core.tensors import check_input, encode_tensor, symbol, write_image
from lpu_emu.errors import LpuError, UsageError
from lpu_emu.program import Program
from lpu_emu.spec import Chip, Isa, default_isa, get_chip

ENGINES = ("auto", "fast", "reference")
# auto: the reference interpreter below this many issues. The fast core costs ~1 s of numba
# start-up in a new process (import, target initialisation, cache load); the reference runs a
# small program's few thousand issues in less (bench/test_bench_core.py measures the crossover).
# Tracing does not move it much: the reference records the same log (2,000 VXM-heavy issues:
# 0.09 s untraced, 0.18 s traced).
AUTO_REFERENCE_ISSUES = 2000
# A float ACC costs the reference ~300 VXM issues: measured 12.7 ms for an fp16 ACC (10 ms bf16)
# against 33 us for a VXM issue and 91 us for an int8 ACC's share of an int8 MXM program (the
# reference computes int8 products as one exact matmul, floats k by k as defined).
FLOAT_ACC_ISSUES = 300
FLOAT_ACC_DTYPES = ("fp16", "bf16", "fp8e4m3")


def _chip(program: Program, chip: Chip | str | None) -> Chip:
    if isinstance(chip, Chip):
        return chip
    return get_chip(chip or program.chip)


def write_inputs(machine: Machine, program: Program, inputs: dict[str, np.ndarray]) -> None:
    """Overwrite named tensors' SRAM with user values (UsageError for a bad name, shape or type)."""
    for name, values in inputs.items():
        t = symbol(program, name)
        image = encode_tensor(t, check_input(t, values), machine.chip.lanes)
        write_image(machine.sram, machine.chip, t, image)


def pick_engine(engine: str, plan: Plan, isa: Isa) -> str:
    """The engine `auto` stands for: the reference interpreter for small programs (no numba
    start-up), the fast core for large ones. Both record the same event log, so tracing does
    not change the choice. A float ACC counts as FLOAT_ACC_ISSUES issues: the reference sums
    its 320 x 320 products k by k, as the definition says."""
    if engine != "auto":
        return engine
    return "fast" if reference_cost(plan, isa) > AUTO_REFERENCE_ISSUES else "reference"


def reference_cost(plan: Plan, isa: Isa) -> int:
    """The plan's issues, a float ACC weighted by what it costs the reference."""
    iss = plan.issues
    acc = iss[:, OP] == isa.lookup("ACC").opcode
    floats = [d.code for d in isa.dtypes.values() if d.name in FLOAT_ACC_DTYPES]
    n_float = int((acc & np.isin(iss[:, DTYPE], floats)).sum())
    return len(iss) + (FLOAT_ACC_ISSUES - 1) * n_float


def _engine(engine: str):
    """The run_plan of the chosen core."""
    if engine == "reference":
        from lpu_emu.core.reference import run_plan
        return run_plan
    if engine != "fast":
        raise UsageError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(ENGINES)}")
    try:
        fast = importlib.import_module("lpu_emu.core.fast")
    except ModuleNotFoundError as exc:
        if exc.name != "lpu_emu.core.fast":
            raise
        raise LpuError("the fast core (lpu_emu.core.fast) is not available in this installation",
                       hint="run with engine='reference' (CLI: --engine reference)") from None
    return fast.run_plan


def run(program: Program, chip: Chip | str | None = None, *,
        inputs: dict[str, np.ndarray] | None = None, lenient: bool = False,
        max_cycles: int | None = None, engine: str = "auto", trace: bool = False,
        max_issues: int = DEFAULT_MAX_ISSUES, machine: Machine | None = None,
        plan: Plan | None = None) -> RunResult:
    """Run a program to its end (strict: to its first violation) and return the result.

    `chip` defaults to the one the program was assembled for; a program for another chip is a
    LoadError. `inputs` overwrite named tensors before the run. `max_cycles` and `max_issues`
    refuse (UsageError) a program whose schedule is longer or whose Plan is larger, before
    expanding or running anything. `machine`, if given, is run on as it is (its SRAM kept, the
    program's data segments and lane maps loaded over it), so one program can leave data for the
    next: a KV cache between decode steps. `plan`, if given, is `make_plan`'s Plan of this
    program for this chip, made once for a program run many times (a compiled layer: decoding
    and checking it costs about a fifth of its run)."""
    isa = default_isa()
    chip = _chip(program, chip)
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(ENGINES)}")
    if plan is None:
        plan = make_plan(program, chip, isa, max_cycles=max_cycles, max_issues=max_issues)
    elif plan.program is not program or plan.chip.name != chip.name:
        raise UsageError(f"the plan is of another program or chip ({plan.chip.name}), not of "
                         f"this program for {chip.name}", hint="make it with make_plan")
    else:
        check_limits(plan.cycles, len(plan.issues), max_cycles, max_issues)
    engine = pick_engine(engine, plan, isa)
    run_plan = _engine(engine)
    if machine is None:
        machine = new_machine(chip, program)
    else:
        if machine.chip.name != chip.name:
            raise UsageError(f"the machine is a {machine.chip.name}, the program is for "
                             f"{chip.name}")
        load_segments(machine.sram, chip, program)
        machine.lanemaps = lanemap_table(chip, program)
    write_inputs(machine, program, inputs or {})
    raw, stopped_at, events = run_plan(plan, machine, lenient, trace)
    stopped = stopped_at >= 0
    cycles = int(plan.issues[stopped_at, CYCLE]) if stopped else plan.cycles
    executed = stopped_at if stopped else len(plan.issues)
    return RunResult(
        program=program, chip=chip, cycles=cycles, stopped=stopped,
        violations=[make_violation(plan, v, isa) for v in raw], sram=machine.sram,
        stats=plan_stats(plan, executed, cycles, isa), engine=engine, events=events,
    )
