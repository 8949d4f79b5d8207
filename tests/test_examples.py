"""Every example runs (short settings) and prints its result."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


def _run(script, *args, cwd):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**__import__("os").environ, "MPLBACKEND": "Agg"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_lightning_example(tmp_path):
    pytest.importorskip("lightning")
    out = _run("lightning_callback.py", "--steps", "250", "--out", str(tmp_path), cwd=tmp_path)
    assert "final: wcdfa: α=" in out


def test_hf_trainer_example(tmp_path):
    pytest.importorskip("transformers")
    out = _run("hf_trainer.py", "--steps", "150", "--out", str(tmp_path), cwd=tmp_path)
    assert "α=" in out
    assert "final: wcdfa: α=" in out


def test_logging_sinks_example(tmp_path):
    for module in ("wandb", "tensorboard", "matplotlib"):
        pytest.importorskip(module)
    out = _run("logging_sinks.py", "--steps", "700", "--out", str(tmp_path), cwd=tmp_path)
    assert "wcdfa: α=" in out
    assert "regime" in out
    assert (tmp_path / "alpha.png").exists()
    assert (tmp_path / "norms.csv").exists()


def test_grokking_quick(tmp_path):
    import json

    pytest.importorskip("matplotlib")
    args = ["--quick", "--threads", "2", "--probes", "spectral", "--out", str(tmp_path)]
    _run("grokking.py", *args, cwd=tmp_path)
    result = json.loads((tmp_path / "grokking_seed0.json").read_text())
    assert result["epochs"] == 1500
    spectral = result["spectral"]  # every layer read every 250 epochs
    assert spectral["layers"] == ["embed_a", "embed_b", "net.0", "net.2", "net.4"]
    assert spectral["first"]["epoch"] == 249
    assert spectral["final"]["epoch"] == 1499
    assert result["memorisation_epoch"] is not None  # the training set is learnt
    assert result["final_alpha"] is not None  # the window (500 epochs) filled
    assert (tmp_path / "grokking_seed0.png").stat().st_size > 10_000


def test_attention_crystallisation_quick(tmp_path):
    import json

    pytest.importorskip("matplotlib")
    _run("attention_crystallisation.py", "--quick", "--out", str(tmp_path), cwd=tmp_path)
    result = json.loads((tmp_path / "attention_seed0.json").read_text())
    assert result["epochs"] == 100
    heads = list(result["final_entropy"])
    assert heads == [f"blocks.layers.{i}.self_attn/h{j}" for i in (0, 1) for j in (0, 1)]
    assert all(0.0 < v < 1.0 for v in result["final_entropy"].values())
    assert sorted(result["compensation_score"]) == heads[:2]  # the first layer's heads
    assert list(result["spectral_alpha"]) == ["100"]
    assert (tmp_path / "attention_seed0.png").stat().st_size > 10_000
    # the report writes the page from the run: its numbers, not the account's
    page = tmp_path / "doc" / "attention.md"
    report = ROOT / "benchmarks" / "attention_report.py"
    subprocess.run([sys.executable, str(report), str(tmp_path), "--out", str(page)], check=True)
    text = page.read_text()
    assert f"{result['final_mean_entropy']:.6f}" in text
    for head, step in result["convergence"].items():  # each head's convergence step
        short = head.replace("blocks.layers.", "L").replace(".self_attn/", "")
        assert f"{short} {'never' if step is None else f'at {step}'}" in text
    assert (tmp_path / "doc" / "img" / "attention_seed0.png").exists()


def test_learning_rule_audit_quick(tmp_path):
    import json

    report = tmp_path / "audit.md"
    _run(
        "learning_rule_audit.py",
        "--quick",
        "--out",
        str(tmp_path),
        "--report",
        str(report),
        cwd=tmp_path,
    )
    result = json.loads((tmp_path / "audit_seed0.json").read_text())
    backprop, dfa = result["runs"]
    assert (backprop["rule"], dfa["rule"]) == ("backprop", "dfa")
    assert backprop["test_accuracy"] > 0.5  # both rules learn the synthetic task
    assert dfa["test_accuracy"] > 0.5
    assert len(dfa["rule_cosine"]) == len(dfa["null_cosine"]) == 6  # one per block
    assert "rule_cosine" not in backprop
    assert "| 0 | dfa |" in report.read_text()


def test_jax_optax_example(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    out = _run("jax_optax.py", "--steps", "700", cwd=tmp_path)
    assert "final: wcdfa: α=" in out


def test_custom_probe_example(tmp_path):
    out = _run("custom_probe.py", "--steps", "700", "--every", "100", cwd=tmp_path)
    assert "TrainingMonitor at step 700" in out
    assert "output: median output norm" in out
    assert "α = " in out  # the sentence on what α means


def test_interventions_quick_and_its_report(tmp_path):
    import json

    out = _run("interventions.py", "--quick", "--out", str(tmp_path), cwd=tmp_path)
    assert out.count("digits ") == 5  # one line per condition
    runs = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("digits_*_seed0.json")}
    assert sorted(runs) == sorted(
        f"digits_{c}_seed0" for c in ("baseline", "wwpgd", "gap2", "gap40", "gap95")
    )
    baseline, gap40 = runs["digits_baseline_seed0"], runs["digits_gap40_seed0"]
    assert baseline["final_test_accuracy"] > 0.8  # 8 epochs of digits
    assert baseline["gap_steps"] == 0
    assert gap40["gap_steps"] == round(0.4 * gap40["steps"])
    assert gap40["final_alpha_clean"] != gap40["final_alpha"]
    assert baseline["final_alpha_clean"] == baseline["final_alpha"]
    assert runs["digits_wwpgd_seed0"]["projections"] == baseline["steps"] // 16
    # every layer's spectral α at every evaluation (each epoch), the last one the final
    history = baseline["spectral_alpha_history"]
    assert [e for e, _ in history] == [e for e, _ in baseline["test_accuracy"]]
    assert history[-1][1] == baseline["spectral_alpha"]
    assert len(baseline["spectral_alpha"]) >= 2
    report_script = ROOT / "benchmarks" / "interventions_report.py"
    report = subprocess.run(
        [sys.executable, str(report_script), str(tmp_path), "--img", str(tmp_path / "img")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "| 0 | gap40 |" in report
    assert "## digits" in report
    layer = next(iter(baseline["spectral_alpha"]))
    row = next(line for line in report.splitlines() if line.startswith(f"| baseline | {layer} |"))
    assert row.endswith(f"| {baseline['spectral_alpha'][layer]:.2f} |")  # the last checkpoint
    assert (tmp_path / "img" / "interventions_digits.png").stat().st_size > 10_000
