r"""Confidence intervals for the DFA exponent with honest coverage.

The naive standard error of the log-log fit is far too narrow: the points F(s) share
the same data and are strongly correlated. wcdfa instead uses a *confidence belt*
(Neyman's construction) computed by simulation:

1. for every true exponent α on a grid and every signal length n, simulate many
   signals with that exponent and record the quantiles of the estimate α̂;
2. the interval for an observed α̂ is every α whose central quantile band contains α̂.

Signals with exponent α come from three Gaussian families: fractional Gaussian noise
(α = H < 1), fractional Brownian motion (α = H + 1 > 1) and power-law noise with
spectrum 1/f^(2α−1) (all α; pink noise at α = 1). Up to n = 10^4 the belt is the
envelope of the families' bands, so the interval covers each family at least at its
nominal level. Beyond, the families' biases differ by more than the spread of α̂ and
the envelope would cover every family at 0.98-1.00; there the belt is the band of the
equal-weight mixture of the families (each a Gaussian with its simulated median and
spread), which covers a family lying apart from the others at about the nominal level
and one coinciding with them above it (measured coverage of a nominal 95 % interval:
docs/validation.md).

For the default box settings (min_box 4, max_box n/4, 20 scales, boxes from both
ends, DFA-1, both aggregates) the belt ships as a table (``_calibration.npz``, made by
``benchmarks/calibrate_ci.py``) for 50 <= n <= 10^6, interpolated in log n: simulated
quantiles up to n = 10^4; from 2·10^4 to 10^6 the simulated median and spread of each
family (the spread smoothed over n and inflated for its sampling error), mixed over
the families. The spread of α̂ does *not* shrink as n^(-1/2): with max_box = n/4 the
largest scales always rest on a handful of boxes, and the standard deviation falls
only from ~0.02 at 10^4 to ~0.005-0.01 at 10^6. Beyond
10^6 the band of 10^6 is kept (conservative). Other settings (explicit scales, other
layouts, orders, box bounds) fall back to a parametric bootstrap at α̂ (basic
bootstrap interval, 200 series per family), computed on demand.

Every interval contains α̂ (where the inversion excludes it, which a biased estimator
can cause at the edges, the interval is widened to it). Where a bound lies outside
the calibrated range of α (0.05 to 2.45) it is NaN: the caller reports that as out of
range instead of a band collapsed onto the grid's edge.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wcdfa.fluctuation import alpha_batch, box_scales
from wcdfa.synthetic import fgn_batch, power_law_batch

__all__ = ["confidence_interval", "has_table"]

TABLE_FILE = "_calibration.npz"
DEFAULT_BOXES = (4, None, 20)
ALPHA_RANGE = (0.05, 2.45)
"""The exponents the belt and the bootstrap simulate."""


def families(alpha: float) -> list[str]:
    """Names of the synthetic families that have exponent ``alpha``."""
    out = ["power"]
    if 0.0 < alpha < 1.0:
        out.append("fgn")
    elif 1.0 < alpha < 2.0:
        out.append("fbm")
    return out


def simulate(
    family: str, n: int, alpha: float, reps: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``reps`` series of length ``n`` with exponent ``alpha`` from ``family`` (rows)."""
    if family == "fgn":
        return fgn_batch(n, alpha, reps, rng)
    if family == "fbm":
        return np.cumsum(fgn_batch(n, alpha - 1.0, reps, rng), axis=-1)
    return power_law_batch(n, 2.0 * alpha - 1.0, reps, rng)


