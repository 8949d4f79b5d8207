r"""The continuous power-law fit of an eigenvalue spectrum, xmin chosen by KS distance.

For sorted eigenvalues :math:`\lambda_1 \le \dots \le \lambda_N` (those above a small
threshold), every :math:`\lambda_i` but the largest is tried as :math:`x_{min}`: with
:math:`n_i = N - i + 1` values in the tail, the maximum-likelihood exponent is

.. math:: \alpha_i = 1 + n_i \Big/ \sum_{j \ge i} \log(\lambda_j / \lambda_i),

and :math:`D_i = \max_{j \ge i} |1 - (\lambda_j/\lambda_i)^{1-\alpha_i} - (j-i)/n_i|`
is the Kolmogorov-Smirnov distance between the fitted and the empirical CDF (1 where
:math:`\alpha_i \le 1`). The :math:`x_{min}` of smallest :math:`D` is kept, with
:math:`\sigma = (\alpha - 1)/\sqrt{n}`. These are the conventions of weightwatcher's
default fit (0.7.7, 20 or more eigenvalues), against which the tests check the numbers;
the computation here is vectorised over the candidates.

Below :data:`SMALL_N` eigenvalues weightwatcher 0.7.7 fits differently, and so do we
(same numbers): only tails of at least :data:`SMALL_N_MIN_TAIL` values are candidates,
the exponent is the bias-corrected :math:`1 + (n_i - 1)/\sum_{j \ge i}\log(\lambda_j/\lambda_i)`,
and the candidate of smallest :math:`D` is kept; when none qualifies (fewer than 8
values, or no exponent above 1) the whole spectrum is the tail. (weightwatcher 0.7.7
also scores :math:`D_i - 0.868/\sqrt{n_i}` there, but its result is the smallest
:math:`D`; for fewer than 8 values it reports :math:`\sigma = -1/\sqrt{N}`, where we
report :math:`(\alpha - 1)/\sqrt{N}`.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["PowerLawFit", "detx_count", "fit_power_law"]

EVALS_THRESHOLD = 1e-5
"""Eigenvalues at or below this are dropped before the fit (weightwatcher's default)."""

SMALL_N = 20
"""Below this many eigenvalues (above the threshold) the small-sample fit is used."""

SMALL_N_MIN_TAIL = 8
"""The smallest tail the small-sample fit considers."""

_CHUNK_ELEMENTS = 1 << 20
"""Candidates are scored in blocks of at most this many (candidate, eigenvalue) pairs."""


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    """The fitted tail: exponent, its start, KS distance, standard error and size."""

    alpha: float
    xmin: float
    D: float
    sigma: float
    num_tail: int
    num_evals: int


def fit_power_law(evals: Any, threshold: float = EVALS_THRESHOLD) -> PowerLawFit:
    """Fit a power law to the tail of ``evals`` (1-D, real), choosing xmin by KS distance.

    Parameters
    ----------
    evals : array_like
        The eigenvalues, in any order.
    threshold : float, default 1e-5
        Eigenvalues at or below it are dropped first.

    Returns
    -------
    PowerLawFit
        ``alpha``, ``xmin``, ``D`` (KS distance), ``sigma``, ``num_tail`` (eigenvalues
        >= xmin) and ``num_evals`` (eigenvalues above the threshold).

    Raises
    ------
    ValueError
        If fewer than 2 eigenvalues lie above ``threshold`` (naming how many).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> evals = (1.0 - rng.random(2000)) ** (-1.0 / 2.0)   # a Pareto tail, alpha = 3
    >>> round(fit_power_law(evals).alpha, 1)
    3.0
    """
    values = np.asarray(evals, dtype=np.float64)
    if values.ndim != 1:
        msg = f"Argument `evals` must be 1-D, but got shape {values.shape}"
        raise ValueError(msg)
    data = np.sort(values[values > threshold])
    count = data.size
    if count < 2:
        msg = (
            f"Argument `evals` must hold at least 2 eigenvalues above {threshold:g}, "
            f"but got {count}"
        )
        raise ValueError(msg)
    logs = np.log(data)
    if count < SMALL_N:
        return _fit_small(data, logs)
    tail = count - np.arange(count - 1)  # n_i for every candidate xmin
    suffix = np.cumsum(logs[::-1])[::-1][:-1]  # sum of logs from i to the end
    with np.errstate(divide="ignore"):
        alphas = 1.0 + tail / (suffix - tail * logs[:-1])
    dists = np.ones(count - 1)
    rows = max(1, min(64, _CHUNK_ELEMENTS // count))  # small blocks: the triangle only
    for start in range(0, count - 1, rows):
        i = np.arange(start, min(start + rows, count - 1))
        i = i[alphas[i] > 1.0]
        if i.size == 0:
            continue
        # only the eigenvalues from this block's first candidate on can be in a tail
        j = np.arange(i[0], count)
        offset = j[None, :] - i[:, None]  # j - i: the rank inside candidate i's tail
        # j < i (masked below) would overflow for a steep fit: those distances are 0 here
        ratio = np.maximum(logs[j][None, :] - logs[i][:, None], 0.0)
        model = np.exp((1.0 - alphas[i][:, None]) * ratio)
        gap = np.abs(1.0 - model - offset / tail[i][:, None])
        gap[offset < 0] = 0.0
        dists[i] = gap.max(axis=1)
    best = int(np.argmin(dists))
    return _result(data, best, float(alphas[best]), float(dists[best]))


def _result(data: np.ndarray, best: int, alpha: float, dist: float) -> PowerLawFit:
    xmin = data[best]
    return PowerLawFit(
        alpha=alpha,
        xmin=float(xmin),
        D=dist,
        sigma=float((alpha - 1.0) / np.sqrt(data.size - best)),
        num_tail=int(np.count_nonzero(data >= xmin)),  # ties with xmin included
        num_evals=data.size,
    )


def _ks(tail: np.ndarray, alpha: float) -> float:
    """KS distance of a power law of exponent ``alpha`` from ``tail[0]`` on (sorted)."""
    model = 1.0 - (tail / tail[0]) ** (1.0 - alpha)
    return float(np.max(np.abs(np.arange(tail.size) / tail.size - model)))


def _fit_small(data: np.ndarray, logs: np.ndarray) -> PowerLawFit:
    """Fit fewer than :data:`SMALL_N` eigenvalues the small-sample way (see the module)."""
    count = data.size
    best, best_alpha, best_dist = 0, np.nan, 1.0
    for i in range(count - SMALL_N_MIN_TAIL + 1):  # at most 12 candidates
        n = count - i
        spread = float(np.sum(logs[i:]) - n * logs[i])
        alpha = 1.0 + (n - 1.0) / spread if spread > 1e-12 else 1.0
        if alpha > 1.0:
            dist = _ks(data[i:], alpha)
            if dist < best_dist:  # the first of equal distances, as argmin
                best, best_alpha, best_dist = i, alpha, dist
    if np.isnan(best_alpha):  # no candidate qualified: the whole spectrum is the tail
        spread = float(np.sum(logs) - count * logs[0])
        best_alpha = 1.0 + (count - 1.0) / spread if spread > 1e-12 else 1.0
        if best_alpha > 1.0:
            best_dist = _ks(data, best_alpha)
    return _result(data, best, best_alpha, best_dist)


def detx_count(evals: Any) -> int:
    r"""Size of the tail that satisfies SETOL's TRACE-LOG ("detX") condition.

    The eigenvalues are rescaled to mean 1 (λ · N / Σλ); then, adding eigenvalues from
    the largest down, the count is the first tail size ``k`` (1 <= k < N) whose product
    of eigenvalues falls below 1, i.e. whose Σ log λ turns negative; ``N`` if none does.
    weightwatcher's ``detX_num`` (0.7.7) is the same number, from running products; here
    it is one cumulative sum of logs (no overflow for large spectra).
    """
    values = np.sort(np.asarray(evals, dtype=np.float64))
    count = values.size
    if count < 2 or not values[0] < values[-1]:
        return 0  # weightwatcher's convention for a degenerate spectrum
    with np.errstate(divide="ignore"):
        logs = np.log(values * (count / values.sum()))
    below = np.flatnonzero(np.cumsum(logs[::-1])[: count - 1] < 0.0)
    return int(below[0] + 1) if below.size else count
