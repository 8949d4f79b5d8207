from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from wcdfa import RollingWeightChangeDFA, WeightChangeDFA


def _feed(monitor, n, seed=0):
    for v in np.abs(np.random.default_rng(seed).standard_normal(n)) + 0.1:
        monitor.update(float(v))
    return monitor


def test_state_dict_round_trip_is_plain_python_and_exact():
    m = _feed(RollingWeightChangeDFA(window=60, stride=15), 130)
    for _ in range(3):
        m.end_epoch()
    state = m.state_dict()
    json.dumps(state)  # plain Python values only: safe for any checkpoint format
    fresh = RollingWeightChangeDFA(window=60, stride=15)
    fresh.load_state_dict(state)
    assert fresh.history == m.history
    assert fresh.alpha == m.alpha
    assert fresh.step_count == m.step_count
    np.testing.assert_array_equal(fresh.get_signal(), m.get_signal())
    np.testing.assert_array_equal(fresh.epoch_history[0], m.epoch_history[0])
    np.testing.assert_array_equal(fresh.epoch_history[1], m.epoch_history[1])
    assert fresh.result.alpha == m.result.alpha
    np.testing.assert_array_equal(fresh.alpha_ci, m.alpha_ci)  # a NaN bound equals NaN
    # both go on identically
    _feed(m, 70, seed=1)
    _feed(fresh, 70, seed=1)
    assert fresh.history == m.history


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.pop("signal"), "not a wcdfa monitor state_dict: field 'signal' is missing"),
        (lambda s: s.update(format="other/9"), "format 'other/9'"),
        (lambda s: s["settings"].update(window=70), r"other settings.*'window': \(70, 60\)"),
        (lambda s: s["settings"].update(stride=5), r"'stride': \(5, 15\)"),
        (lambda s: s.update(signal=[1.0] * 61), "'signal' must be at most .*61 samples"),
        (lambda s: s.update(step_count="x"), "'step_count' must be an integer.*'x'"),
        (lambda s: s.pop("epochs"), "not a RollingWeightChangeDFA state_dict"),
        (lambda s: s.update(epochs=[1.5], epoch_alphas=[None]), "'epochs' must be a list of int"),
    ],
)
def test_corrupt_or_foreign_state_is_a_clear_error(mutate, match):
    m = _feed(RollingWeightChangeDFA(window=60, stride=15), 80)
    state = m.state_dict()
    mutate(state)
    fresh = RollingWeightChangeDFA(window=60, stride=15)
    with pytest.raises(ValueError, match=match):
        fresh.load_state_dict(state)


def test_plain_monitor_state_loads_into_plain_monitor():
    m = _feed(WeightChangeDFA(window=50), 75)
    fresh = WeightChangeDFA(window=50)
    fresh.load_state_dict(m.state_dict())
    assert fresh.history == m.history
    with pytest.raises(ValueError, match="not a RollingWeightChangeDFA"):
        RollingWeightChangeDFA(window=50).load_state_dict(m.state_dict())


def test_resume_in_a_fresh_process_gives_the_same_alpha_history(tmp_path):
    pytest.importorskip("torch")
    job = str(ROOT / "tests" / "resume_job.py")

    def run(*args):
        subprocess.run([sys.executable, job, *map(str, args)], check=True, cwd=ROOT, timeout=300)

    run("full", tmp_path / "full.json")
    run("first", tmp_path)
    run("second", tmp_path, tmp_path / "resumed.json")
    full = json.loads((tmp_path / "full.json").read_text())
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert len(full["history"]) == 46  # steps 100, 120, ..., 1000
    assert resumed == full  # bit for bit: history, window, epochs, step count
