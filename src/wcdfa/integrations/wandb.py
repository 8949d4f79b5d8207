"""Weights & Biases sink."""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING

from wcdfa.errors import WCDFAWarning

if TYPE_CHECKING:
    from wcdfa.monitor import WeightChangeDFA

__all__ = ["log_alpha"]


def log_alpha(monitor: WeightChangeDFA, step: int | None = None) -> None:
    """Log ``wcdfa/alpha`` and ``wcdfa/regime`` of ``monitor`` to the active run.

    Warns (:class:`~wcdfa.errors.WCDFAWarning`) and does nothing when wandb is not
    installed or no run is active; logs nothing before the first α.
    """
    try:
        wandb = importlib.import_module("wandb")
    except ImportError:
        warnings.warn(
            'wandb is not installed; install it with: pip install "wcdfa[wandb]"',
            WCDFAWarning,
            stacklevel=3,
        )
        return
    if wandb.run is None:
        warnings.warn("No active wandb run: call wandb.init() first.", WCDFAWarning, stacklevel=3)
        return
    if monitor.alpha is None:
        return
    wandb.log({"wcdfa/alpha": monitor.alpha, "wcdfa/regime": monitor.regime_code()}, step=step)
