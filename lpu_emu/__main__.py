"""`python -m lpu_emu ...` runs the `lpu` command line."""

from lpu_emu.cli import main

if __name__ == "__main__":
    main(prog_name="lpu")
