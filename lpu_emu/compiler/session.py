"""Running compiled programs one after another on one machine, and a GPT layer that decodes
against a KV cache kept in SRAM.

`Session` holds a Machine across runs: what one program writes (a KV cache) the next reads.
`GptLayer` compiles a prefill program and one program per decode step; all share one SRAM
layout (one `Memory`), the caches are two tensors of `max_len` rows that the prefill fills with
the prompt's keys and values and each decode step extends by one row in place.
"""

from __future__ import annotations

import numpy as np

from lpu_emu.compiler.layers import Weights, gpt_decoder_layer
from lpu_emu.compiler.pipeline import Compiled, compile_graph
from lpu_emu.compiler.placement import Memory
from lpu_emu.compiler.target import Target
from lpu_emu.errors import UsageError


class Session:
    def __init__(self, engine: str = "fast") -> None:
        self.engine = engine
        self.machine = None
        self.cycles = 0  # cycles of every run so far

    def run(self, compiled: Compiled, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from lpu_emu.core.run import run
        from lpu_emu.core.state import new_machine
        if self.machine is None:
            self.machine = new_machine(compiled.target.chip, compiled.program)
        result = run(compiled.program, compiled.target.chip, inputs=compiled.inputs_for(inputs),
                     engine=self.engine, machine=self.machine, plan=compiled.plan)
        if not result.ok:
            raise UsageError("the compiled program broke a schedule rule: "
                             f"{result.violations[0].message} (a compiler bug: please report)")
        self.cycles += result.cycles
        return compiled.outputs_from(result.tensor)


class GptLayer:
    """A GPT decoder layer compiled for a prompt of `prompt` tokens and `steps` decode steps."""

    def __init__(self, weights: Weights, prompt: int, steps: int, heads: int = 8,
                 chip: str | None = None, dtype: str = "fp32") -> None:
        target = Target.of(chip)
        d = weights["wq"].shape[0]
        self.prompt, self.steps = prompt, steps
        memory = Memory(target)
        kc = memory.alloc("kv_k", "fp32", prompt + steps, d)
        vc = memory.alloc("kv_v", "fp32", prompt + steps, d)
        self.prefill = compile_graph(
            gpt_decoder_layer(weights, prompt, heads), target.chip, dtype, memory=memory,
            pinned={"k": kc.view("k", 0, prompt), "v": vc.view("v", 0, prompt)},
            name="gpt_prefill")
        self.decode = []
        for t in range(steps):
            past = prompt + t
            pinned = {"k_cache": kc.view("k_cache", 0, past),
                      "v_cache": vc.view("v_cache", 0, past),
                      "k": kc.view("k", past, 1), "v": vc.view("v", past, 1)}
            self.decode.append(compile_graph(
                gpt_decoder_layer(weights, 1, heads, past=past), target.chip, dtype,
                memory=memory, pinned=pinned, name=f"gpt_decode{t}"))

    def run(self, x_prompt: np.ndarray, x_steps: np.ndarray,
            session: Session | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """The layer's output for the prompt, then for each decode step's token. The caches
        are never passed in: each step finds them in SRAM where the last program left them."""
        session = session or Session()
        y = session.run(self.prefill, {"x": x_prompt})["y"]
        outs = []
        for t, c in enumerate(self.decode):
            outs.append(session.run(c, {"x": x_steps[t:t + 1]})["y"])
        return y, outs
