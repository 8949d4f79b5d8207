"""Box layouts and explicit scales: a direct per-box oracle and the peers' own numbers."""

from __future__ import annotations

import json
import warnings

import fathon
import MFDFA
import nolds
import numpy as np
import pytest
from fathon import fathonUtils

from wcdfa import WeightChangeDFA, compute_dfa, dfa
from wcdfa.cli import main as cli_main
from wcdfa.layouts import LAYOUTS
from wcdfa.synthetic import fgn

SCALES = [5, 7, 11, 16, 23, 40, 97, 301]


def starts(n, s, layout):
    """Where each layout's boxes start, written out plainly from docs/validation.md."""
    if layout == "both":
        return [k * s for k in range(n // s)] + [n - (k + 1) * s for k in range(n // s)]
    if layout == "forward":
        return [k * s for k in range(n // s)]
    if layout == "overlap":
        return list(range(0, n - s, s // 2))
    return list(range(n - s + 1))


def direct_fluctuations(x, scales, order, aggregate, layout):
    """One np.polyfit per box: the slow oracle."""
    n = len(x)
    y = np.cumsum(x - x.mean())
    out = []
    for s in scales:
        t = np.arange(s)
        var = []
        for a in starts(n, s, layout):
            box = y[a : a + s]
            resid = box - np.polyval(np.polyfit(t, box, order), t)
            var.append(np.mean(resid**2))
        var = np.array(var)
        out.append(np.mean(np.sqrt(var)) if aggregate == "mean" else np.sqrt(np.mean(var)))
    return np.array(out)


def signal(n, seed=0):
    """A random walk plus noise: both local noise and large excursions of the profile."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal(n)) + 3.0 * rng.standard_normal(n)


# n = 60 lays every box out at once (the gather plan); 700 and 3000 go scale by scale
# (and, for "sliding", through the segment-wise running sums).
@pytest.mark.parametrize("n", [60, 700, 3000])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("aggregate", ["mean", "rms"])
def test_every_layout_matches_the_direct_per_box_oracle(n, layout, order, aggregate):
    x = signal(n, seed=order)
    scales = [s for s in SCALES if order + 2 <= s < n // 2]
    result = dfa(x, scales=scales, boxes=layout, order=order, aggregate=aggregate, ci=None)
    expected = direct_fluctuations(x, result.scales, order, aggregate, layout)
    np.testing.assert_array_equal(result.scales, scales)
    np.testing.assert_allclose(result.fluctuations, expected, rtol=1e-9)


def test_default_layout_keeps_the_0_1_0_numbers():
    x = signal(1000)
    alpha, scales, fluct = compute_dfa(x)
    result = dfa(x, boxes="both", ci=None)
    assert result.alpha == alpha
    np.testing.assert_array_equal(result.fluctuations, fluct)
    explicit = dfa(x, scales=scales, ci=None)
    np.testing.assert_allclose(explicit.fluctuations, fluct, rtol=1e-12)


# ------------------------------------------------------------------ the peers
def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("order", [1, 2])
def test_nolds_is_reproduced_with_rms_and_its_layout(overlap, order):
    x = signal(2000, seed=5)
    scales = np.array([6, 9, 14, 22, 35, 56, 90, 144, 230, 370])
    alpha, (_, log_f, _) = quiet(
        nolds.dfa, x, nvals=scales, overlap=overlap, order=order, fit_exp="poly", debug_data=True
    )
    ours = dfa(
        x,
        scales=scales,
        boxes="overlap" if overlap else "forward",
        order=order,
        aggregate="rms",
        ci=None,
    )
    np.testing.assert_allclose(ours.fluctuations, np.exp(log_f), rtol=1e-9)
    assert ours.alpha == pytest.approx(alpha, abs=1e-9)


@pytest.mark.parametrize("rev_seg", [True, False])
@pytest.mark.parametrize("order", [1, 2])
def test_fathon_is_reproduced_with_rms(rev_seg, order):
    x = signal(2000, seed=6)
    scales = np.array([6, 9, 14, 22, 35, 56, 90, 144, 230, 370], dtype=np.int64)
    sizes, fluct = fathon.DFA(fathonUtils.toAggregated(x)).computeFlucVec(
        scales, revSeg=rev_seg, polOrd=order
    )
    ours = dfa(
        x,
        scales=scales,
        boxes="both" if rev_seg else "forward",
        order=order,
        aggregate="rms",
        ci=None,
    )
    np.testing.assert_array_equal(sizes, ours.scales)
    np.testing.assert_allclose(ours.fluctuations, fluct, rtol=1e-9)
    slope = np.polyfit(np.log10(sizes), np.log10(fluct), 1)[0]
    assert ours.alpha == pytest.approx(slope, abs=1e-9)


@pytest.mark.parametrize("order", [1, 2])
def test_mfdfa_is_reproduced_with_rms_and_both(order):
    x = signal(2000, seed=7)
    scales = np.array([6, 9, 14, 22, 35, 56, 90, 144, 230, 370])
    lag, fluct = MFDFA.MFDFA(x, lag=scales, q=2, order=order)
    ours = dfa(x, scales=scales, boxes="both", order=order, aggregate="rms", ci=None)
    np.testing.assert_allclose(ours.fluctuations, fluct[:, 0], rtol=1e-9)
    slope = np.polyfit(np.log10(lag), np.log10(fluct[:, 0]), 1)[0]
    assert ours.alpha == pytest.approx(slope, abs=1e-9)


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"scales": [8, 16], "min_box": 4}, ValueError, "exclude each other"),
        ({"scales": [8, 16], "num_scales": 10}, ValueError, "exclude each other"),
        ({"scales": [8, 8, 16]}, ValueError, "distinct"),
        ({"scales": [16]}, ValueError, "at least 2"),
        ({"scales": [2, 16]}, ValueError, ">= 3"),
        ({"scales": [8, 2.5]}, ValueError, "2.5"),
        ({"scales": [8, True]}, TypeError, "True"),
        ({"scales": "8,16"}, TypeError, "'8,16'"),
        ({"scales": [8, 500]}, ValueError, "smaller than the signal's 500 samples, but got 500"),
        ({"scales": [3, 16], "order": 2}, ValueError, ">= 4"),
        ({"boxes": "backward"}, ValueError, "'backward'"),
    ],
)
def test_bad_box_arguments_name_the_argument_rule_and_value(kwargs, error, words):
    with pytest.raises(error, match=r"`(scales|boxes)`") as info:
        dfa(signal(500), **kwargs)
    assert words in str(info.value)


def test_explicit_scales_are_sorted_and_reported():
    result = dfa(signal(500), scales=np.array([64, 8, 16, 32]), boxes="forward", ci=None)
    np.testing.assert_array_equal(result.scales, [8, 16, 32, 64])
    assert result.box_sizes == (8, 16, 32, 64)
    assert (result.min_box, result.max_box, result.num_scales) == (8, 64, 4)
    assert result.as_dict()["box_sizes"] == [8, 16, 32, 64]


# ---------------------------------------------------------- monitor and CLI
def test_the_monitor_uses_the_same_box_options_and_keeps_them_in_its_state():
    x = signal(400, seed=9)
    monitor = WeightChangeDFA(window=300, stride=100, scales=[8, 16, 32, 64], boxes="overlap")
    for value in np.abs(x):
        monitor.update(float(value))
    window = np.abs(x)[-300:]
    expected = dfa(window, scales=[8, 16, 32, 64], boxes="overlap", ci=None)
    assert monitor.alpha == pytest.approx(expected.alpha, rel=1e-12)
    state = monitor.state_dict()
    assert state["settings"]["scales"] == [8, 16, 32, 64]
    assert state["settings"]["boxes"] == "overlap"
    twin = WeightChangeDFA(window=300, stride=100, scales=[8, 16, 32, 64], boxes="overlap")
    twin.load_state_dict(state)
    assert twin.alpha == monitor.alpha
    other = WeightChangeDFA(window=300, stride=100)
    with pytest.raises(ValueError, match="other settings"):
        other.load_state_dict(state)


def test_the_monitor_rejects_scales_beyond_its_window():
    with pytest.raises(ValueError, match="smaller than `window` \\(100\\), but got 100"):
        WeightChangeDFA(window=100, scales=[8, 100])


def test_cli_takes_scales_and_boxes(tmp_path, capsys):
    x = np.abs(signal(800, seed=2))
    path = tmp_path / "norms.npy"
    np.save(path, x)
    code = cli_main(
        ["analyze", str(path), "--scales", "8", "16", "32", "64", "--boxes", "sliding", "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    expected = dfa(x, scales=[8, 16, 32, 64], boxes="sliding")
    assert report["alpha"] == pytest.approx(expected.alpha, rel=1e-12)
    assert report["ci_low"] == pytest.approx(expected.ci_low, rel=1e-12)
    with pytest.raises(SystemExit) as info:  # argparse's own exit for a bad choice
        cli_main(["analyze", str(path), "--boxes", "sideways"])
    assert info.value.code == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err


# ------------------------------------------------------------------ intervals
def test_other_layouts_get_a_bootstrap_interval_with_honest_coverage():
    # 150 fresh fGn H = 0.7 series, n = 500, boxes from the start only (no shipped
    # belt): the standard error of a coverage near 0.95 is 0.018 here, so [0.88, 0.99]
    # fails only if the bootstrap is really off.
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(150):
        result = dfa(fgn(500, 0.7, rng), boxes="forward")
        assert result.ci_low <= result.alpha <= result.ci_high
        hits += result.ci_low <= 0.7 <= result.ci_high
    assert 0.88 <= hits / 150 <= 0.99


def test_sliding_layout_is_exact_on_doubly_integrated_noise():
    # Integer-valued doubly integrated noise with sum exactly 0: its float64 profile is
    # exact (|y| < 2^53), so any error is the kernel's. The reference forms every box's
    # residual in 80-bit long double. Small boxes (explicit residuals) and large ones
    # (segment-wise running sums) both hold F(s) to 1e-10 (measured: 1e-12 at most),
    # on a profile so smooth that a box's variance about its mean exceeds its
    # residual variance ~2·10^7-fold at s = 4 (the previous kernel: 1.01e-10).
    rng = np.random.default_rng(4)
    x = np.cumsum(np.cumsum(rng.integers(-1, 2, 8000))).astype(np.float64)
    x -= np.round(x.mean())
    x[-1] -= x.sum()
    y = np.cumsum(x).astype(np.longdouble)
    scales = [4, 6, 12, 13, 40, 300]
    for aggregate in ("mean", "rms"):
        result = dfa(x, scales=scales, boxes="sliding", aggregate=aggregate, ci=None)
        expected = []
        for s in scales:
            boxes = np.lib.stride_tricks.sliding_window_view(y, s)
            t = np.arange(s, dtype=np.longdouble) - (s - 1) / 2
            centred = boxes - boxes.mean(axis=-1, keepdims=True)
            slope = (centred * t).sum(axis=-1, keepdims=True) / (t * t).sum()
            var = ((centred - slope * t) ** 2).mean(axis=-1)
            f = np.sqrt(var).mean() if aggregate == "mean" else np.sqrt(var.mean())
            expected.append(float(f))
        np.testing.assert_allclose(result.fluctuations, expected, rtol=1e-10)
