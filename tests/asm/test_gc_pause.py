"""The collector pause around assembly and compilation: off inside, back on after, even when the
pass fails; left off when the caller had turned it off."""

from __future__ import annotations

import gc

import pytest

from lpu_emu.asm.assembler import assemble_text
from lpu_emu.errors import AsmError
from lpu_emu.gc_pause import gc_paused


def test_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_after_an_error() -> None:
    with pytest.raises(AsmError, match="unknown chip 'nochip'"):
        assemble_text("x: .equ 1\n", "t.lpu", chip="nochip")
    assert gc.isenabled()


def test_nested_pause_leaves_the_collector_as_the_caller_set_it() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
