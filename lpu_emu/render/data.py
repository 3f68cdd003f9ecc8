"""The JSON documents of the reporting commands (`--json` of isa, chips, demo, asm, disasm; run's
is render/run.result_dict): pure functions from the library's objects to JSON-ready dicts.
docs/json.md documents every schema; tests/cli/test_cli_json.py holds the two equal.
"""

from __future__ import annotations

from lpu_emu.program import Program
from lpu_emu.render.run import result_dict
from lpu_emu.spec.chip import Chip
from lpu_emu.spec.docs import encoding_rows, latency_text, occupancy_text
from lpu_emu.spec.isa import Instruction, Isa


def instruction_dict(isa: Isa, ins: Instruction) -> dict:
    return {
        "mnemonic": ins.mnemonic,
        "syntax": ins.syntax(),
        "slice": ins.slice,
        "opcode": ins.opcode,
        "origin": ins.origin,
        "dtypes": list(ins.dtypes),
        "latency": ins.latency,
        "latency_text": latency_text(ins),
        "occupancy": ins.occupancy,
        "occupancy_text": occupancy_text(ins),
        "large_alu_only": ins.alu == "large",
        "semantics": ins.semantics,
        "example": ins.example,
        "operands": [
            {"name": op.name, "kind": op.kind, "fields": list(op.fields),
             "bits": [[isa.fields[f].lsb, isa.fields[f].width] for f in op.fields],
             "role": op.role, "default": op.default, "min": op.min}
            for op in ins.operands
        ],
        "encoding": [{"bits": b, "field": f, "content": c} for b, f, c in encoding_rows(isa, ins)],
    }


def isa_dict(isa: Isa) -> dict:
    return {
        "version": isa.version,
        "word_bits": isa.word_bits,
        "dtypes": {d.name: {"code": d.code, "width": d.width, "kind": d.kind}
                   for d in isa.dtypes.values()},
        "instructions": [instruction_dict(isa, ins) for ins in isa.instructions],
    }


def chip_summary(chip: Chip, default: str) -> dict:
    return {"name": chip.name, "title": chip.title, "default": chip.name == default,
            "clock_hz": chip.clock_hz, **chip.derived()}


def chip_dict(chip: Chip, default: str) -> dict:
    return {
        **chip_summary(chip, default),
        "params": {p.name: {"value": list(p.value) if isinstance(p.value, tuple) else p.value,
                            "status": p.status, "source": p.source}
                   for p in chip.params.values()},
        "slices": [{"name": s.name, "kind": s.kind, "hemisphere": s.hemisphere,
                    "position": s.position, "unit": s.unit} for s in chip.slices],
        "latency_overrides": dict(chip.latency),
    }


def program_dict(source: str, output: str | None, program: Program) -> dict:
    """What `lpu asm` and `lpu disasm -o` print: the files and the program's summary."""
    n = len(program)
    return {
        "source": source,
        "output": output,
        "chip": program.chip,
        "instructions": n,
        "first_cycle": int(program.cycle.min()) if n else None,
        "last_cycle": int(program.cycle.max()) if n else None,
        "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape),
                     "slices": list(t.slices), "bank": t.bank, "addr": t.addr}
                    for t in program.symbols],
    }


def demo_dict(chip: str, rows) -> dict:
    """rows: (name, RunResult, problems) per example program, as `lpu demo` checks them."""
    return {
        "chip": chip,
        "ok": not any(problems for _, _, problems in rows),
        "examples": [{"name": name, "ok": not problems, "problems": problems,
                      **{k: v for k, v in result_dict(name, result, {}).items()
                         if k in ("cycles", "seconds", "stats")},
                      "instructions": len(result.program)}
                     for name, result, problems in rows],
    }
