from __future__ import annotations

import numpy as np
import pytest

from wcdfa import dfa
from wcdfa.synthetic import fbm, fgn, fgn_batch, pink, power_law_batch


def _gamma(k, h):
    k = np.asarray(k, dtype=float)
    return 0.5 * (np.abs(k + 1) ** (2 * h) - 2 * np.abs(k) ** (2 * h) + np.abs(k - 1) ** (2 * h))


@pytest.mark.parametrize("hurst", [0.2, 0.5, 0.7, 0.9])
def test_fgn_autocovariance_is_the_theoretical_one(hurst):
    # 4000 series of 256: each lag-k estimate averages ~1e6 products, its standard
    # error is below 0.004 even at H = 0.9 (strong correlation); tolerance 0.015.
    rng = np.random.default_rng(1)
    x = np.stack([fgn(256, hurst, rng) for _ in range(4000)])
    for k in range(6):
        emp = np.mean(x[:, : 256 - k] * x[:, k:])
        assert emp == pytest.approx(_gamma(k, hurst), abs=0.015)
    assert x.mean() == pytest.approx(0.0, abs=0.02)


def test_fgn_batch_rows_are_independent():
    x = fgn_batch(128, 0.7, 3000, np.random.default_rng(2))
    corr = np.corrcoef(x[0::2, 5], x[1::2, 5])[0, 1]  # real/imag pairs and neighbours
    assert abs(corr) < 0.06  # 1500 pairs: standard error 0.026


def test_fbm_is_the_cumulative_sum_and_scales_as_t_to_the_2h():
    rng = np.random.default_rng(3)
    paths = np.stack([fbm(200, 0.7, rng) for _ in range(3000)])
    ratio = paths[:, 159].var() / paths[:, 15].var()  # Var B_t = t^2H
    assert ratio == pytest.approx((160 / 16) ** 1.4, rel=0.1)
    np.testing.assert_allclose(fbm(64, 0.3, rng=5), np.cumsum(fgn(64, 0.3, rng=5)))


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_power_law_spectrum_has_the_wanted_slope(beta):
    x = power_law_batch(1024, beta, 400, np.random.default_rng(4))
    spec = np.mean(np.abs(np.fft.rfft(x, axis=1)) ** 2, axis=0)[1:-1]
    freqs = np.fft.rfftfreq(1024)[1:-1]
    slope = np.polyfit(np.log(freqs), np.log(spec), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.03)


def test_pink_is_unit_variance_one_over_f():
    x = np.stack([pink(1024, rng=seed) for seed in range(300)])
    assert np.allclose(x.std(axis=1), 1.0)
    spec = np.mean(np.abs(np.fft.rfft(x, axis=1)) ** 2, axis=0)[1:-1]
    slope = np.polyfit(np.log(np.fft.rfftfreq(1024)[1:-1]), np.log(spec), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.03)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda rng: fgn(4096, 0.3, rng), 0.3),
        (lambda rng: fgn(4096, 0.7, rng), 0.7),
        (lambda rng: pink(4096, rng), 1.0),
        (lambda rng: fbm(4096, 0.5, rng), 1.5),
    ],
    ids=["fgn0.3", "fgn0.7", "pink", "fbm0.5"],
)
def test_dfa1_recovers_the_exponents(make, expected):
    # n = 4096: one estimate has sd ~0.03; mean over 30 within 0.05 of the exponent
    # leaves room for DFA-1's small-scale bias (+0.03 on white noise with min_box 4).
    rng = np.random.default_rng(6)
    alphas = [dfa(make(rng), ci=None).alpha for _ in range(30)]
    assert np.mean(alphas) == pytest.approx(expected, abs=0.05)


def test_seeds_reproduce():
    np.testing.assert_array_equal(fgn(100, 0.6, rng=7), fgn(100, 0.6, rng=7))
    np.testing.assert_array_equal(pink(100, rng=7), pink(100, rng=7))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: fgn(100, 1.0), ValueError, r"`hurst` must be strictly between 0 and 1.*1\.0"),
        (lambda: fgn(100, 0.0), ValueError, "`hurst`"),
        (lambda: fbm(100, -0.2), ValueError, "`hurst`"),
        (lambda: fgn(1, 0.5), ValueError, r"`n` must be an integer >= 2, but got 1"),
        (lambda: pink("10"), TypeError, "`n`"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
