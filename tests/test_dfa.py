from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle import dfa_loop, dfa_lstsq
from wcdfa import compute_dfa


def _signals(n, seed=0):
    w = np.random.default_rng(seed).standard_normal(n)
    return {"white": w, "random_walk": np.cumsum(w), "double_integrated": np.cumsum(np.cumsum(w))}


# ----------------------------------------------------------------- exactness
@pytest.mark.parametrize("n", [50, 51, 97, 128, 500, 1001, 4096, 10_000])
@pytest.mark.parametrize("kind", ["white", "random_walk", "double_integrated"])
def test_matches_per_box_loop_oracle(n, kind):
    x = _signals(n, seed=n)[kind]
    alpha, scales, fluct, r2 = compute_dfa(x, return_r_squared=True)
    ref_alpha, ref_scales, ref_fluct, ref_r2 = dfa_loop(x)
    np.testing.assert_array_equal(scales, ref_scales)
    np.testing.assert_allclose(fluct, ref_fluct, rtol=1e-9)
    assert abs(alpha - ref_alpha) < 1e-9
    assert abs(r2 - ref_r2) < 1e-9


@pytest.mark.parametrize("n", [100_000, 1_000_000])
@pytest.mark.parametrize("kind", ["white", "random_walk", "double_integrated"])
def test_matches_lstsq_oracle_on_long_signals(n, kind):
    # Global prefix sums of y**2 would lose every digit here: y reaches ~1e15. Each
    # F(s) of the triple-integrated profile is only good to ~1e-8 in float64 (in the
    # oracle too: against an 80-bit long-double computation the oracle is off by
    # 4e-9 and wcdfa by 1e-10), so F is compared at 1e-7 and alpha at 1e-9.
    x = _signals(n, seed=1)[kind]
    alpha, scales, fluct = compute_dfa(x)
    ref_alpha, ref_scales, ref_fluct, _ = dfa_lstsq(x)
    np.testing.assert_array_equal(scales, ref_scales)
    np.testing.assert_allclose(fluct, ref_fluct, rtol=1e-7)
    assert abs(alpha - ref_alpha) < 1e-9


def test_lstsq_oracle_agrees_with_loop_oracle():
    x = _signals(3000, seed=3)["random_walk"]
    assert abs(dfa_lstsq(x)[0] - dfa_loop(x)[0]) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "n"),
    [
        ({"min_box": 3}, 200),
        ({"min_box": 10, "max_box": 40}, 300),
        ({"max_box": 10_000}, 300),  # clipped to n // 4
        ({"min_box": 5, "max_box": 3}, 200),  # becomes min_box + 1
        ({"num_scales": 5}, 800),
        ({"num_scales": 60}, 800),  # many duplicates after truncation
        ({"min_box": 10, "max_box": 12}, 100),
    ],
)
def test_box_arguments_match_oracle(kwargs, n):
    x = _signals(n, seed=5)["random_walk"]
    alpha, scales, fluct = compute_dfa(x, **kwargs)
    ref_alpha, ref_scales, ref_fluct, _ = dfa_loop(x, **kwargs)
    np.testing.assert_array_equal(scales, ref_scales)
    np.testing.assert_allclose(fluct, ref_fluct, rtol=1e-9)
    assert abs(alpha - ref_alpha) < 1e-9


def test_pinned_reference_values():
    # Computed once with the 0.1.0 algorithm (tests/oracle.py::dfa_loop).
    w = np.random.default_rng(2026).standard_normal(1000)
    alpha, _, _, r2 = compute_dfa(w, return_r_squared=True)
    assert alpha == pytest.approx(0.54096137416514, abs=1e-12)
    assert r2 == pytest.approx(0.9882840567522565, abs=1e-12)
    assert compute_dfa(np.cumsum(w))[0] == pytest.approx(1.3773565349363925, abs=1e-12)


# ------------------------------------------------------------ known exponents
def _pink(n, rng):
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    spectrum = freqs**-0.5 * np.exp(2j * np.pi * rng.uniform(size=freqs.size))
    return np.fft.irfft(spectrum, n=n)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda n, rng: rng.standard_normal(n), 0.5),
        (lambda n, rng: _pink(n, rng), 1.0),
        (lambda n, rng: np.cumsum(rng.standard_normal(n)), 1.5),
    ],
    ids=["white", "pink", "brownian"],
)
def test_known_exponents(make, expected):
    # 40 signals of n = 4096: the spread of a single alpha is ~0.05 there, so the
    # mean over 40 is within ~0.01 of the estimator's expectation; 0.08 leaves room
    # for DFA-1's known small-scale bias (alpha of white noise ~0.53 with min_box 4).
    rng = np.random.default_rng(11)
    alphas = [compute_dfa(make(4096, rng))[0] for _ in range(40)]
    assert abs(np.mean(alphas) - expected) < 0.08
    assert np.std(alphas) < 0.1


