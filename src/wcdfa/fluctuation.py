"""Detrended fluctuation analysis (DFA-1), vectorised and exact.

The estimator is the one of wcdfa 0.1.0, so that the regime thresholds keep their
meaning; only the way it is computed changed (no Python loop over boxes, no loss of
precision on long random walks, no overflow or underflow for extreme scales).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from wcdfa._checks import check_int
from wcdfa.layouts import Plan, box_count, fluctuations, make_plan

__all__ = ["compute_dfa"]

MIN_SAMPLES = 50
"""Shortest signal accepted by :func:`compute_dfa` (as in 0.1.0)."""

MAX_SCALES = 1000
"""Most log-spaced box sizes :func:`compute_dfa` accepts: each costs a pass over the
signal, and 1000 already resolve every integer size up to ~2000."""

_ROUNDING_ULPS = 128
"""A signal whose whole spread is within this many units in the last place of its
largest magnitude is constant but for rounding: its DFA exponent would describe the
floating-point rounding, not the signal. (A running mean of 500 equal float64 values
drifts by ~80 ulps; 128 ulps of float64 is a relative spread of 3e-14.)"""

_RESIDUAL_ULPS = 16
"""F(s) at most this many ulps of the profile's largest magnitude is rounding noise
(the 1e6-sample triple-integrated random walk, the hardest case tested, keeps its
smallest F at ~1600 ulps)."""

_GATHER_MAX_ELEMENTS = 1 << 17
"""Above this many box elements in all, the per-scale kernel (O(n) memory) is used
instead of the single-gather kernel (O(n * scales) memory, fewer numpy calls)."""


class _Fit(NamedTuple):
    alpha: float
    intercept: float
    r_squared: float
    scales: NDArray[np.int64]
    fluctuations: NDArray[np.float64]


def compute_dfa(
    signal: Any,
    min_box: int = 4,
    max_box: int | None = None,
    num_scales: int = 20,
    return_r_squared: bool = False,
) -> (
    tuple[float, NDArray[np.int64], NDArray[np.float64]]
    | tuple[float, NDArray[np.int64], NDArray[np.float64], float]
):
    r"""Compute the DFA scaling exponent :math:`\alpha` of a 1-D signal.

    Parameters
    ----------
    signal : array_like
        1-D series of at least 50 finite real numbers (lists, integers, float16/32,
        read-only arrays and torch tensors are accepted; it is converted to float64).
    min_box : int, default 4
        Smallest box size; at least 3, since a 2-point box has no residual.
    max_box : int, optional
        Largest box size. Defaults to ``len(signal) // 4`` and is clipped to it; if it
        ends below ``min_box`` it becomes ``min_box + 1``.
    num_scales : int, default 20
        Number of logarithmically spaced box sizes before rounding and de-duplication,
        from 2 to 1000.
    return_r_squared : bool, default False
        Also return the coefficient of determination of the log-log fit.

    Returns
    -------
    alpha : float
        Slope of :math:`\log_{10} F(s)` against :math:`\log_{10} s`.
    scales : numpy.ndarray of int64
        Box sizes kept for the fit.
    fluctuations : numpy.ndarray of float64
        :math:`F(s)` at those box sizes, in the units of ``signal``.
    r_squared : float
        Only when ``return_r_squared`` is true: R² of the log-log fit (0.0 when all
        :math:`\log F` are equal).

    Raises
    ------
    TypeError
        If ``signal`` is not real-valued or a box argument is not a number.
    ValueError
        If ``signal`` is not 1-D ("1D"), has fewer than 50 samples ("too short"),
        contains NaN or Inf ("NaN or Inf"), is constant or constant but for float64
        rounding ("constant": its spread within 128 ulps of its largest magnitude,
        whatever its dtype); if ``min_box < 3``, a box size is not an integer, or fewer than
        two scales remain ("Not enough valid scales").

    Notes
    -----
    With :math:`y_k = \sum_{i \le k} (x_i - \bar x)` the profile, for every box size
    :math:`s` the :math:`\lfloor n/s \rfloor` non-overlapping boxes from the start and
    the same number from the end are each detrended by their least-squares line, and

    .. math:: F(s) = \frac{1}{2\lfloor n/s \rfloor} \sum_{\text{boxes } b}
              \sqrt{\frac{1}{s} \sum_{k \in b} (y_k - a_b - \beta_b k)^2}.

    Scales whose :math:`F` is zero are dropped and :math:`\alpha` is the slope of the
    least-squares line through :math:`(\log_{10} s, \log_{10} F(s))`. White noise
    gives :math:`\alpha \approx 0.5`, 1/f noise :math:`\approx 1`, a random walk
    :math:`\approx 1.5`.

    Residuals are formed explicitly in every box (never from global prefix sums of
    :math:`y^2`, which lose all precision on long random walks), and the signal is
    rescaled by a power of two before the profile is formed, which changes no bit of
    the result but keeps 1e300- and 1e-300-scaled inputs from overflowing or
    underflowing.

    References
    ----------
    .. [1] C.-K. Peng, S. V. Buldyrev, S. Havlin, M. Simons, H. E. Stanley and
       A. L. Goldberger, "Mosaic organization of DNA nucleotides", Phys. Rev. E 49,
       1685 (1994).
    .. [2] C.-K. Peng, S. Havlin, H. E. Stanley and A. L. Goldberger,
       "Quantification of scaling exponents and crossover phenomena in
       nonstationary heartbeat time series", Chaos 5, 82 (1995).

    Examples
    --------
    >>> import numpy as np
    >>> from wcdfa import compute_dfa
    >>> rng = np.random.default_rng(0)
    >>> alpha, scales, fluctuations = compute_dfa(rng.standard_normal(1000))
    >>> round(alpha, 3)  # white noise
    0.536
    >>> scales[:5]
    array([ 4,  6,  7,  9, 11])
    >>> alpha, *_ = compute_dfa(np.cumsum(rng.standard_normal(1000)))
    >>> round(alpha, 3)  # random walk
    1.59
    """
    x = as_signal(signal)
    fit = dfa_fit(x, min_box=min_box, max_box=max_box, num_scales=num_scales)
    if return_r_squared:
        return fit.alpha, fit.scales, fit.fluctuations, fit.r_squared
    return fit.alpha, fit.scales, fit.fluctuations


def as_signal(signal: Any) -> NDArray[np.float64]:
    """Convert ``signal`` to a finite, non-constant 1-D float64 array or raise."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(signal, torch.Tensor):
        # a tensor that requires grad has no numpy view; bf16 has no numpy dtype
        signal = (
            signal.detach()
            .to("cpu", torch.float64 if signal.is_floating_point() else signal.dtype)
            .numpy()
        )
    raw = np.asarray(signal)
    if raw.dtype.kind not in "biuf":
        msg = f"Signal must hold real numbers, but got an array of dtype {raw.dtype}"
        raise TypeError(msg)
    if raw.ndim != 1:
        msg = f"Signal must be 1D, got shape {raw.shape}"
        raise ValueError(msg)
    n = raw.shape[0]
    if n < MIN_SAMPLES:
        msg = f"Signal too short for reliable DFA: {n} samples (need >= {MIN_SAMPLES})"
        raise ValueError(msg)
    x = raw.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        msg = (
            f"Signal contains NaN or Inf values: {bad.size} of {n} samples, "
            f"the first at index {bad[0]} ({x[bad[0]]})"
        )
        raise ValueError(msg)
    reason = constant_reason(x)
    if reason is not None:
        raise ValueError(reason)
    return x


