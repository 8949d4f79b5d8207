"""Acting on the readings (opt-in): WW-PGD spectral projection, perturbation gaps, actions.

- :class:`SpectralProjection` (and :func:`project_weight`): each layer's spectral tail
  pulled toward α ≈ 2 (torch; imported on first use).
- :class:`GapSchedule`: perturbation steps on a schedule, tagged in the monitor, and
  :func:`retention`, the share of their effect on α that the clean steps keep.
- Event handlers for :meth:`wcdfa.TrainingMonitor.on_event`: :class:`ScaleLR`,
  :class:`Project`, :class:`TriggerGap`, :class:`SaveCheckpoint`, :class:`Stop`.
"""

from __future__ import annotations

from typing import Any

from wcdfa.control.actions import Project, SaveCheckpoint, ScaleLR, Stop, TriggerGap
from wcdfa.control.gaps import GapSchedule, retention

__all__ = [
    "GapSchedule",
    "LayerProjection",
    "Project",
    "SaveCheckpoint",
    "ScaleLR",
    "SpectralProjection",
    "Stop",
    "TriggerGap",
    "hardness",
    "project_weight",
    "retention",
]

_TORCH = ("LayerProjection", "SpectralProjection", "hardness", "project_weight")


def __getattr__(name: str) -> Any:
    """Load the torch part (the projection) on first use."""
    if name in _TORCH:
        from wcdfa.control import projection  # noqa: PLC0415 - imports torch

        return getattr(projection, name)
    msg = f"module 'wcdfa.control' has no attribute {name!r}"
    raise AttributeError(msg)
