"""run(): a Program in, a RunResult out, on either core.

The pipeline, in order: pick the chip -> make the Plan (decode and validate, check max_cycles and
max_issues, expand, static checks) -> build the Machine (SRAM from the program's segments) ->
write the inputs -> run the Plan on the chosen core -> turn raw violations into located ones and
derive the statistics.
"""

from __future__ import annotations

import importlib

import numpy as np

from lpu_emu.core.plan import CYCLE, DEFAULT_MAX_ISSUES, make_plan
from lpu_emu.core.result import RunResult, make_violation, plan_stats
from lpu_emu.core.state import Machine, new_machine
from lpu_emu.core.tensors import check_input, encode_tensor, symbol, write_image
from lpu_emu.errors import LpuError, UsageError
from lpu_emu.program import Program
from lpu_emu.spec import Chip, default_isa, get_chip

ENGINES = ("fast", "reference")


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
        max_cycles: int | None = None, engine: str = "fast", trace: bool = False,
        max_issues: int = DEFAULT_MAX_ISSUES) -> RunResult:
    """Run a program to its end (strict: to its first violation) and return the result.

    `chip` defaults to the one the program was assembled for; a program for another chip is a
    LoadError. `inputs` overwrite named tensors before the run. `max_cycles` and `max_issues`
    refuse (UsageError) a program whose schedule is longer or whose Plan is larger, before
    expanding or running anything."""
    isa = default_isa()
    chip = _chip(program, chip)
    run_plan = _engine(engine)
    plan = make_plan(program, chip, isa, max_cycles=max_cycles, max_issues=max_issues)
    machine = new_machine(chip, program)
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
