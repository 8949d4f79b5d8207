from __future__ import annotations

import runpy
import subprocess
import sys

import pytest

import wcdfa
from conftest import ROOT


def test_public_names_and_version():
    assert wcdfa.__version__ == "0.2.0"
    assert sorted(wcdfa.__all__) == sorted(
        [
            "compute_dfa",
            "dfa",
            "DFAResult",
            "WeightChangeDFA",
            "RollingWeightChangeDFA",
            "TrainingMonitor",
            "__version__",
        ]
    )
    for name in wcdfa.__all__:
        assert hasattr(wcdfa, name)


def test_import_loads_numpy_only():
    code = (
        "import sys, wcdfa\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'wandb', 'scipy', 'pandas') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""


def test_basic_usage_example_runs(capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(sys, "argv", ["basic_usage.py", "--steps", "400", "--window", "200"])
    runpy.run_path(str(ROOT / "examples" / "basic_usage.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "α=" in out
    assert "final:" in out
