"""The documentation site builds in strict mode (broken links, bad docstrings fail)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


def test_mkdocs_strict_build(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    api = (tmp_path / "api" / "index.html").read_text()
    assert "WeightChangeDFA" in api
    assert "confidence_interval" in api
