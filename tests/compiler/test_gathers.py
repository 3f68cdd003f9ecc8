"""Gather beyond an embedding lookup: the rows_gathers pass (before and after), then tables of
any rank, constant or computed, along any axis, with negative indices, on the chip against the
float64 evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_helpers import check

from lpu_emu.compiler.builder import GraphBuilder
from lpu_emu.compiler.gathers import rows_gathers
from lpu_emu.compiler.graph import Graph


def gather(table: tuple[int, ...], idx: np.ndarray, axis: int, computed: bool) -> Graph:
    b = GraphBuilder("g")
    data = np.random.default_rng(len(table) + axis).standard_normal(table).astype(np.float32)
    t = b.input("t", table) if computed else b.constant("t", data)
    b.output(b.op("Gather", [t, b.constant("i", idx)], axis=axis, name="take"), "y")
    return b.build()


def test_rows_gathers_before_and_after() -> None:
    g = gather((5, 4, 3), np.array([[3, -1], [0, 2]]), 1, computed=True)
    assert str(g).splitlines()[2:] == [
        "  take = Gather(t, i) {axis=1}  ; (5, 2, 2, 3)",
        "  y = Reshape(take) {shape=(5, 2, 2, 3)}  ; (5, 2, 2, 3)",
        "  return y"]
    assert str(rows_gathers(g)).splitlines()[2:] == [
        "  take.transpose0 = Transpose(t) {perm=(1, 0, 2)}  ; (4, 5, 3)",
        "  take.reshape1 = Reshape(take.transpose0) {shape=(4, 15)}  ; (4, 15)",
        "  take.reshape2 = Reshape(i) {shape=(4,)}  ; (4,)",
        "  take.rows = Gather(take.reshape1, take.reshape2) {axis=0}  ; (4, 15)",
        "  take.reshape4 = Reshape(take.rows) {shape=(2, 2, 5, 3)}  ; (2, 2, 5, 3)",
        "  take = Transpose(take.reshape4) {perm=(2, 0, 1, 3)}  ; (5, 2, 2, 3)",
        "  y = Reshape(take) {shape=(5, 2, 2, 3)}  ; (5, 2, 2, 3)",
        "  return y"]


def test_an_embedding_lookup_passes_unchanged() -> None:
    g = gather((50, 16), np.array([3, 1, 4]), 0, computed=False)
    assert rows_gathers(g) is g


def test_axis_zero_of_a_3d_table_needs_no_transpose() -> None:
    g = rows_gathers(gather((5, 4, 3), np.array([1, 0]), 0, computed=True))
    assert [(n.op, n.outputs[0]) for n in g.nodes] == [
        ("Reshape", "take.reshape0"), ("Gather", "take.rows"), ("Reshape", "take"),
        ("Reshape", "y")]
    assert g.value("take").shape == (2, 4, 3)


CASES = [  # table, indices, axis
    ((5, 4, 3), np.array([[3, -1], [0, 2]]), 1),
    ((5, 4, 3), np.array([4, -5, 0]), 0),
    ((6, 321), np.array([[5, 0, -6]]), 0),
    ((7, 3, 2), np.array([1, -1]), 2),
    ((10,), np.array([0, -9, -10]), 0),
]


@pytest.mark.parametrize("computed", [True, False], ids=["computed", "constant"])
@pytest.mark.parametrize(("table", "idx", "axis"), CASES,
                         ids=[f"{t}-axis{a}" for t, _, a in CASES])
@pytest.mark.parametrize("mode", ["fp32", "bf16"])
def test_gather_on_the_chip_matches_numpy(table, idx, axis, computed, mode) -> None:
    g = gather(table, idx, axis, computed)
    data = np.random.default_rng(7).standard_normal(table).astype(np.float32)
    check(g, {"t": data} if computed else {}, mode)


@pytest.mark.parametrize("computed", [True, False], ids=["computed", "constant"])
@pytest.mark.parametrize("mode", ["fp16", "int8", "fp8"])
def test_gather_in_the_other_modes(computed, mode) -> None:
    table, idx, axis = CASES[0]
    g = gather(table, idx, axis, computed)
    data = np.random.default_rng(7).standard_normal(table).astype(np.float32)
    check(g, {"t": data} if computed else {}, mode)
