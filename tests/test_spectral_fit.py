"""The spectral power-law fit against weightwatcher's on the same eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest
from weightwatcher.RMT_Util import detX_constraint
from weightwatcher.WW_powerlaw import WWFit

from wcdfa.spectral import detx_count, fit_power_law


def trained_like_evals(n, m, seed):
    """Eigenvalues of WᵀW/N for a random matrix with a few strong directions added."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, m)) / np.sqrt(n)
    u, v = rng.standard_normal((n, 4)), rng.standard_normal((4, m))
    w += u @ (v * np.array([3.0, 2.0, 1.5, 1.0])[:, None]) / np.sqrt(n * m) * 8
    return np.linalg.eigvalsh(w.T @ w)


@pytest.mark.parametrize(("n", "m", "seed"), [(64, 32, 0), (300, 200, 1), (1000, 700, 2)])
def test_fit_agrees_with_weightwatcher_on_the_same_eigenvalues(n, m, seed):
    evals = trained_like_evals(n, m, seed)
    ours = fit_power_law(evals)
    theirs = WWFit(evals[evals > 1e-5])
    assert ours.xmin == pytest.approx(theirs.xmin, rel=1e-12)
    assert ours.alpha == pytest.approx(theirs.alpha, rel=1e-6)
    assert ours.D == pytest.approx(theirs.D, rel=1e-6)
    assert ours.sigma == pytest.approx(theirs.sigma, rel=1e-6)
    assert ours.num_tail == len(theirs.data)


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0, 4.0, 6.0])
def test_a_known_power_law_tail_is_recovered_within_its_sigma(alpha):
    # Pareto samples with density ~ x^-alpha above 1: the fit must find alpha within
    # 3 of its own standard errors (a 0.3 % chance of failing for an exact fit; the
    # seeds are fixed, measured deviations -2.1 to +0.9 sigma).
    rng = np.random.default_rng(int(alpha * 10))
    evals = (1.0 - rng.random(2000)) ** (-1.0 / (alpha - 1.0))
    fit = fit_power_law(evals)
    assert abs(fit.alpha - alpha) < 3 * fit.sigma


def test_bad_input_names_the_argument():
    with pytest.raises(
        ValueError, match="`evals` must hold at least 2 eigenvalues above 1e-05, but got 1"
    ):
        fit_power_law([0.0, 1e-9, 3.0])
    assert detx_count([1.0, 1.0, 1.0]) == 0  # degenerate: no tail
    with pytest.raises(ValueError, match=r"`evals` must be 1-D, but got shape \(2, 2\)"):
        fit_power_law(np.ones((2, 2)))


@pytest.mark.parametrize(
    ("n", "m", "seed"), [(64, 32, 0), (300, 200, 1), (1000, 700, 2), (50, 50, 3)]
)
def test_detx_count_agrees_with_weightwatcher(n, m, seed):
    evals = np.sort(trained_like_evals(n, m, seed))
    expected, _ = detX_constraint(evals, rescale=True)
    assert detx_count(evals) == expected
    assert 0 < detx_count(evals) < evals.size


def test_a_steep_cluster_at_the_top_fits_without_overflow():
    # ten nearly equal top eigenvalues give candidates an alpha of ~1e6: the distances of
    # eigenvalues below such a candidate (not in its tail) once overflowed exp() (a
    # RuntimeWarning, an error under this suite's filters) before being masked
    bulk = np.linspace(1.0, 2.0, 60)
    top = 100.0 + 1e-6 * np.arange(10)
    evals = np.concatenate([bulk, top])
    ours, theirs = fit_power_law(evals), WWFit(evals)
    assert ours.xmin == theirs.xmin
    # alpha ~ 2e7 from a log-sum difference of ~1e-6: both sums round (measured 1.6e-8)
    assert ours.alpha == pytest.approx(theirs.alpha, rel=1e-6)
    assert ours.D == pytest.approx(theirs.D, rel=1e-6)
