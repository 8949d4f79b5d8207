from __future__ import annotations

import warnings

import numpy as np
import pytest

from wcdfa import RollingWeightChangeDFA, WeightChangeDFA, compute_dfa, dfa
from wcdfa.errors import (
    DivergenceError,
    DivergenceWarning,
    NearConstantWarning,
    NotANormWarning,
)
from wcdfa.regime import classify


def _feed(monitor, values):
    for v in values:
        monitor.update(float(v))
    return monitor


# ------------------------------------------------------------ construction
def test_defaults():
    m = WeightChangeDFA()
    assert (m.window, m.stride, m.thresholds) == (500, 100, (1.2, 0.8))
    assert WeightChangeDFA(window=50).stride == 10
    assert WeightChangeDFA(window=52, stride=3).stride == 3


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"window": 10}, ValueError, r"`window` must be an integer >= 50, but got 10"),
        ({"window": 49}, ValueError, ">="),
        ({"window": 100.5}, ValueError, r"`window`.*100\.5"),
        ({"window": "500"}, TypeError, r"`window`.*'500'"),
        ({"stride": 0}, ValueError, r"`stride` must be an integer >= 1, but got 0"),
        ({"stride": -5}, ValueError, r"`stride`.*-5"),
        ({"thresholds": (0.8, 1.2)}, ValueError, r"ordered > disordered.*\(0\.8, 1\.2\)"),
        ({"thresholds": (1.0, 1.0)}, ValueError, "ordered > disordered"),
        ({"thresholds": (1.2,)}, ValueError, r"pair.*\(1\.2,\)"),
        ({"thresholds": 1.2}, ValueError, "pair"),
        ({"thresholds": (float("nan"), 0.8)}, ValueError, r"thresholds\[0\].*finite"),
        ({"thresholds": ("a", 0.8)}, TypeError, r"thresholds\[0\]"),
        ({"snapshot": "gpu"}, ValueError, r"`snapshot` must be one of.*'gpu'"),
        ({"on_nonfinite": "skip"}, ValueError, r"`on_nonfinite` must be one of.*'skip'"),
    ],
)
def test_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        WeightChangeDFA(**kwargs)


# ------------------------------------------------------------------ update
@pytest.mark.parametrize(
    "value",
    [
        0.5,
        3,
        np.float32(0.5),
        np.float64(0.5),
        np.int64(2),
        np.array([0.5]),
        np.array(0.5),
        np.array([[0.5]]),
    ],
    ids=["float", "int", "f32", "f64", "i64", "arr1", "arr0d", "arr11"],
)
def test_accepted_numbers(value):
    m = WeightChangeDFA(window=50)
    assert m.update(value) is m
    assert m.get_signal().tolist() == [float(np.asarray(value).reshape(()))]


@pytest.mark.parametrize(
    "value",
    [
        "0.5",
        None,
        [0.5],
        (0.5,),
        True,
        np.bool_(True),
        np.array([0.5, 0.6]),
        1 + 2j,
        np.array(["a"]),
    ],
    ids=["str", "none", "list", "tuple", "bool", "npbool", "arr2", "complex", "strarr"],
)
def test_rejected_types(value):
    m = WeightChangeDFA(window=50)
    with pytest.raises(TypeError, match="model_or_norm"):
        m.update(value)
    assert m.n_samples == 0


