"""Logging, export and plots: each against the real library."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from wcdfa import RollingWeightChangeDFA, WeightChangeDFA


def _monitor(n=260, window=100, stride=20, seed=0, **kw):
    m = WeightChangeDFA(window=window, stride=stride, **kw)
    for v in np.exp(0.3 * np.random.default_rng(seed).standard_normal(n)):
        m.update(float(v))
    return m


def test_metrics_keys_and_values():
    m = WeightChangeDFA(window=100)
    assert m.metrics() == {}
    m.update(0.5)
    assert m.metrics() == {"wcdfa/delta_norm": 0.5}
    m = _monitor()
    out = m.metrics()
    assert out["wcdfa/alpha"] == m.alpha
    assert out["wcdfa/regime"] == m.regime_code()
    assert out["wcdfa/delta_norm"] == m.get_signal()[-1]
    assert out["wcdfa/r_squared"] == m.r_squared
    assert (out["wcdfa/alpha_ci_low"], out["wcdfa/alpha_ci_high"]) == m.alpha_ci
    assert set(m.metrics(prefix="x.")) == {k.replace("wcdfa/", "x.") for k in out}


def test_postfix_and_one_line_str():
    m = WeightChangeDFA(window=100)
    assert m.postfix() == {"α": "0/100 samples"}
    assert str(m) == "wcdfa: not ready (0/100 samples)"
    m = _monitor()
    assert m.postfix() == {"α": f"{m.alpha:.3f}", "regime": m.regime}
    line = str(m)
    assert "\n" not in line
    assert line.startswith(f"wcdfa: α={m.alpha:.3f} [")
    assert m.regime in line
    assert "step 260" in line


def test_tqdm_postfix_renders():
    tqdm = pytest.importorskip("tqdm")
    import io

    m = _monitor()
    out = io.StringIO()
    bar = tqdm.tqdm(total=1, file=out, ncols=120)
    bar.set_postfix(m.postfix())
    bar.close()
    assert f"α={m.alpha:.3f}" in out.getvalue()
    assert f"regime={m.regime}" in out.getvalue()


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@pytest.mark.parametrize("keep_norms", [False, True])
def test_save_writes_per_step_norms_and_alpha_history(tmp_path, suffix, keep_norms):
    m = _monitor(keep_norms=keep_norms)
    path = m.save(tmp_path / f"run{suffix}")
    if suffix == ".csv":
        with path.open() as f:
            rows = list(csv.DictReader(f))
        norm = [float(r["delta_norm"]) for r in rows if r["delta_norm"]]
        alpha_rows = [r for r in rows if r["alpha"]]
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        norm = [r["delta_norm"] for r in rows if r["delta_norm"] is not None]
        alpha_rows = [r for r in rows if r["alpha"] is not None]
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps)
    if keep_norms:
        assert len(norm) == 260
        assert steps[0] == 1
    else:
        np.testing.assert_array_equal(norm, m.get_signal())
        norm_steps = [int(r["step"]) for r in rows if r["delta_norm"] not in ("", None)]
        assert norm_steps == list(range(161, 261))
    assert [int(r["step"]) for r in alpha_rows] == m.history_steps == list(range(100, 261, 20))
    assert [float(r["alpha"]) for r in alpha_rows] == m.history
    assert alpha_rows[-1]["regime"] == m.regime
    assert float(alpha_rows[-1]["alpha_ci_low"]) == m.alpha_ci[0]


def test_save_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"`path` must end in .csv, .jsonl or .ndjson.*run.txt"):
        _monitor().save(tmp_path / "run.txt")


def test_keep_norms_survives_state_dict(tmp_path):
    m = _monitor(keep_norms=True)
    fresh = WeightChangeDFA(window=100, stride=20, keep_norms=True)
    fresh.load_state_dict(m.state_dict())
    original, restored = m.save(tmp_path / "a.csv"), fresh.save(tmp_path / "b.csv")
    assert restored.read_text() == original.read_text()
    assert len(original.read_text().splitlines()) == m.step_count + 1


# ------------------------------------------------------------- tensorboard
def test_log_tensorboard_writes_real_event_files(tmp_path):
    tb = pytest.importorskip("torch.utils.tensorboard")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    m = _monitor()
    writer = tb.SummaryWriter(log_dir=str(tmp_path))
    m.log_tensorboard(writer)  # step defaults to the monitor's step count
    m.update(1.0)
    m.log_tensorboard(writer, step=999)
    writer.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    alpha = acc.Scalars("wcdfa/alpha")
    assert [e.step for e in alpha] == [260, 999]
    assert alpha[0].value == pytest.approx(m.history[-1], rel=1e-6)
    assert acc.Scalars("wcdfa/delta_norm")[1].value == 1.0
    assert {"wcdfa/regime", "wcdfa/r_squared", "wcdfa/alpha_ci_low"} <= set(acc.Tags()["scalars"])
    assert acc.Tags()["tensors"]  # the regime as text


# -------------------------------------------------------------------- wandb
def test_log_wandb_records_all_keys_and_the_plot(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    pytest.importorskip("matplotlib")
    from wandb_reader import history_rows

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    m = _monitor()
    run = wandb.init(project="wcdfa-test", dir=str(tmp_path))
    try:
        m.log_wandb(step=3, plot=True)
    finally:
        run.finish()
        wandb.teardown()  # the service has written everything to the run's file
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (row,) = history_rows(run_dir)
    assert row["wcdfa/alpha"] == m.alpha
    assert row["wcdfa/regime"] == m.regime_code()
    assert row["wcdfa/regime_name"] == m.regime
    assert row["wcdfa/delta_norm"] == m.get_signal()[-1]
    assert row["wcdfa/r_squared"] == m.r_squared
    assert row["wcdfa/alpha_ci_low"] == m.alpha_ci[0]
    assert row["wcdfa/fluctuations/_type"] == "image-file"
    assert (run_dir / "files" / row["wcdfa/fluctuations/path"]).stat().st_size > 5000


# -------------------------------------------------------------------- plots
def test_plot_steps_and_norm_panel(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    m = _monitor(keep_norms=True)
    fig = m.plot(save_path=tmp_path / "a.png")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "α"]
    np.testing.assert_array_equal(line.get_xdata(), m.history_steps)
    np.testing.assert_array_equal(line.get_ydata(), m.history)
    assert fig.axes[1].get_lines()[0].get_ydata().size == 260  # the whole run kept
    assert (tmp_path / "a.png").stat().st_size > 5000


def test_plots_draw_into_a_given_axes():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    m = _monitor()
    assert m.plot(ax=ax1) is fig
    assert m.plot_fluctuations(ax=ax2) is fig
    assert len(fig.axes) == 2
    points, fitted = ax2.get_lines()
    np.testing.assert_array_equal(points.get_xdata(), m.scales)
    np.testing.assert_allclose(fitted.get_ydata(), 10**m.result.intercept * m.scales**m.alpha)
    assert f"α = {m.alpha:.3f}" in fitted.get_label()


def test_plot_fluctuations_before_alpha_is_a_clear_error():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="No fluctuation function yet"):
        WeightChangeDFA(window=50).plot_fluctuations()


def test_rolling_plot_has_epochs_and_window_panel():
    pytest.importorskip("matplotlib")
    rm = RollingWeightChangeDFA(window=60, stride=10)
    for e in range(12):
        for v in np.exp(0.3 * np.random.default_rng(e).standard_normal(10)):
            rm.update(float(v))
        rm.end_epoch()
    fig = rm.plot(show=False)
    assert fig.axes[0].get_xlabel() == "epoch"
    assert fig.axes[1].get_lines()[0].get_ydata().size == 60
    assert math.isfinite(rm.alpha)


# -------------------------------------------------------------- tagged steps
def _tagged(n=400, window=100, stride=20, every=4):
    """Every ``every``-th step tagged "gap" and three times larger: α and α_clean differ.

    Returns the monitor and the untagged values, in order.
    """
    m = WeightChangeDFA(window=window, stride=stride)
    rng = np.random.default_rng(0)
    clean = []
    for k in range(1, n + 1):
        gap = k % every == 0
        value = float(np.exp(0.3 * rng.standard_normal()))
        m.update(value * 3 if gap else value, tag="gap" if gap else None)
        if not gap:
            clean.append(value)
    return m, clean


def test_alpha_clean_is_logged_exported_and_survives_the_state(tmp_path):
    from wcdfa import dfa

    m, clean = _tagged()
    assert m.alpha_clean == pytest.approx(dfa(np.array(clean[-100:]), ci=None).alpha, rel=1e-12)
    assert abs(m.alpha_clean - m.alpha) > 0.05
    assert m.metrics()["wcdfa/alpha_clean"] == m.alpha_clean
    assert m.tagged_steps == {"gap": list(range(4, 401, 4))}
    assert _monitor().metrics().get("wcdfa/alpha_clean") is None  # untagged: not logged
    assert _monitor().alpha_clean == _monitor().alpha
    with (m.save(tmp_path / "m.csv")).open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["tag"] == "gap"] == list(range(4, 401, 4))
    assert (
        float(next(r for r in reversed(rows) if r["alpha_clean"])["alpha_clean"]) == m.alpha_clean
    )
    # resume: restored and continued equals uninterrupted
    restored = WeightChangeDFA(window=100, stride=20)
    restored.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert restored.alpha_clean == m.alpha_clean
    for monitor in (m, restored):
        monitor.mark("gap")
        for v in np.linspace(1, 2, 60):
            monitor.update(float(v))
    assert restored.alpha_clean_history == m.alpha_clean_history
    assert restored.tagged_steps == m.tagged_steps
    bad = m.state_dict() | {"tagged_steps": {"gap": [10**9]}}
    with pytest.raises(ValueError, match="'tagged_steps' must be a list of steps"):
        WeightChangeDFA(window=100, stride=20).load_state_dict(bad)


def test_alpha_clean_reaches_tensorboard_and_wandb(tmp_path, monkeypatch):
    tb = pytest.importorskip("torch.utils.tensorboard")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    wandb = pytest.importorskip("wandb")
    from wandb_reader import history_rows

    m, _ = _tagged()
    writer = tb.SummaryWriter(log_dir=str(tmp_path / "tb"))
    m.log_tensorboard(writer)
    writer.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert acc.Scalars("wcdfa/alpha_clean")[0].value == pytest.approx(m.alpha_clean, rel=1e-6)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="wcdfa-test", dir=str(tmp_path))
    try:
        m.log_wandb(step=1)
    finally:
        run.finish()
        wandb.teardown()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (row,) = history_rows(run_dir)
    assert row["wcdfa/alpha_clean"] == m.alpha_clean
