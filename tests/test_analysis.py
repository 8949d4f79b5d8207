from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import wcdfa
from oracle import dfa_loop
from wcdfa import DFAResult, compute_dfa, dfa
from wcdfa.fluctuation import alpha_batch, box_scales


def _walk(n, seed=0):
    return np.cumsum(np.random.default_rng(seed).standard_normal(n))


def test_defaults_reproduce_compute_dfa_exactly():
    x = _walk(1000)
    result = dfa(x)
    alpha, scales, fluct, r2 = compute_dfa(x, return_r_squared=True)
    assert isinstance(result, DFAResult)
    assert (result.alpha, result.r_squared, result.n) == (alpha, r2, 1000)
    np.testing.assert_array_equal(result.scales, scales)
    np.testing.assert_array_equal(result.fluctuations, fluct)
    assert (result.order, result.aggregate, result.level) == (1, "mean", 0.95)
    assert result.ci_low < result.alpha < result.ci_high


def test_intercept_is_the_fit_intercept_in_signal_units():
    x = _walk(800) * 1e200
    result = dfa(x, ci=None)
    log_s, log_f = np.log10(result.scales), np.log10(result.fluctuations)
    slope, intercept = np.polyfit(log_s, log_f, 1)
    assert result.alpha == pytest.approx(slope, abs=1e-12)
    assert result.intercept == pytest.approx(intercept, abs=1e-9)


def test_result_is_frozen_and_serialisable():
    result = dfa(_walk(300), ci=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.alpha = 1.0
    d = result.as_dict()
    assert d["alpha"] == result.alpha
    assert d["scales"] == result.scales.tolist()
    assert math.isnan(d["ci_low"])
    assert d["level"] is None


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("aggregate", ["mean", "rms"])
@pytest.mark.parametrize(
    ("n", "kind"), [(97, "walk"), (500, "white"), (3000, "walk"), (20_000, "double")]
)
def test_orders_and_aggregates_match_the_per_box_oracle(order, aggregate, n, kind):
    w = np.random.default_rng(n + order).standard_normal(n)
    x = {"white": w, "walk": np.cumsum(w), "double": np.cumsum(np.cumsum(w))}[kind]
    result = dfa(x, order=order, aggregate=aggregate, min_box=order + 3, ci=None)
    ref_alpha, ref_scales, ref_fluct, ref_r2 = dfa_loop(
        x, min_box=order + 3, order=order, aggregate=aggregate
    )
    np.testing.assert_array_equal(result.scales, ref_scales)
    np.testing.assert_allclose(result.fluctuations, ref_fluct, rtol=1e-8)
    assert abs(result.alpha - ref_alpha) < 1e-9
    assert abs(result.r_squared - ref_r2) < 1e-9


@pytest.mark.parametrize("aggregate", ["mean", "rms"])
@pytest.mark.parametrize("order", [1, 2])
def test_batch_kernel_matches_single_signals(aggregate, order):
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.standard_normal((5, 700)), axis=1)
    scales = box_scales(700, 4, None, 20, order).scales
    batch = alpha_batch(x, scales, order, aggregate)
    single = [dfa(row, order=order, aggregate=aggregate, ci=None).alpha for row in x]
    np.testing.assert_allclose(batch, single, atol=1e-12)


@pytest.mark.parametrize(("order", "degree"), [(2, 1), (3, 2)])
def test_dfa_k_is_blind_to_signal_trends_of_degree_k_minus_1(order, degree):
    # The profile integrates the signal: a degree-d trend in x is degree d+1 in y,
    # which DFA of order d+1 removes box by box, exactly.
    rng = np.random.default_rng(4)
    t = np.linspace(-1, 1, 2000)
    noise = rng.standard_normal(2000)
    trend = 40 * t**degree
    assert dfa(noise + trend, ci=None).alpha > 1.0  # DFA-1 is fooled
    kw = {"order": order, "min_box": order + 2, "ci": None}
    with_trend = dfa(noise + trend, **kw).alpha
    assert with_trend == pytest.approx(dfa(noise, **kw).alpha, abs=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"order": 0}, ValueError, r"`order` must be an integer >= 1, but got 0"),
        ({"order": 6}, ValueError, r"`order` must be an integer from 1 to 5, but got 6"),
        ({"order": 1.5}, ValueError, r"`order`.*1\.5"),
        ({"order": 2, "min_box": 3}, ValueError, r"`min_box` must be an integer >= 4"),
        ({"aggregate": "median"}, ValueError, r"`aggregate` must be one of.*'median'"),
        ({"ci": 1.0}, ValueError, r"`ci` must be a coverage strictly between 0 and 1.*1\.0"),
        ({"ci": 0}, ValueError, r"`ci`.*0"),
        ({"ci": "95%"}, TypeError, r"`ci`.*'95%'"),
    ],
)
def test_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        dfa(_walk(200), **kwargs)


def test_default_min_box_follows_the_order():
    x = _walk(500)
    assert dfa(x, order=3, ci=None).scales[0] == 5
    assert dfa(x, order=2, ci=None).scales[0] == 4


def test_public_names():
    assert {"dfa", "DFAResult"} <= set(wcdfa.__all__)