def test_negative_values_are_recorded_as_given_with_one_warning():
    # The 0.1.0 contract: any finite real number is a sample (its suite feeds randn).
    m = WeightChangeDFA(window=50)
    m.update(1.0)
    with pytest.warns(NotANormWarning, match=r"negative value \(-0\.5\).*not a weight-update"):
        m.update(-0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per monitor
        m.update(-2)
        m.update(np.float32(-1.5))
    assert m.get_signal().tolist() == [1.0, -0.5, -2.0, -1.5]
    assert m.step_count == 4


def test_update_from_norm_equals_update():
    rng = np.random.default_rng(1)
    values = np.abs(rng.standard_normal(120))
    a, b = WeightChangeDFA(window=50), WeightChangeDFA(window=50)
    for v in values:
        a.update(v)
        assert b.update_from_norm(v) is b
    assert a.history == b.history


def test_recompute_schedule_and_exact_alpha():
    rng = np.random.default_rng(2)
    values = np.abs(rng.standard_normal(200)) + 0.1
    m = WeightChangeDFA(window=50, stride=10)
    expected = []
    for i, v in enumerate(values, start=1):
        m.update(v)
        if i >= 50 and i % 10 == 0:
            expected.append(compute_dfa(values[i - 50 : i])[0])
            assert m.alpha == expected[-1]
            r2 = compute_dfa(values[i - 50 : i], return_r_squared=True)[3]
            assert m.r_squared == r2
    assert m.history == expected
    assert len(expected) == 16  # steps 50, 60, ..., 200


def test_not_ready_before_window_is_full():
    m = _feed(WeightChangeDFA(window=100, stride=10), np.arange(1, 100))
    assert not m.ready
    assert m.alpha is None
    assert m.regime is None
    assert m.r_squared is None
    assert m.n_samples == 99
    m.update(100.0)
    assert m.ready


def test_ring_buffer_keeps_the_newest_window_oldest_first():
    m = _feed(WeightChangeDFA(window=50, stride=7), np.arange(1, 176))
    np.testing.assert_array_equal(m.get_signal(), np.arange(126, 176, dtype=float))
    assert m.n_samples == 50
    assert m.step_count == 175
    sig = m.get_signal()
    sig[:] = 0  # a copy: the monitor's window is untouched
    assert m.get_signal()[0] == 126.0


@pytest.mark.parametrize(
    ("alpha", "regime"),
    [
        (1.5, "ordered"),
        (1.2000001, "ordered"),
        (1.2, "critical"),
        (1.0, "critical"),
        (0.8, "critical"),
        (0.7999, "disordered"),
        (0.3, "disordered"),
    ],
)
def test_regime_boundaries(alpha, regime):
    assert WeightChangeDFA.classify_alpha(alpha) == regime
    assert classify(alpha) == regime


def test_custom_thresholds():
    rng = np.random.default_rng(0)
    white = np.abs(rng.standard_normal(100)) + 1.0  # α ≈ 0.5
    for thresholds, expected in [
        ((1.2, 0.8), "disordered"),
        ((0.6, 0.3), "critical"),
        ((0.4, 0.3), "ordered"),
    ]:
        m = WeightChangeDFA(window=100, thresholds=thresholds)
        for v in white:
            m.update(v)
        assert 0.4 < m.alpha < 0.6
        assert m.regime == expected == classify(m.alpha, thresholds)


def test_near_constant_window_warns_and_keeps_last_alpha():
    rng = np.random.default_rng(3)
    m = _feed(WeightChangeDFA(window=50, stride=50), np.abs(rng.standard_normal(50)))
    alpha = m.alpha
    assert alpha is not None
    with pytest.warns(NearConstantWarning, match="near-constant"):
        _feed(m, np.full(50, 0.3))
    assert m.alpha == alpha
    assert m.history == [alpha]


def test_nonfinite_norm_is_recorded_reported_and_left_out_of_alpha():
    rng = np.random.default_rng(4)
    values = np.abs(rng.standard_normal(80)) + 0.1
    m = WeightChangeDFA(window=50, stride=10, keep_norms=True)
    _feed(m, values[:50])
    with pytest.warns(DivergenceWarning, match="step 51"):
        _feed(m, [float("nan")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        _feed(m, [float("inf"), *values[50:58]])
    assert m.diverged
    assert m.nonfinite_steps == [51, 52]
    assert m.step_count == 60
    np.testing.assert_array_equal(m.get_signal(), values[8:58])  # finite ones only
    assert m.alpha == compute_dfa(values[8:58])[0]  # recomputed at step 60, unharmed
    steps, values = m.get_norm_record()
    assert np.isnan(values[steps == 51]).all()
    assert np.isinf(values[steps == 52]).all()


def test_nonfinite_raise_keeps_everything_recorded():
    m = WeightChangeDFA(window=50, on_nonfinite="raise")
    m.update(0.5)
    with pytest.raises(DivergenceError, match="step 2"):
        m.update(float("nan"))
    assert m.step_count == 2
    assert m.nonfinite_steps == [2]
    assert m.get_signal().tolist() == [0.5]
    m.update(0.7)  # the monitor goes on
    assert m.get_signal().tolist() == [0.5, 0.7]


def test_nonfinite_ignore_is_silent():
    m = WeightChangeDFA(window=50, on_nonfinite="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _feed(m, [0.5, float("nan"), 0.6])
    assert m.nonfinite_steps == [2]
    assert m.diverged


def test_reset():
    m = _feed(WeightChangeDFA(window=50), np.abs(np.random.default_rng(5).standard_normal(60)))
    assert m.ready
    m.reset()
    assert (m.ready, m.alpha, m.n_samples, m.step_count, m.history) == (False, None, 0, 0, [])
    assert m.get_signal().size == 0


def test_repr():
    m = WeightChangeDFA(window=50)
    assert repr(m) == "WeightChangeDFA(not ready, samples=0/50)"
    _feed(m, np.abs(np.random.default_rng(6).standard_normal(50)))
    r = repr(m)
    assert "α=" in r
    assert "regime=" in r
    assert r.startswith("WeightChangeDFA(α=")
    assert "samples=50/50" in r


def test_history_is_a_copy():
    m = _feed(WeightChangeDFA(window=50), np.abs(np.random.default_rng(7).standard_normal(60)))
    m.history.append(99.0)
    assert 99.0 not in m.history


# ----------------------------------------------------------------- rolling
def _rolling(epochs=10, per_epoch=10, seed=8):
    rng = np.random.default_rng(seed)
    rm = RollingWeightChangeDFA(window=50)
    for e in range(epochs):
        _feed(rm, np.abs(rng.standard_normal(per_epoch)) + 0.01)
        rm.end_epoch(e)
    return rm


def test_end_epoch_records_alpha_or_nan():
    rm = _rolling()
    epochs, alphas = rm.epoch_history
    np.testing.assert_array_equal(epochs, np.arange(10))
    assert np.isnan(alphas[:4]).all()  # the window fills at sample 50
    assert np.isfinite(alphas[4:]).all()
    assert alphas[-1] == rm.alpha


def test_end_epoch_auto_increments_from_zero_and_after_explicit():
    rm = RollingWeightChangeDFA(window=50)
    for _ in range(3):
        rm.end_epoch()
    rm.end_epoch(10)
    rm.end_epoch()
    np.testing.assert_array_equal(rm.epoch_history[0], [0, 1, 2, 10, 11])


def test_summary():
    rm = _rolling(epochs=30)
    s = rm.summary()
    assert set(s) == {
        "total_epochs",
        "current_alpha",
        "current_regime",
        "mean_alpha",
        "min_alpha",
        "max_alpha",
        "epochs_ordered",
        "epochs_critical",
        "epochs_disordered",
        "current_ci_low",
        "current_ci_high",
        "method",
    }
    assert s["method"] is None  # floats only: no parameters measured
    assert (s["current_ci_low"], s["current_ci_high"]) == rm.alpha_ci
    # a window of 50: a low α's lower bound can lie below the calibrated range (NaN)
    assert not s["current_ci_low"] >= s["current_alpha"]
    assert s["current_alpha"] < s["current_ci_high"]
    _, alphas = rm.epoch_history
    finite = alphas[np.isfinite(alphas)]
    assert s["total_epochs"] == 30
    assert s["epochs_ordered"] + s["epochs_critical"] + s["epochs_disordered"] == finite.size
    assert s["epochs_ordered"] == int(np.sum(finite > 1.2))
    assert s["epochs_disordered"] == int(np.sum(finite < 0.8))
    assert s["mean_alpha"] == pytest.approx(finite.mean())
    assert (s["min_alpha"], s["max_alpha"]) == (finite.min(), finite.max())
    assert (s["current_alpha"], s["current_regime"]) == (rm.alpha, rm.regime)


def test_summary_before_any_alpha():
    rm = RollingWeightChangeDFA(window=50)
    rm.end_epoch()
    s = rm.summary()
    assert s["total_epochs"] == 1
    assert s["mean_alpha"] is None
    assert s["epochs_critical"] == 0


def test_rolling_reset_clears_epochs():
    rm = _rolling()
    rm.reset()
    assert rm.epoch_history[0].size == 0


def test_plot_returns_figure_and_saves(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    rm = _rolling(epochs=20)
    out = tmp_path / "alpha.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # show=True must not warn or block on Agg
        fig = rm.plot(title="run 7", save_path=out, show=True)
    assert isinstance(fig, Figure)
    assert out.stat().st_size > 1000
    ax = fig.axes[0]
    assert ax.get_title() == "run 7"
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "α"]
    _, alphas = rm.epoch_history
    np.testing.assert_array_equal(line.get_ydata(), alphas[np.isfinite(alphas)])
    ys = sorted({ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_label() != "α"})
    assert ys == [0.8, 1.2]


def test_log_wandb_without_wandb_warns(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` fail
    rm = _rolling()
    with pytest.warns(UserWarning, match=r"pip install \"wcdfa\[wandb\]\""):
        rm.log_wandb(step=3)


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    return wandb


def test_log_wandb_without_active_run_warns(wandb_offline):
    assert wandb_offline.run is None
    with pytest.warns(UserWarning, match=r"wandb\.init\(\)"):
        _rolling().log_wandb()


def test_log_wandb_records_alpha_and_regime_in_a_real_offline_run(wandb_offline, tmp_path):
    from wandb_reader import history_rows

    rm = _rolling(epochs=10)
    fresh = RollingWeightChangeDFA(window=50)
    run = wandb_offline.init(project="wcdfa-test", dir=str(tmp_path))
    try:
        fresh.log_wandb(step=1)  # no alpha yet: nothing logged
        rm.log_wandb(step=7)
    finally:
        run.finish()
        wandb_offline.teardown()  # the service has written everything to the run's file
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    rows = history_rows(run_dir)
    assert len(rows) == 1
    assert rows[0]["_step"] == 7
    assert rows[0]["wcdfa/alpha"] == rm.alpha
    assert rows[0]["wcdfa/regime"] == {"ordered": 2, "critical": 1, "disordered": 0}[rm.regime]


def test_a_million_updates_keep_memory_bounded():
    import tracemalloc

    rng = np.random.default_rng(9)
    values = (np.abs(rng.standard_normal(1_000_000)) + 0.1).tolist()
    m = WeightChangeDFA(window=500, stride=5000)
    for v in values[:100_000]:
        m.update(v)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for v in values[100_000:]:
        m.update(v)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert m.step_count == 1_000_000
    assert len(m.history) == 200  # one α per 5000 updates
    # 180 more alphas and their steps at 8 bytes each; everything else is fixed-size
    # (the ring buffer is allocated once). 64 KiB covers interpreter noise.
    assert grown < 180 * 16 + 64 * 1024


def test_settings_are_declared_once_frozen_and_saved_with_the_box_settings():
    import dataclasses

    rng = np.random.default_rng(7)
    values = np.abs(rng.standard_normal(200)) + 0.5
    m = WeightChangeDFA(window=200, min_box=8, num_scales=10, order=2)
    for v in values:
        m.update(v)
    expected = dfa(values, min_box=8, num_scales=10, order=2)
    assert m.alpha == expected.alpha
    assert m.alpha_ci == (expected.ci_low, expected.ci_high)  # the same box settings
    assert (m.window, m.stride, m.order, m.min_box) == (200, 40, 2, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.settings.window = 100
    state = m.state_dict()
    assert state["settings"]["min_box"] == 8
    assert state["settings"] == m.settings.as_state()
    other = WeightChangeDFA(window=200, min_box=6, num_scales=10, order=2)
    with pytest.raises(ValueError, match=r"other settings.*'min_box': \(8, 6\)"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match=r"`min_box` must be an integer >= 4.*3"):
        WeightChangeDFA(min_box=3, order=2)