def estimates(
    family: str,
    n: int,
    alpha: float,
    reps: int,
    rng: np.random.Generator,
    *,
    min_box: int = 4,
    max_box: int | None = None,
    num_scales: int = 20,
    order: int = 1,
    aggregate: str = "mean",
    scales: tuple[int, ...] | None = None,
    boxes: str = "both",
) -> NDArray[np.float64]:
    """DFA estimates of ``reps`` simulated series (the belt's raw material)."""
    sizes = box_scales(n, min_box, max_box, num_scales, order, scales, boxes).scales
    out = []
    chunk = max(1, min(256, 4_000_000 // n))  # bounded memory for long series
    for start in range(0, reps, chunk):
        x = simulate(family, n, alpha, min(chunk, reps - start), rng)
        out.append(alpha_batch(x, sizes, order, aggregate, boxes))
    return np.concatenate(out)


def confidence_interval(
    alpha: Any,
    n: int,
    level: float = 0.95,
    *,
    min_box: int = 4,
    max_box: int | None = None,
    num_scales: int = 20,
    order: int = 1,
    aggregate: str = "mean",
    scales: tuple[int, ...] | None = None,
    boxes: str = "both",
) -> tuple[Any, Any]:
    """Interval ``(low, high)`` for the exponent behind the estimate(s) ``alpha``.

    Parameters
    ----------
    alpha : float or array_like
        Observed DFA estimate(s) from signals of ``n`` samples.
    n : int
        Signal length.
    level : float, default 0.95
        Nominal coverage, in (0, 1).
    min_box, max_box, num_scales, order, aggregate, scales, boxes
        The settings the estimate was computed with (``scales``: explicit box sizes).

    Returns
    -------
    (low, high)
        Floats, or arrays shaped like ``alpha``. Each interval contains its α̂; a
        bound outside the calibrated range of α is NaN.
    """
    a = np.asarray(alpha, dtype=np.float64)
    if has_table(min_box, max_box, num_scales, order, aggregate, scales, boxes, n):
        grid, low_q, high_q = _belt(n, level, aggregate)
        upper, lower = np.maximum.accumulate(high_q), np.maximum.accumulate(low_q)
        low = np.interp(a, upper, grid, left=np.nan)
        high = np.interp(a, lower, grid, right=np.nan)
    else:
        low, high = _bootstrap(
            a,
            n,
            level,
            min_box=min_box,
            max_box=max_box,
            num_scales=num_scales,
            order=order,
            aggregate=aggregate,
            scales=scales,
            boxes=boxes,
        )
    low, high = np.minimum(low, a), np.maximum(high, a)  # NaN (out of range) stays NaN
    if a.ndim == 0:
        return float(low), float(high)
    return low, high


def has_table(
    min_box: int = 4,
    max_box: int | None = None,
    num_scales: int = 20,
    order: int = 1,
    aggregate: str = "mean",
    scales: tuple[int, ...] | None = None,
    boxes: str = "both",
    n: int | None = None,
) -> bool:
    """Whether the shipped belt serves these settings (else: the slower bootstrap).

    Explicit ``scales`` are served when they are the default sizes for ``n``.
    """
    if boxes != "both" or order != 1 or aggregate not in _table():
        return False
    if scales is not None:
        return n is not None and tuple(box_scales(n, *DEFAULT_BOXES).scales.tolist()) == scales
    return (min_box, max_box, num_scales) == DEFAULT_BOXES


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    """Load the shipped belt: {aggregate: (ns, alphas, levels, quantiles[n, α, level])}."""
    path = resources.files("wcdfa") / TABLE_FILE
    try:
        with resources.as_file(path) as file, np.load(file) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        return {}
    return {
        agg: (arrays["ns"], arrays["alphas"], arrays["levels"], arrays[f"q_{agg}"])
        for agg in ("mean", "rms")
        if f"q_{agg}" in arrays
    }


def _belt(
    n: int, level: float, aggregate: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Lower and upper quantile of α̂ against the true α, at length n."""
    ns, grid, levels, q = _table()[aggregate]
    log_ns = np.log(ns)
    logn = float(np.log(np.clip(n, ns[0], ns[-1])))
    k = int(np.clip(np.searchsorted(log_ns, logn) - 1, 0, ns.size - 2))
    w = (logn - log_ns[k]) / (log_ns[k + 1] - log_ns[k])
    at_n = (1.0 - w) * q[k].astype(np.float64) + w * q[k + 1]  # (alphas, levels)

    def column(p: float) -> NDArray[np.float64]:
        j = int(np.clip(np.searchsorted(levels, p) - 1, 0, levels.size - 2))
        t = (p - levels[j]) / (levels[j + 1] - levels[j])
        return np.asarray((1.0 - t) * at_n[:, j] + t * at_n[:, j + 1])

    low, high = column((1.0 - level) / 2.0), column((1.0 + level) / 2.0)
    return grid, low, high


def _bootstrap(
    alpha: NDArray[np.float64], n: int, level: float, **settings: Any
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Compute a basic parametric-bootstrap interval at each α̂ (settings without a table)."""
    low = np.empty(alpha.shape)
    high = np.empty(alpha.shape)
    for idx, a_hat in np.ndenumerate(alpha):
        center = float(np.clip(a_hat, *ALPHA_RANGE))
        rng = np.random.default_rng([n, round(center * 1e6)])
        lows, highs = [], []
        for family in families(center):
            sims = estimates(family, n, center, 200, rng, **settings)
            lo_q, hi_q = np.quantile(sims, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
            lows.append(lo_q)
            highs.append(hi_q)
        # outside the simulated range of α a bound is not calibrated: NaN
        low[idx] = 2.0 * a_hat - max(highs) if a_hat >= ALPHA_RANGE[0] else np.nan
        high[idx] = 2.0 * a_hat - min(lows) if a_hat <= ALPHA_RANGE[1] else np.nan
    return low, high
