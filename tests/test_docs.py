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
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    api = (tmp_path / "api" / "index.html").read_text()
    assert "WeightChangeDFA" in api
    assert "confidence_interval" in api


def _python_block_after(text, marker):
    start = text.index("```python\n", text.index(marker)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_guides_jax_snippet_runs_as_written():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    code = _python_block_after((ROOT / "docs" / "guide.md").read_text(), "With JAX and optax")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("wcdfa: α=")
