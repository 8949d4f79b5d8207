"""The full DFA result: exponent, fit, fluctuations and a calibrated interval."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._checks import check_choice, check_int, check_real
from wcdfa.fluctuation import as_signal, check_scales, dfa_fit
from wcdfa.layouts import LAYOUTS

__all__ = ["AGGREGATES", "DFAResult", "dfa"]

AGGREGATES = ("mean", "rms")
MAX_ORDER = 5


@dataclasses.dataclass(frozen=True)
class DFAResult:
    """Everything one DFA computation produced.

    Attributes
    ----------
    alpha : float
        Slope of log10 F(s) against log10 s.
    intercept : float
        Intercept of that line (log10 F at s = 1, in the signal's units).
    r_squared : float
        R² of the log-log fit.
    scales : numpy.ndarray
        Box sizes used in the fit.
    fluctuations : numpy.ndarray
        F(s) at those box sizes.
    n : int
        Signal length.
    ci_low, ci_high : float
        Confidence interval for the exponent (NaN when not requested).
    level : float or None
        Nominal coverage of the interval.
    order : int
        Degree of the detrending polynomial.
    aggregate : str
        ``"mean"`` (mean of per-box RMS, the 0.1.0 estimator) or ``"rms"``.
    min_box, max_box, num_scales : int, int or None, int
        The box settings the scales came from (the interval is calibrated for them);
        with explicit ``box_sizes``, their smallest, largest and count.
    boxes : str
        The box layout (``"both"``, ``"forward"``, ``"overlap"`` or ``"sliding"``).
    box_sizes : tuple of int or None
        The explicit box sizes asked for (``scales=`` of :func:`dfa`), else ``None``.
    in_range : bool
        Whether the interval could be computed within the calibrated range of α
        (``False``: a bound lies outside it and is NaN; see :func:`dfa`).
    """

    alpha: float
    intercept: float
    r_squared: float
    scales: NDArray[np.int64]
    fluctuations: NDArray[np.float64]
    n: int
    ci_low: float = math.nan
    ci_high: float = math.nan
    level: float | None = None
    order: int = 1
    aggregate: str = "mean"
    min_box: int = 4
    max_box: int | None = None
    num_scales: int = 20
    boxes: str = "both"
    box_sizes: tuple[int, ...] | None = None
    in_range: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Return the result as plain Python values (lists for the arrays)."""
        out = dataclasses.asdict(self)
        out["scales"] = self.scales.tolist()
        out["fluctuations"] = self.fluctuations.tolist()
        out["box_sizes"] = None if self.box_sizes is None else list(self.box_sizes)
        return out


def dfa(
    signal: Any,
    *,
    min_box: int | None = None,
    max_box: int | None = None,
    num_scales: int | None = None,
    scales: Any = None,
    boxes: str = "both",
    order: int = 1,
    aggregate: str = "mean",
    ci: float | None = 0.95,
) -> DFAResult:
    r"""Detrended fluctuation analysis with a calibrated confidence interval.

    Parameters
    ----------
    signal : array_like
        1-D series of at least 50 finite real numbers.
    min_box : int, optional
        Smallest box size, at least ``order + 2``; by default 4 (``order + 2`` for
        ``order >= 3``).
    max_box : int, optional
        Largest box size, default and at most ``len(signal) // 4``.
    num_scales : int, default 20
        Log-spaced box sizes before de-duplication.
    scales : sequence of int, optional
        Explicit box sizes instead of ``min_box``/``max_box``/``num_scales`` (giving
        both is an error): distinct integers ``>= order + 2``, smaller than the
        signal, in any order (they are sorted).
    boxes : {"both", "forward", "overlap", "sliding"}, default "both"
        Where the boxes of each size lie: non-overlapping from the start and from the
        end (0.1.0, MFDFA, fathon ``revSeg=True``); from the start only (PhysioNet,
        nolds ``overlap=False``, fathon ``revSeg=False``); starting every ``s // 2``
        samples while ``start < n - s`` (nolds' default, which never lets a box end on
        the last sample); or at every start (PhysioNet's sliding option). The table
        in docs/validation.md says which settings reproduce which package.
    order : int, default 1
        Degree of the polynomial removed from each box (DFA-1, DFA-2, ...; at most 5).
    aggregate : {"mean", "rms"}, default "mean"
        F(s) as the mean of the per-box RMS residuals (the 0.1.0 estimator, which the
        regime thresholds refer to) or as the square root of the mean per-box
        residual variance (the textbook definition).
    ci : float or None, default 0.95
        Nominal coverage of the interval for α; ``None`` skips it. The interval
        always contains α̂; where a bound would lie outside the range of α the
        calibration covers (about 0.05 to 2.45), it is NaN and ``in_range`` is false.

    Returns
    -------
    DFAResult

    Raises
    ------
    ValueError, TypeError
        As :func:`wcdfa.compute_dfa`, and for an ``order``, ``aggregate`` or ``ci``
        outside the rules above.

    Notes
    -----
    With the defaults the numbers are exactly those of :func:`wcdfa.compute_dfa`.
    The interval comes from a confidence belt simulated on fractional Gaussian
    noise, fractional Brownian motion and power-law noise
    (:mod:`wcdfa.uncertainty`): its coverage is honest for signals of those kinds,
    whatever the correlation of the log-log points.

    References
    ----------
    .. [1] C.-K. Peng et al., "Quantification of scaling exponents and crossover
       phenomena in nonstationary heartbeat time series", Chaos 5, 82 (1995).
    .. [2] J. W. Kantelhardt et al., "Detecting long-range correlations with detrended
       fluctuation analysis", Physica A 295, 441-454 (2001).

    Examples
    --------
    >>> from wcdfa import dfa
    >>> from wcdfa.synthetic import fgn
    >>> result = dfa(fgn(2000, 0.7, rng=2))
    >>> round(result.alpha, 2), round(result.ci_low, 2), round(result.ci_high, 2)
    (0.72, 0.65, 0.78)
    """
    order, aggregate, ci = check_options(order, aggregate, ci)
    boxes = check_choice("boxes", boxes, LAYOUTS)
    min_box, max_box, num_scales, box_sizes = box_options(
        min_box, max_box, num_scales, scales, order
    )
    x = as_signal(signal)
    fit = dfa_fit(x, min_box, max_box, num_scales, order, aggregate, box_sizes, boxes)
    result = DFAResult(
        alpha=fit.alpha,
        intercept=fit.intercept,
        r_squared=fit.r_squared,
        scales=fit.scales,
        fluctuations=fit.fluctuations,
        n=x.shape[0],
        order=order,
        aggregate=aggregate,
        min_box=int(min_box),
        max_box=None if max_box is None else int(max_box),
        num_scales=int(num_scales),
        boxes=boxes,
        box_sizes=box_sizes,
    )
    return result if ci is None else with_interval(result, ci)


def check_options(order: Any, aggregate: Any, ci: Any) -> tuple[int, str, float | None]:
    """Validate the estimator options shared by :func:`dfa` and the monitors."""
    order = check_int("order", order, 1)
    if order > MAX_ORDER:
        msg = f"Argument `order` must be an integer from 1 to {MAX_ORDER}, but got {order}"
        raise ValueError(msg)
    aggregate = check_choice("aggregate", aggregate, AGGREGATES)
    if ci is not None:
        ci = check_real("ci", ci)
        if not 0.0 < ci < 1.0:
            msg = f"Argument `ci` must be a coverage strictly between 0 and 1, but got {ci}"
            raise ValueError(msg)
    return order, aggregate, ci


def box_options(
    min_box: Any, max_box: Any, num_scales: Any, scales: Any, order: int
) -> tuple[int, int | None, int, tuple[int, ...] | None]:
    """Resolve the box arguments of :func:`dfa` and the monitors (defaults filled in).

    Returns ``(min_box, max_box, num_scales, box_sizes)``; with explicit ``scales``
    the first three describe them (smallest, largest, count).
    """
    if scales is None:
        return (
            max(4, order + 2) if min_box is None else min_box,
            max_box,
            20 if num_scales is None else num_scales,
            None,
        )
    if (min_box, max_box, num_scales) != (None, None, None):
        msg = (
            "Arguments `scales` and `min_box`/`max_box`/`num_scales` exclude each other, "
            f"but got scales={scales!r} with min_box={min_box!r}, max_box={max_box!r}, "
            f"num_scales={num_scales!r}"
        )
        raise ValueError(msg)
    sizes = check_scales(scales, order)
    return sizes[0], sizes[-1], len(sizes), sizes


def with_interval(result: DFAResult, level: float) -> DFAResult:
    """Return ``result`` with its confidence interval at ``level`` filled in.

    The interval is calibrated for the box settings ``result`` was computed with.
    """
    from wcdfa.uncertainty import confidence_interval  # noqa: PLC0415 - loads a table

    low, high = confidence_interval(
        result.alpha,
        result.n,
        level,
        min_box=result.min_box,
        max_box=result.max_box,
        num_scales=result.num_scales,
        order=result.order,
        aggregate=result.aggregate,
        scales=result.box_sizes,
        boxes=result.boxes,
    )
    in_range = not (math.isnan(low) or math.isnan(high))
    return dataclasses.replace(result, ci_low=low, ci_high=high, level=level, in_range=in_range)
