"""ICU instructions. Their whole effect is on timing, which the Plan resolves before a run
(lpu_emu/core/plan.py: NOP occupancy, Repeat expansion, Sync/Notify parking); at run time each is
an issue that does nothing. The functions exist so that every instruction has a place where its
semantics is stated."""

from __future__ import annotations


def nop() -> None:
    """Idle the queue: its occupancy (n cycles) is checked by the Plan."""


def repeat() -> None:
    """Expanded by the Plan into n re-issues of the previous instruction (never issued itself)."""


def sync() -> None:
    """Park the queue until the next Notify lands: checked by the Plan (queue-busy, sync)."""


def notify() -> None:
    """Release parked queues at issue + latency: used by the Plan's Sync check."""


def ifetch() -> None:
    """Programs are preloaded: only the issue slot is spent."""


def config() -> None:
    """No configuration state is modelled: only the issue slot is spent."""
