"""The `lpu` command line (thin click commands over the library)."""

import click


@click.group()
def main() -> None:
    """lpu-emu: an emulator of a Groq-style LPU."""
