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
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["PowerLawFit", "detx_count", "fit_power_law"]

EVALS_THRESHOLD = 1e-5
"""Eigenvalues at or below this are dropped before the fit (weightwatcher's default)."""

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

    Raises
    ------
    ValueError
        If fewer than 2 eigenvalues lie above ``threshold`` (naming how many).
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
        model = np.exp((1.0 - alphas[i][:, None]) * (logs[j][None, :] - logs[i][:, None]))
        gap = np.abs(1.0 - model - offset / tail[i][:, None])
        gap[offset < 0] = 0.0
        dists[i] = gap.max(axis=1)
    best = int(np.argmin(dists))
    alpha = float(alphas[best])
    return PowerLawFit(
        alpha=alpha,
        xmin=float(data[best]),
        D=float(dists[best]),
        sigma=float((alpha - 1.0) / np.sqrt(tail[best])),
        num_tail=int(tail[best]),
        num_evals=count,
    )


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
