"""The `lpu` command line: thin click commands over the library.

One module per command, lpu_emu/cli/<name>.py, defining a click command named <name>. A module is
imported only when its command runs, so `lpu isa` and `lpu chips` never pay for (or depend on)
numba and the core. To add a command: write its module and add one line to COMMANDS; a command
whose module is not there yet is simply not listed. Every command runs inside the same error
boundary (common.reporting_errors).
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from lpu_emu import __version__
from lpu_emu.cli.common import reporting_errors

# name -> one-line help, as `lpu --help` lists it (tests/cli checks it matches the command's own)
COMMANDS = {
    "demo": "Run every example program on the default chip and check its results.",
    "run": "Run a program (.lpu or .lpx) on a chip preset.",
    "compile": "Compile an ONNX model or a built-in layer; report its schedule.",
    "trace": "Step through a run, forward and back, with breakpoints.",
    "asm": "Assemble a .lpu source into a .lpx object file.",
    "disasm": "Disassemble a .lpx object file back into assembly source.",
    "isa": "Show the instruction set reference.",
    "chips": "List the chip presets, or show one in full.",
}


def available(name: str) -> bool:
    return name in COMMANDS and importlib.util.find_spec(f"lpu_emu.cli.{name}") is not None


class LpuGroup(click.Group):
    """Commands loaded on first use, all run inside the CLI error boundary."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if not available(name):
            return None
        return getattr(importlib.import_module(f"lpu_emu.cli.{name}"), name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        with reporting_errors(debug=bool(ctx.params.get("debug"))):
            return super().invoke(ctx)


@click.group(cls=LpuGroup, epilog="""\b
Examples:
  lpu demo                    run the example programs on lp30
  lpu isa Add                 one instruction in full
  lpu chips lp30              a chip preset: parameters, figures, slices
  lpu asm programs/vecadd.lpu assemble to programs/vecadd.lpx
  lpu compile --builtin bert-layer  compile a BERT layer, report it
  lpu compile model.onnx --shape input_ids=1,16   compile an exported model
""")
@click.version_option(__version__, prog_name="lpu")
@click.option("--debug", is_flag=True,
              help="On an internal error (a bug), print the Python traceback.")
def main(debug: bool) -> None:
    """lpu-emu: an emulator of a Groq-style LPU (Tensor Streaming Processor)."""
