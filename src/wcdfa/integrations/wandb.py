"""Weights & Biases sink."""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from wcdfa._dist import rank
from wcdfa._imports import require
from wcdfa.errors import WCDFAWarning

if TYPE_CHECKING:
    from wcdfa.monitor import WeightChangeDFA

__all__ = ["log_alpha"]


def log_alpha(
    monitor: WeightChangeDFA, step: int | None = None, *, plot: bool = False, run: Any = None
) -> dict[str, Any]:
    """Log the monitor's metrics to the active run (rank zero only).

    Logs ``wcdfa/alpha``, ``wcdfa/regime`` (2 ordered, 1 critical, 0 disordered),
    ``wcdfa/regime_name`` (the regime as text), ``wcdfa/delta_norm`` (latest ‖ΔW‖),
    ``wcdfa/r_squared`` and ``wcdfa/alpha_ci_low`` / ``wcdfa/alpha_ci_high``; with
    ``plot=True`` also ``wcdfa/fluctuations``, the log-log F(s) figure.

    Warns (:class:`~wcdfa.errors.WCDFAWarning`) and does nothing when wandb is not
    installed or no run is active. Returns what was logged (empty when nothing was).
    """
    if rank() != 0:
        return {}
    try:
        wandb = importlib.import_module("wandb")
    except ImportError:
        warnings.warn(
            'wandb is not installed; install it with: pip install "wcdfa[wandb]"',
            WCDFAWarning,
            stacklevel=3,
        )
        return {}
    run = run if run is not None else wandb.run
    if run is None:
        warnings.warn("No active wandb run: call wandb.init() first.", WCDFAWarning, stacklevel=3)
        return {}
    if monitor.alpha is None:
        return {}
    data: dict[str, Any] = dict(monitor.metrics())
    data["wcdfa/regime"] = int(data["wcdfa/regime"])
    data["wcdfa/regime_name"] = monitor.regime
    if plot:
        data["wcdfa/fluctuations"] = wandb.Image(_rgba(monitor.plot_fluctuations(show=False)))
    run.log(data, step=step)
    return data


def _rgba(fig: Any) -> Any:
    """Render a matplotlib Figure to an RGBA array (no pyplot, no window)."""
    canvas = require("matplotlib.backends.backend_agg").FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())