def constant_reason(x: NDArray[np.float64]) -> str | None:
    """Why the finite float64 series ``x`` is constant for DFA, or ``None`` if it is not.

    The one near-constant rule of wcdfa (the monitors use it too): the whole spread
    of ``x`` is within ``_ROUNDING_ULPS`` units in the last place of float64 at its
    largest magnitude. The values are judged as float64 whatever dtype they came in:
    a float16 or float32 series is exact in float64, and its spread is real data.
    """
    peak = float(np.max(np.abs(x)))
    spread = float(np.max(x)) - float(np.min(x))  # Python floats: inf, not a warning
    if spread > _ROUNDING_ULPS * float(np.spacing(peak)):
        return None
    return (
        f"Signal is constant or near-constant: its values span {spread:.3g} around "
        f"a magnitude of {peak:.3g}, within float64 rounding error; DFA has no "
        "fluctuation to measure"
    )


def box_scales(
    n: int,
    min_box: Any,
    max_box: Any,
    num_scales: Any,
    order: int = 1,
    scales: Any = None,
    layout: str = "both",
) -> _Scales:
    """Validate the box arguments and return the box sizes (and, if short, the layout).

    Without ``scales``: the 0.1.0 log-spaced sizes from ``min_box`` to ``max_box``.
    """
    if scales is not None:
        return _scales_given(n, check_scales(scales, order), order, layout)
    min_box = check_int("min_box", min_box, order + 2)
    num_scales = check_int("num_scales", num_scales, 2)
    if num_scales > MAX_SCALES:
        msg = (
            f"Argument `num_scales` must be an integer from 2 to {MAX_SCALES}, but got {num_scales}"
        )
        raise ValueError(msg)
    top = n // 4 if max_box is None else min(check_int("max_box", max_box, 1), n // 4)
    return _scales_for(n, min_box, min_box + 1 if top < min_box else top, num_scales, order, layout)


def check_scales(scales: Any, order: int) -> tuple[int, ...]:
    """Validate explicit box sizes: distinct integers ``>= order + 2``, returned sorted."""
    rule = f"a sequence of at least 2 distinct integers >= {order + 2}"
    if isinstance(scales, str | bytes) or not hasattr(scales, "__iter__"):
        msg = f"Argument `scales` must be {rule}, but got {scales!r}"
        raise TypeError(msg)
    values = list(scales.tolist() if hasattr(scales, "tolist") else scales)
    out = sorted(check_int("scales", v, order + 2) for v in values)
    if len(out) < 2 or len(set(out)) != len(out):
        msg = f"Argument `scales` must be {rule}, but got {values!r}"
        raise ValueError(msg)
    if len(out) > MAX_SCALES:
        msg = f"Argument `scales` must hold at most {MAX_SCALES} sizes, but got {len(out)}"
        raise ValueError(msg)
    return tuple(out)