# ---------------------------------------------------------------- robustness
@pytest.mark.parametrize("scale", [1e300, 1e-300, 2.0**-1000, 1e-5, 7.0])
def test_scale_invariant_without_overflow_or_underflow(scale):
    x = _signals(2000, seed=7)["random_walk"]
    base_alpha, _, base_fluct, base_r2 = compute_dfa(x, return_r_squared=True)
    alpha, _, fluct, r2 = compute_dfa(x * scale, return_r_squared=True)
    assert alpha == pytest.approx(base_alpha, abs=1e-12)
    assert r2 == pytest.approx(base_r2, abs=1e-12)
    np.testing.assert_allclose(fluct, base_fluct * scale, rtol=1e-12)


def test_subnormal_signal_gives_finite_alpha():
    # 2**-1060 pushes the samples below the normal range: they keep ~40 bits only.
    x = _signals(2000, seed=7)["random_walk"]
    alpha = compute_dfa(x * 2.0**-1060)[0]
    assert alpha == pytest.approx(compute_dfa(x)[0], abs=1e-6)


def test_mixed_huge_magnitudes_do_not_overflow():
    x = np.array([1e308, -1e308] * 30) * np.linspace(0.5, 1.0, 60)
    alpha = compute_dfa(x)[0]
    assert alpha == pytest.approx(compute_dfa(x / 1e308)[0], abs=1e-12)


def test_power_of_two_scaling_is_bit_exact():
    x = _signals(700, seed=8)["white"]
    assert compute_dfa(x * 2.0**600)[0] == compute_dfa(x)[0]


def test_offset_does_not_change_alpha():
    x = _signals(1000, seed=9)["white"]
    assert compute_dfa(x + 1e6)[0] == pytest.approx(compute_dfa(x)[0], abs=1e-9)


@pytest.mark.parametrize(
    "signal",
    [
        np.full(500, 0.1),
        np.full(500, 0.1) * np.arange(1, 501) / np.arange(1, 501),  # 0.1 +- 1 ulp
        np.cumsum(np.full(500, 0.1)) / np.arange(1, 501),  # rounding drift only
        3.0 + np.random.default_rng(0).integers(-4, 5, 500) * np.spacing(3.0),
        np.full(300, 1e-300) * (1 + np.random.default_rng(1).integers(0, 2, 300) * 2**-52),
    ],
    ids=["exact", "ulp", "drift", "few-ulps", "tiny"],
)
def test_constant_but_for_rounding_is_rejected(signal):
    with pytest.raises(ValueError, match="constant"):
        compute_dfa(signal)


def test_low_precision_inputs_are_judged_as_the_float64_values_they_are():
    # One near-constant rule, in float64: float16/float32 values are exact in float64,
    # so their spread is data (once a false "constant" for both).
    rng = np.random.default_rng(3)
    half = (rng.random(500) * 65504).astype(np.float16)
    half[0] = 65504
    single = (1 + 1e-6 * rng.standard_normal(500)).astype(np.float32)
    for x in (half, single):
        assert compute_dfa(x)[0] == compute_dfa(x.astype(np.float64))[0]
    assert 0.4 < compute_dfa(single)[0] < 0.7  # quantised white noise stays white


def test_small_but_real_variation_is_kept():
    # 1e-9 relative variation is ~4.5 million ulps: a real signal, not rounding.
    x = 1.0 + 1e-9 * _signals(1000, seed=10)["white"]
    assert compute_dfa(x)[0] == pytest.approx(compute_dfa(x - 1.0)[0], abs=1e-5)


@pytest.mark.parametrize(
    "convert",
    [
        list,
        lambda a: (a * 1000).astype(np.int64),
        lambda a: a.astype(np.float32),
        lambda a: np.require(a, requirements="C").view(),
    ],
    ids=["list", "int", "float32", "view"],
)
def test_input_types(convert):
    x = _signals(300, seed=12)["random_walk"]
    converted = convert(x)
    expected = compute_dfa(np.asarray(converted, dtype=np.float64))[0]
    assert compute_dfa(converted)[0] == expected


