"""The benchmark scripts run (tiny sizes): they must not rot between releases."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT


def _run(script, *args):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    return out.stdout


def test_bench_dfa_runs_and_reports_oracle_agreement():
    out = _run("bench_dfa.py", "--sizes", "500", "--seconds", "0.05")
    row = next(line for line in out.splitlines() if line.strip().startswith("500"))
    assert float(row.split()[-1]) < 1e-9  # |Δα| against the oracle
    if importlib.util.find_spec("antropy") is None:
        assert "antropy not installed: no equal-work comparison" in out
    else:  # antropy's own scales and layout through dfa: the same α
        tail = out.split("antropy ms")[1]
        row = next(line for line in tail.splitlines() if line.strip().startswith("500"))
        assert float(row.split()[-1]) < 1e-9


def test_bench_monitor_runs():
    pytest.importorskip("torch")
    out = _run("bench_monitor.py", "--sizes", "0.4", "--repeats", "3")
    row = next(line for line in out.splitlines() if line.strip().startswith("0.4M"))
    assert "1.000x" in row  # held: exactly one snapshot
    assert "amortised" in out


def test_bench_derived_runs():
    pytest.importorskip("torch")
    out = _run("bench_derived.py", "--sizes", "0.4", "--tensors", "20", "--repeats", "2")
    assert "20 tensors  adam" in out
    assert "0.4M MLP   sgd" in out


def test_bench_spectral_runs_and_the_fits_agree():
    out = _run("bench_spectral.py", "--sizes", "128", "--models", "tiny", "--seconds", "0.05")
    row = next(line for line in out.splitlines() if line.strip().startswith("128"))
    assert row.split()[-1] == "True"  # the same xmin as weightwatcher
    assert float(row.split()[-2]) < 1e-9  # |Δα|
    rows = [line for line in out.splitlines() if line.startswith("MLP 64-128-10")]
    assert len(rows) == 3  # without and with detX, and the time breakdown
    for row in rows[:2]:
        assert row.split()[-2] == "same"  # the same layers as weightwatcher ...
        assert float(row.split()[-1]) < 1e-9  # ... with the same α


def test_bench_probes_runs_and_reports_every_case():
    pytest.importorskip("transformers")
    out = _run("bench_probes.py", "--seconds", "0.05")
    rows = [line for line in out.splitlines() if line.startswith(("transformer", "GPT-2", "flow"))]
    assert len(rows) == 4
    for row in rows:
        assert row.split()[-1].endswith("%")  # the amortised cost per step at every=1000
