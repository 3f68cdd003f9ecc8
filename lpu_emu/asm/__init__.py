"""The assembler and disassembler (design.md section 9 is the language).

    assemble_text(text, filename="<input>", chip=None, base_dir=None) -> Program
    assemble_file(path, chip=None) -> Program
    disassemble(program) -> str          # assemble_text(disassemble(p)) == p

Every mistake in the source is an `lpu_emu.errors.AsmError` located at the offending token;
a program the disassembler cannot express is a `LoadError`.
"""

from lpu_emu.asm.assembler import assemble_file, assemble_text
from lpu_emu.asm.disassembler import disassemble

__all__ = ["assemble_file", "assemble_text", "disassemble"]
