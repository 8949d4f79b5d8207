"""What a newcomer sees: help screens, example output, plots and texts (issue 19)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from wcdfa import RollingWeightChangeDFA, WeightChangeDFA

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _python(*args, timeout=300):
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_examples_help_has_a_description_and_defaults(script):
    modules = {
        "hf_trainer": "transformers",
        "lightning_callback": "lightning",
        "jax_optax": "optax",
        "logging_sinks": "wandb",
        "grokking": "matplotlib",
    }
    if script.stem in modules:
        pytest.importorskip(modules[script.stem])
    out = _python(str(script), "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    first_doc_line = script.read_text().split('"""')[1].splitlines()[0]
    assert " ".join(first_doc_line.split()[:4]) in " ".join(out.stdout.split())
    assert "(default:" in out.stdout


def test_cli_help_is_plain_text():
    for args in (["--help"], ["analyze", "--help"]):
        out = _python("-m", "wcdfa.cli", *args)
        assert out.returncode == 0
        assert "``" not in out.stdout
        assert "%%" not in out.stdout
    assert "(default:" in _python("-m", "wcdfa.cli", "analyze", "--help").stdout


def test_basic_usage_prints_each_number_once(tmp_path):
    pytest.importorskip("torch")
    out = _python(str(ROOT / "examples" / "basic_usage.py"), "--steps", "700")
    assert out.returncode == 0, out.stderr[-2000:]
    *_, final, sentence = out.stdout.strip().splitlines()
    assert final.startswith("final: wcdfa: α=")
    assert final.count("R²") == 1
    assert sentence.startswith("α = ")
    assert "regime" in sentence


def test_rolling_plot_has_whole_epochs_on_its_axis(tmp_path):
    pytest.importorskip("matplotlib")
    rm = RollingWeightChangeDFA(window=50, stride=10)
    rng = np.random.default_rng(0)
    for _ in range(5):
        for v in np.abs(rng.standard_normal(20)) + 0.5:
            rm.update(v)
        rm.end_epoch()
    fig = rm.plot(save_path=tmp_path / "new" / "folder" / "a.png", show=False)
    ticks = fig.axes[0].get_xticks()
    assert np.all(ticks == np.round(ticks))
    assert (tmp_path / "new" / "folder" / "a.png").stat().st_size > 5000


def test_postfix_before_the_window_fills_and_on_a_constant_window():
    m = WeightChangeDFA(window=50)
    for _ in range(10):
        m.update(0.5)
    assert m.postfix() == {"α": "10/50 samples"}
    for _ in range(39):
        m.update(0.5)
    with pytest.warns(UserWarning, match="near-constant"):
        m.update(0.5)
    assert m.postfix() == {"α": "constant window (50 samples)"}
    assert "constant window" in str(m)


def test_code_is_formatted_and_linted():
    ruff = pytest.importorskip("ruff")
    binary = ruff.find_ruff_bin()
    paths = ["src", "tests", "benchmarks", "examples"]
    fmt = subprocess.run(
        [binary, "format", "--check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout[-2000:]
    lint = subprocess.run(
        [binary, "check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout[-2000:]
