"""TensorBoard sink: a metrics dict to any writer with ``add_scalar`` / ``add_text``."""

from __future__ import annotations

from typing import Any

from wcdfa._dist import rank

__all__ = ["write_scalars"]


def write_scalars(
    writer: Any, metrics: dict[str, float], step: int, texts: dict[str, str] | None = None
) -> dict[str, float]:
    """Write ``metrics`` as scalars and ``texts`` as text (rank zero only).

    Parameters
    ----------
    writer : torch.utils.tensorboard.SummaryWriter or compatible
    metrics : dict
        ``tag -> value``, as ``monitor.metrics()`` returns them.
    step : int
        Global step.
    texts : dict, optional
        ``tag -> text`` (e.g. the regime's name).

    Returns
    -------
    dict
        The scalars written (empty on other ranks).
    """
    if rank() != 0:
        return {}
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, step)
    for tag, text in (texts or {}).items():
        writer.add_text(tag, text, step)
    return metrics
