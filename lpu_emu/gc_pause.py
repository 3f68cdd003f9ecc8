"""Pausing CPython's cyclic garbage collector while a pass builds many small objects.

The assembler and the compiler allocate hundreds of thousands of tokens, spans, operands and
frozen dataclasses that form no reference cycles, yet the collector walks the whole growing heap
at every generation-2 threshold: assembling a compiled layer's 27,000-line `.lpu` took 4.5 s of
CPU against 2.7 s with the collector paused, and the time per line grew with the file's length
(bench/README.md, assembler). Reference counting still frees everything as it goes; the collector
resumes when the pass ends. The pause is process-wide, like `gc.disable` itself.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Run the body with the cyclic collector off (left as it is if already off: nesting)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
