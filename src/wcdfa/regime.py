"""The regimes of α: thresholds, names, dashboard codes and classification, defined once."""

from __future__ import annotations

from typing import Any

from wcdfa._checks import check_real

__all__ = [
    "CRITICAL",
    "DEFAULT_THRESHOLDS",
    "DISORDERED",
    "ORDERED",
    "REGIME_CODES",
    "check_thresholds",
    "classify",
]

ORDERED = "ordered"
CRITICAL = "critical"
DISORDERED = "disordered"
DEFAULT_THRESHOLDS = (1.2, 0.8)
"""``(ordered, disordered)``: α above 1.2 is ordered, below 0.8 disordered."""
REGIME_CODES = {ORDERED: 2, CRITICAL: 1, DISORDERED: 0}
"""The number each regime is logged as on dashboards."""


def classify(alpha: float, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> str:
    """Return the regime of ``alpha`` for ``(ordered, disordered)`` thresholds.

    Both boundaries belong to the critical band.

    Examples
    --------
    >>> classify(1.0), classify(1.3), classify(0.5), classify(1.2)
    ('critical', 'ordered', 'disordered', 'critical')
    """
    ordered, disordered = thresholds
    if alpha > ordered:
        return ORDERED
    if alpha < disordered:
        return DISORDERED
    return CRITICAL


def check_thresholds(thresholds: Any) -> tuple[float, float]:
    """Validate ``(ordered, disordered)`` with ``ordered > disordered``, both finite."""
    try:
        ordered, disordered = thresholds
    except (TypeError, ValueError):
        msg = f"Argument `thresholds` must be a pair (ordered, disordered), but got {thresholds!r}"
        raise ValueError(msg) from None
    ordered = check_real("thresholds[0]", ordered)
    disordered = check_real("thresholds[1]", disordered)
    if not ordered > disordered:
        msg = (
            "Argument `thresholds` must be (ordered, disordered) with ordered > "
            f"disordered, but got {thresholds!r}"
        )
        raise ValueError(msg)
    return ordered, disordered
