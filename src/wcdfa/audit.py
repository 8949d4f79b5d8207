r"""The audit flags of activation growth and gradient floor, from recorded readings (numpy).

Per reading, for blocks :math:`l = 1 \dots L` (input to output):

- activation norm :math:`a_l`: the median over the probe batch of each sample's output
  norm of block :math:`l`; growth :math:`a_{l+1} / a_l`; the maximum growth, and the
  end-to-end growth :math:`a_L / a_1`;
- gradient norm :math:`g_l`: the norm of the loss gradient with respect to block
  :math:`l`'s output (over the whole probe batch); the floor is read at the deepest
  block, :math:`g_1` (the farthest from the loss).

Flag (a) fires when the maximum growth exceeds ``growth`` (default 50x). Flag (b) fires
when :math:`g_1` falls below ``floor`` (default 1e-7; with ``relative=True`` the floor is
relative to the last block's gradient, :math:`g_1 / g_L`). Both together are the audit's
degenerate-credit signature. Provenance of the defaults: the audit of local learning
rules that proposed them calibrated them on few architectures (healthy backpropagation
stayed under 5x per block there, early ViT layers reached 13-25x); an absolute gradient
value depends on the loss reduction, the width and the dtype (the float16 subnormal
limit is about 6e-8), hence the relative option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["FLOOR", "GROWTH", "flags", "threshold_sensitivity"]

GROWTH = 50.0
"""Default flag (a) threshold on the maximum per-block activation growth."""

FLOOR = 1e-7
"""Default flag (b) floor on the deepest block's gradient norm."""


def flags(
    activations: Any,
    gradients: Any,
    *,
    growth: float = GROWTH,
    floor: float = FLOOR,
    relative: bool = False,
) -> dict[str, Any]:
    """Growths and both flags of one reading (block norms ordered input to output).

    Returns ``max_growth``, ``end_to_end``, ``deepest_gradient`` (absolute, or relative to
    the last block's), ``growth_flag``, ``floor_flag`` and ``degenerate`` (both).
    """
    a = np.asarray(activations, dtype=np.float64)
    g = np.asarray(gradients, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = a[1:] / a[:-1]
        max_growth = float(np.max(ratios)) if ratios.size else float("nan")
        end = float(a[-1] / a[0]) if a.size else float("nan")
        deepest = float(g[0] / g[-1]) if relative else float(g[0]) if g.size else float("nan")
    growth_flag = bool(max_growth > growth)
    floor_flag = bool(deepest < floor)
    return {
        "max_growth": max_growth,
        "end_to_end": end,
        "deepest_gradient": deepest,
        "growth_flag": growth_flag,
        "floor_flag": floor_flag,
        "degenerate": growth_flag and floor_flag,
    }


def threshold_sensitivity(
    steps: Sequence[int],
    max_growths: Any,
    deepest_gradients: Any,
    *,
    growths: Sequence[float] = (5.0, 10.0, 25.0, 50.0, 100.0),
    floors: Sequence[float] = (1e-9, 1e-8, 1e-7, 1e-6, 1e-5),
) -> dict[str, dict[float, int | None]]:
    """When each threshold of a grid would first have fired, from a recorded history.

    Returns ``{"growth": {threshold: first step or None}, "floor": {...}}``.
    """
    g = np.asarray(max_growths, dtype=np.float64)
    d = np.asarray(deepest_gradients, dtype=np.float64)

    def first(mask: np.ndarray) -> int | None:
        hits = np.flatnonzero(mask)
        return int(steps[hits[0]]) if hits.size else None

    return {
        "growth": {float(t): first(g > t) for t in growths},
        "floor": {float(t): first(d < t) for t in floors},
    }
