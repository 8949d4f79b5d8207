from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from wcdfa import WeightChangeDFA, dfa
from wcdfa.cli import main


@pytest.fixture
def series():
    return np.exp(0.3 * np.random.default_rng(0).standard_normal(800))


def _write(tmp_path, series, fmt):
    if fmt == "npy":
        path = tmp_path / "s.npy"
        np.save(path, series)
    elif fmt == "txt":
        path = tmp_path / "s.txt"
        path.write_text("\n".join(map(repr, series.tolist())))
    elif fmt == "csv":
        path = tmp_path / "s.csv"
        path.write_text(
            "step,loss,delta_norm\n"
            + "".join(f"{i},{i * 0.1},{v!r}\n" for i, v in enumerate(series.tolist()))
        )
    else:
        path = tmp_path / "s.jsonl"
        path.write_text(
            "".join(
                json.dumps({"step": i, "delta_norm": v}) + "\n"
                for i, v in enumerate(series.tolist())
            )
        )
    return path


@pytest.mark.parametrize("fmt", ["npy", "txt", "csv", "jsonl"])
def test_analyze_reads_every_format(tmp_path, series, fmt, capsys):
    assert main(["analyze", str(_write(tmp_path, series, fmt)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = dfa(series)
    assert report["n"] == 800
    assert report["alpha"] == expected.alpha
    assert report["r_squared"] == expected.r_squared
    assert (report["ci_low"], report["ci_high"]) == (expected.ci_low, expected.ci_high)
    assert report["regime"] == WeightChangeDFA.classify_alpha(expected.alpha)


def test_analyze_text_output_and_column(tmp_path, series, capsys):
    path = _write(tmp_path, series, "csv")
    assert main(["analyze", str(path), "--column", "loss"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("n=800 column=loss\nalpha")
    assert "95% CI [" in out
    assert "regime" in out


def test_analyze_with_window_runs_the_monitor(tmp_path, series, capsys):
    path = _write(tmp_path, series, "npy")
    assert main(["analyze", str(path), "--window", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    m = WeightChangeDFA(window=200)
    for v in series:
        m.update(float(v))
    assert report["alpha"] == m.alpha
    assert report["alphas_computed"] == len(m.history)


def test_analyze_reads_what_save_wrote(tmp_path, series, capsys):
    m = WeightChangeDFA(window=100, keep_norms=True)
    for v in series:
        m.update(float(v))
    for name in ["run.csv", "run.jsonl"]:
        assert main(["analyze", str(m.save(tmp_path / name)), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["alpha"] == dfa(series).alpha


def test_analyze_plot(tmp_path, series):
    pytest.importorskip("matplotlib")
    path = _write(tmp_path, series, "npy")
    assert main(["analyze", str(path), "--plot", str(tmp_path / "f.png")]) == 0
    assert main(["analyze", str(path), "--window", "300", "--plot", str(tmp_path / "w.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 5000
    assert (tmp_path / "w.png").stat().st_size > 5000


@pytest.mark.parametrize(
    ("content", "name", "args", "message"),
    [
        (None, "missing.csv", [], "no such file"),
        (
            "step,delta_norm\n1,0.5\n",
            "s.csv",
            ["--column", "alpha"],
            r"no column 'alpha' \(columns: step, delta_norm\)",
        ),
        ("a\n" + "1\n" * 20, "s.csv", [], "too short"),
        ("1\n2\nthree\n", "s.txt", [], r"s.txt:3: not a number: 'three'"),
        ("step,delta_norm\n1,0.5\n2,x\n", "s.csv", [], r"s.csv:3 column 'delta_norm': not a n"),
        ('{"delta_norm": 1}\n{bad\n', "s.jsonl", [], r"s.jsonl:2: not a JSON value"),
        ("1\n" * 100, "s.txt", [], "constant"),
        ("1\nnan\n" * 60, "s.txt", [], "NaN or Inf"),
        ("0.5\n" * 30 + "0.7\n" * 30, "s.txt", ["--window", "100"], "shorter than the window"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, content, name, args, message, capsys):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["analyze", str(path), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("wcdfa: error: ")
    assert pytest.importorskip("re").search(message, lines[0])


def test_module_entry_point(tmp_path, series):
    path = _write(tmp_path, series, "txt")
    out = subprocess.run(
        [sys.executable, "-m", "wcdfa.cli", "analyze", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["n"] == 800
    bad = subprocess.run(
        [sys.executable, "-m", "wcdfa.cli", "analyze", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