class _Scales(NamedTuple):
    scales: NDArray[np.int64]
    plan: Plan | None  # the single-gather layout, for short signals only


@functools.lru_cache(maxsize=64)
def _scales_for(
    n: int, min_box: int, top: int, num_scales: int, order: int, layout: str
) -> _Scales:
    scales = np.unique(
        np.logspace(np.log10(min_box), np.log10(top), num=num_scales).astype(np.int64)
    )
    scales = scales[(scales >= min_box) & (scales <= n)]
    if scales.size < 2:
        msg = (
            f"Not enough valid scales (got {scales.size}) for a signal of {n} samples "
            f"with min_box={min_box}, max_box={top}, num_scales={num_scales}: "
            "the signal may be too short or min_box too large"
        )
        raise ValueError(msg)
    return _with_plan(n, scales, order, layout)


@functools.lru_cache(maxsize=64)
def _scales_given(n: int, scales: tuple[int, ...], order: int, layout: str) -> _Scales:
    if scales[-1] >= n:
        msg = (
            f"Argument `scales` must hold box sizes smaller than the signal's {n} "
            f"samples, but got {scales[-1]}"
        )
        raise ValueError(msg)
    return _with_plan(n, np.array(scales, dtype=np.int64), order, layout)


def _with_plan(n: int, scales: NDArray[np.int64], order: int, layout: str) -> _Scales:
    scales.flags.writeable = False
    elements = sum(box_count(n, s, layout) * s for s in scales.tolist())
    small = elements <= _GATHER_MAX_ELEMENTS
    return _Scales(scales, make_plan(n, scales, order, layout) if small else None)


def dfa_fit(
    x: NDArray[np.float64],
    min_box: Any,
    max_box: Any,
    num_scales: Any,
    order: int = 1,
    aggregate: str = "mean",
    scales: Any = None,
    layout: str = "both",
) -> _Fit:
    """DFA of a validated signal: scales, fluctuations and the log-log fit."""
    n = x.shape[0]
    sizes, plan = box_scales(n, min_box, max_box, num_scales, order, scales, layout)
    # Power-of-two rescaling is exact: it changes no bit of the profile's digits, only
    # keeps its magnitude near 1 (no overflow at 1e300, no underflow at 1e-300).
    exponent = int(np.frexp(np.max(np.abs(x)))[1])
    xs = np.ldexp(x, -exponent)
    y = np.cumsum(xs - xs.mean())
    fluct = fluctuations(y, sizes, plan, order, aggregate, layout)
    # A fluctuation within rounding error of the profile is zero: a box whose profile
    # is a polynomial of the detrending order leaves a residual of a few ulps of |y|.
    keep = fluct > _RESIDUAL_ULPS * np.finfo(np.float64).eps * np.max(np.abs(y))
    if np.count_nonzero(keep) < 2:
        msg = (
            "Could not compute valid fluctuations at enough scales "
            f"({np.count_nonzero(keep)} of {sizes.size} above rounding level). "
            "Signal may be constant or near-constant."
        )
        raise ValueError(msg)
    sizes, fluct = sizes[keep], fluct[keep]
    alpha, intercept, r_squared = _loglog_fit(np.log10(sizes), np.log10(fluct))
    with np.errstate(over="ignore"):
        rescaled = np.ldexp(fluct, exponent)
    return _Fit(
        alpha=alpha,
        intercept=intercept + exponent * float(np.log10(2.0)),
        r_squared=r_squared,
        scales=sizes,
        fluctuations=rescaled,
    )


def alpha_batch(
    x: NDArray[np.float64],
    scales: NDArray[np.int64],
    order: int = 1,
    aggregate: str = "mean",
    layout: str = "both",
) -> NDArray[np.float64]:
    """Alpha of each row of ``x`` (already validated, no zero fluctuation expected).

    Used by the uncertainty calibration on thousands of synthetic series at once; the
    per-scale kernel vectorises over the rows, which beats the gather layout here.
    """
    y = np.cumsum(x - x.mean(axis=-1, keepdims=True), axis=-1)
    log_f = np.log10(fluctuations(y, scales, None, order, aggregate, layout))
    log_s = np.log10(scales) - np.log10(scales).mean()
    return np.asarray(log_f @ log_s / (log_s @ log_s))


def _loglog_fit(
    log_s: NDArray[np.float64], log_f: NDArray[np.float64]
) -> tuple[float, float, float]:
    """Least-squares line through the log-log points: slope, intercept and R².

    A few dozen points: plain Python floats beat numpy's per-call overhead here.
    """
    xs, ys = log_s.tolist(), log_f.tolist()
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    xc = [v - mx for v in xs]
    yc = [v - my for v in ys]
    slope = sum(a * b for a, b in zip(xc, yc, strict=True)) / sum(a * a for a in xc)
    ss_res = sum((b - slope * a) ** 2 for a, b in zip(xc, yc, strict=True))
    ss_tot = sum(b * b for b in yc)
    r_squared = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return slope, my - slope * mx, r_squared
