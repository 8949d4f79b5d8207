r"""Crystallisation of the heads: their entropies' spread collapsing, and staying collapsed.

At each reading the spread is the standard deviation (population, over every head of
every layer read) of the heads' normalised entropies; with ``relative=True`` it is that
standard deviation divided by their mean (the coefficient of variation), which does not
depend on where the entropies settle. Crystallisation *starts* at the first of
``confirm`` consecutive readings whose spread is below ``start`` (default 1e-3), and
*ends* at the first of ``confirm`` consecutive readings below ``end`` (default 1e-4);
a spread back above ``start`` after the start is a ``decrystallised`` event and the
watch starts over. With two to four heads an absolute threshold is fragile: one
head's drift moves the standard deviation of so few values a lot, hence the relative
criterion.

A head *converges* at the first reading from which its entropy changes by less than
``tol`` between consecutive readings for ``confirm`` readings in a row, through the
last reading (:func:`convergence_steps`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Crystallisation", "convergence_steps", "spread"]


def spread(entropies: Any, *, relative: bool = False) -> float:
    """Return the heads' entropies' standard deviation (over their mean if ``relative``)."""
    values = np.asarray(entropies, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan")
    sd = float(values.std())
    return sd / float(values.mean()) if relative else sd


@dataclasses.dataclass
class Crystallisation:
    """The start/end watch over readings (see the module); ``update`` returns new events.

    Each event is ``(kind, step, detail)`` with kind ``"crystallisation_start"``,
    ``"crystallisation_end"`` or ``"decrystallised"``.
    """

    start: float = 1e-3
    end: float = 1e-4
    confirm: int = 3
    relative: bool = False
    phase: str = "fluid"  # then "started", then "ended"
    run_start: list[int] = dataclasses.field(default_factory=list)  # steps below start
    run_end: list[int] = dataclasses.field(default_factory=list)  # steps below end

    def update(self, step: int, value: float) -> list[tuple[str, int, dict[str, Any]]]:
        """Feed one reading's spread; return the events it confirms."""
        events: list[tuple[str, int, dict[str, Any]]] = []
        below_start = bool(np.isfinite(value) and value < self.start)
        below_end = bool(np.isfinite(value) and value < self.end)
        if self.phase != "fluid" and not below_start:
            events.append(("decrystallised", step, {"spread": value, "threshold": self.start}))
            self.phase, self.run_start, self.run_end = "fluid", [], []
            return events
        self.run_start = [*self.run_start, step] if below_start else []
        self.run_end = [*self.run_end, step] if below_end else []
        if self.phase == "fluid" and len(self.run_start) >= self.confirm:
            self.phase = "started"
            first = self.run_start[-self.confirm]
            events.append(("crystallisation_start", first, {"threshold": self.start}))
        if self.phase == "started" and len(self.run_end) >= self.confirm:
            self.phase = "ended"
            first = self.run_end[-self.confirm]
            events.append(("crystallisation_end", first, {"threshold": self.end}))
        return events

    def as_state(self) -> dict[str, Any]:
        """Return the watch as plain values."""
        return dataclasses.asdict(self)


def convergence_steps(
    steps: Sequence[int], entropies: Any, *, tol: float = 1e-3, confirm: int = 3
) -> list[int | None]:
    """Return each head's convergence step (None if it has not converged).

    ``entropies`` is ``(readings, heads)``: a head converges at the first reading after
    which every change between consecutive readings, through the last, is below
    ``tol``, provided at least ``confirm`` such changes follow it.
    """
    values = np.asarray(entropies, dtype=np.float64)
    out: list[int | None] = []
    for column in values.T:
        change = np.abs(np.diff(column))
        calm = np.isfinite(change) & (change < tol)
        if calm.size == 0 or not calm[-1]:
            out.append(None)
            continue
        loud = np.flatnonzero(~calm)
        first = 0 if loud.size == 0 else loud[-1] + 1  # the reading where calm begins
        out.append(int(steps[first]) if calm.size - first >= confirm else None)
    return out
