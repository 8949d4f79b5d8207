"""Weights & Biases sink: logs a metrics dict (it never imports a monitor)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from wcdfa._dist import rank
from wcdfa._imports import require
from wcdfa._warn import warn
from wcdfa.errors import WCDFAWarning

__all__ = ["log_metrics"]


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    *,
    texts: dict[str, str] | None = None,
    figures: dict[str, Any] | None = None,
    run: Any = None,
) -> dict[str, Any]:
    """Log ``metrics`` (and ``texts``, and matplotlib ``figures`` as images) to a run.

    Rank zero only. Keys ending in ``/regime`` (the regime codes 2, 1, 0) are logged
    as integers. Warns (:class:`~wcdfa.errors.WCDFAWarning`) and does nothing when
    wandb is not installed or no run is active. Returns what was logged (empty when
    nothing was).
    """
    if rank() != 0:
        return {}
    try:
        wandb = importlib.import_module("wandb")
    except ImportError:
        warn('wandb is not installed; install it with: pip install "wcdfa[wandb]"', WCDFAWarning)
        return {}
    run = run if run is not None else wandb.run
    if run is None:
        warn("No active wandb run: call wandb.init() first.", WCDFAWarning)
        return {}
    data: dict[str, Any] = {
        key: int(value) if key.endswith("/regime") else value for key, value in metrics.items()
    }
    data.update(texts or {})
    for key, fig in (figures or {}).items():
        data[key] = wandb.Image(_rgba(fig))
    run.log(data, step=step)
    return data


def _rgba(fig: Any) -> Any:
    """Render a matplotlib Figure to an RGBA array (no pyplot, no window)."""
    canvas = require("matplotlib.backends.backend_agg").FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())
