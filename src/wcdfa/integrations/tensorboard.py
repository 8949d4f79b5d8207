"""TensorBoard sink: any writer with ``add_scalar`` / ``add_text`` (torch's SummaryWriter)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wcdfa._dist import rank

if TYPE_CHECKING:
    from wcdfa.monitor import WeightChangeDFA

__all__ = ["log_scalars"]


def log_scalars(monitor: WeightChangeDFA, writer: Any, step: int | None = None) -> dict[str, float]:
    """Write the monitor's metrics as scalars, and the regime as text (rank zero only).

    Parameters
    ----------
    monitor : WeightChangeDFA
    writer : torch.utils.tensorboard.SummaryWriter or compatible
    step : int, optional
        Global step; by default the monitor's ``step_count``.

    Returns
    -------
    dict
        The scalars written.
    """
    if rank() != 0:
        return {}
    step = monitor.step_count if step is None else step
    metrics = monitor.metrics()
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, step)
    if monitor.regime is not None:
        writer.add_text("wcdfa/regime_name", monitor.regime, step)
    return metrics