def test_read_only_input_is_not_modified():
    x = _signals(300, seed=13)["white"]
    x.flags.writeable = False
    before = x.copy()
    compute_dfa(x)
    np.testing.assert_array_equal(x, before)


def test_return_shapes():
    x = _signals(500)["white"]
    out = compute_dfa(x)
    assert len(out) == 3
    alpha, scales, fluct = out
    assert isinstance(alpha, float)
    assert scales.dtype == np.int64
    assert fluct.dtype == np.float64
    assert scales.shape == fluct.shape
    assert np.all(np.diff(scales) > 0)
    r2 = compute_dfa(x, return_r_squared=True)[3]
    assert isinstance(r2, float)
    assert 0.0 <= r2 <= 1.0


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("signal", "exc", "match"),
    [
        (np.ones((10, 10)), ValueError, r"1D.*\(10, 10\)"),
        (np.float64(3.0), ValueError, r"1D.*\(\)"),
        (np.arange(49.0), ValueError, "too short.*49"),
        (np.array([1.0, 2.0, 3.0]), ValueError, "too short.*3 samples"),
        (np.array([1.0, 2.0, np.nan, 4.0, 5.0] * 20), ValueError, "NaN or Inf.*index 2"),
        (np.array([1.0, 2.0, np.inf, 4.0, 5.0] * 20), ValueError, "NaN or Inf"),
        (np.zeros(100), ValueError, "constant"),
        (np.ones(100) * (1 + 1j), TypeError, "real numbers.*complex"),
        (["a"] * 60, TypeError, "real numbers"),
    ],
)
def test_signal_errors(signal, exc, match):
    with pytest.raises(exc, match=match):
        compute_dfa(signal)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"min_box": 2}, ValueError, r"`min_box` must be an integer >= 3, but got 2"),
        ({"min_box": 0}, ValueError, r"`min_box`.*>= 3.*got 0"),
        ({"min_box": 4.5}, ValueError, r"`min_box` must be an integer.*4\.5"),
        ({"max_box": 20.5}, ValueError, r"`max_box` must be an integer.*20\.5"),
        ({"min_box": "4"}, TypeError, r"`min_box`.*'4'"),
        ({"min_box": True}, TypeError, r"`min_box`.*True"),
        ({"num_scales": 1}, ValueError, r"`num_scales`.*>= 2.*got 1"),
        ({"min_box": 300}, ValueError, "Not enough valid scales"),
    ],
)
def test_argument_errors(kwargs, exc, match):
    x = _signals(200)["white"]
    with pytest.raises(exc, match=match):
        compute_dfa(x, **kwargs)


def test_integral_float_box_size_is_accepted():
    x = _signals(200)["white"]
    assert compute_dfa(x, min_box=4.0)[0] == compute_dfa(x, min_box=4)[0]


def test_zero_fluctuation_at_every_scale_is_constant_error():
    # Constant within every 8-box (and so every 4-box): the profile is linear in
    # each box and F(4) = F(8) = 0, as 0.1.0 reported with the same message.
    x = np.repeat(np.random.default_rng(4).standard_normal(25), 8)
    with pytest.raises(ValueError, match="constant"):
        compute_dfa(x, min_box=4, max_box=8, num_scales=2)


# ----------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(50, 600),
    a=st.floats(1e-200, 1e200).flatmap(lambda v: st.sampled_from([v, -v])),
    b=st.floats(-1e3, 1e3),
)
def test_alpha_invariant_under_affine_maps(seed, n, a, b):
    x = np.random.default_rng(seed).standard_normal(n)
    alpha = compute_dfa(x)[0]
    # b must stay small against a*x, or the shifted signal is rounding noise.
    assert compute_dfa(a * x + b * abs(a))[0] == pytest.approx(alpha, abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(
        st.floats(-1e308, 1e308, allow_nan=False, allow_infinity=False), min_size=50, max_size=300
    )
)
def test_any_finite_input_gives_finite_alpha_or_documented_error(values):
    try:
        alpha, scales, fluct = compute_dfa(values)
    except ValueError as exc:
        message = str(exc)
    else:
        message = ""
        assert np.isfinite(alpha)
        assert scales.size >= 2
        assert np.all(fluct > 0)
    assert message == "" or "constant" in message
