from __future__ import annotations

import csv

import numpy as np
import pytest

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")

from wcdfa.integrations.lightning import WeightChangeDFACallback  # noqa: E402


class TinyModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def _loader(n=1024, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    y = torch.sin(x.sum(1, keepdim=True)) + 0.1 * torch.randn(n, 1, generator=gen)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def _trainer(tmp_path, callback, max_steps, **kw):
    return pl.Trainer(
        max_steps=max_steps,
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=pl.loggers.CSVLogger(tmp_path, name="run", version=0),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **kw,
    )


def _logged(tmp_path):
    with (tmp_path / "run" / "version_0" / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_callback_logs_alpha_regime_and_delta_norm_through_the_csv_logger(tmp_path):
    torch.manual_seed(0)
    callback = WeightChangeDFACallback(window=100, stride=20, log_every_n_steps=25)
    _trainer(tmp_path, callback, 300).fit(TinyModule(), _loader())
    monitor = callback.monitor
    assert monitor.step_count == 300  # every optimizer step, none lost
    rows = [r for r in _logged(tmp_path) if r.get("wcdfa/delta_norm")]
    assert [int(r["step"]) for r in rows] == list(range(25, 301, 25))
    with_alpha = [r for r in rows if r.get("wcdfa/alpha")]
    assert [int(r["step"]) for r in with_alpha] == list(range(100, 301, 25))
    last = with_alpha[-1]
    assert float(last["wcdfa/alpha"]) == pytest.approx(monitor.alpha)
    assert float(last["wcdfa/regime"]) == monitor.regime_code()
    assert float(last["wcdfa/delta_norm"]) == pytest.approx(monitor.get_signal()[-1])


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    callback = WeightChangeDFACallback(window=50, stride=10, log_every_n_steps=10)
    _trainer(tmp_path, callback, 40, accumulate_grad_batches=4).fit(TinyModule(), _loader())
    assert callback.monitor.step_count == 40  # 160 batches, 40 optimizer steps


def test_default_log_every_n_steps_is_the_trainers(tmp_path):
    callback = WeightChangeDFACallback(window=50)
    _trainer(tmp_path, callback, 60, log_every_n_steps=20).fit(TinyModule(), _loader())
    steps = [int(r["step"]) for r in _logged(tmp_path) if r.get("wcdfa/delta_norm")]
    assert steps == [20, 40, 60]


def test_state_is_saved_in_and_restored_from_checkpoints(tmp_path):
    torch.manual_seed(1)
    callback = WeightChangeDFACallback(window=60, stride=15)
    trainer = _trainer(tmp_path, callback, 120)
    trainer.fit(TinyModule(), _loader())
    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    restored = WeightChangeDFACallback(window=60, stride=15)
    trainer2 = _trainer(tmp_path / "b", restored, 120)
    trainer2.fit(TinyModule(), _loader(), ckpt_path=ckpt)  # already at max_steps
    assert restored.monitor.history == callback.monitor.history
    np.testing.assert_array_equal(restored.monitor.get_signal(), callback.monitor.get_signal())
    with pytest.raises(ValueError, match="other settings"):
        _trainer(tmp_path / "c", WeightChangeDFACallback(window=70), 120).fit(
            TinyModule(), _loader(), ckpt_path=ckpt
        )


def test_bad_log_every_n_steps():
    with pytest.raises(ValueError, match=r"`log_every_n_steps` must be an integer >= 1.*0"):
        WeightChangeDFACallback(log_every_n_steps=0)


def test_a_training_monitor_with_two_probes_logs_through_the_csv_logger(tmp_path):
    import runpy

    from conftest import ROOT
    from wcdfa import TrainingMonitor, WeightChangeDFA

    probe = runpy.run_path(str(ROOT / "examples" / "custom_probe.py"))["OutputScaleProbe"]
    torch.manual_seed(0)
    monitor = TrainingMonitor(
        probes=[WeightChangeDFA(window=100, stride=20), probe(torch.randn(32, 8), every=50)]
    )
    callback = WeightChangeDFACallback(monitor=monitor, log_every_n_steps=50)
    module = TinyModule()
    _trainer(tmp_path, callback, 300).fit(module, _loader())
    assert monitor.model is module
    assert monitor.step_count == 300
    rows = _logged(tmp_path)
    last = next(r for r in reversed(rows) if r.get("wcdfa/alpha"))
    assert float(last["wcdfa/alpha"]) == pytest.approx(monitor["wcdfa"].alpha)
    assert float(last["output/scale"]) == pytest.approx(monitor["output"].history[-1][1])
    assert [s for s, _ in monitor["output"].history] == list(range(50, 301, 50))
    assert float(last["wcdfa/events/regime_change"]) == len(monitor["wcdfa"].events) >= 1


def test_the_spectral_probe_reaches_the_csv_logger(tmp_path):
    from wcdfa import TrainingMonitor, WeightChangeDFA
    from wcdfa.probes import SpectralProbe

    torch.manual_seed(0)
    monitor = TrainingMonitor(
        probes=[WeightChangeDFA(window=100, stride=20), SpectralProbe(every=50, min_evals=8)]
    )
    callback = WeightChangeDFACallback(monitor=monitor, log_every_n_steps=50)
    module = TinyModule()
    _trainer(tmp_path, callback, 300).fit(module, _loader())
    probe = monitor["spectral"]
    assert [s for s, _ in probe.history] == list(range(50, 301, 50))
    assert list(probe.history[-1][1]) == ["net.0"]  # net.2 has 1 eigenvalue
    last = next(r for r in reversed(_logged(tmp_path)) if r.get("spectral/alpha/net.0"))
    assert float(last["spectral/alpha/net.0"]) == pytest.approx(
        probe.history[-1][1]["net.0"]["alpha"]
    )
    assert float(last["spectral/layers"]) == 1.0


class AttentionModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
        self.net = torch.nn.TransformerEncoder(layer, 1)

    def forward(self, x):
        return self.net(x.view(-1, 4, 2).repeat(1, 1, 4))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x).mean((1, 2)), y.squeeze(-1))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def test_the_attention_probe_reaches_the_csv_logger(tmp_path):
    from wcdfa import TrainingMonitor
    from wcdfa.probes import AttentionProbe

    torch.manual_seed(0)
    probe = AttentionProbe(torch.randn(16, 8), every=50)
    monitor = TrainingMonitor(probes=[probe])
    callback = WeightChangeDFACallback(monitor=monitor, log_every_n_steps=50)
    _trainer(tmp_path, callback, 200).fit(AttentionModule(), _loader())
    assert [s for s, _ in probe.history] == [50, 100, 150, 200]
    assert list(probe.history[-1][1]) == ["net.layers.0.self_attn"]
    last = next(r for r in reversed(_logged(tmp_path)) if r.get("attention/entropy"))
    heads = probe.history[-1][1]["net.layers.0.self_attn"]
    assert float(last["attention/entropy"]) == pytest.approx(sum(heads) / 2)
    assert float(last["attention/entropy/net.layers.0.self_attn/h1"]) == pytest.approx(heads[1])


def test_the_flow_probe_reaches_the_csv_logger(tmp_path):
    from wcdfa import TrainingMonitor, WeightChangeDFA
    from wcdfa.probes import FlowProbe

    torch.manual_seed(0)
    x = torch.randn(32, 8)
    probe = FlowProbe((x, x.sum(1, keepdim=True)), every=50, loss_fn=torch.nn.functional.mse_loss)
    monitor = TrainingMonitor(probes=[WeightChangeDFA(window=50), probe])
    callback = WeightChangeDFACallback(monitor=monitor, log_every_n_steps=50)
    _trainer(tmp_path, callback, 200).fit(TinyModule(), _loader())
    assert [s for s, _ in probe.history] == [50, 100, 150, 200]
    reading = probe.history[-1][1]
    assert reading["blocks"] == ["net.0", "net.1", "net.2"]
    # ΔW against -grad from the WeightChangeDFA's measurer (the callback attached the
    # optimizer); the Tanh between the layers has no parameters: NaN
    credit = reading["credit"]
    assert np.isnan(credit[1])
    assert all(0.0 < abs(c) < 0.99 for c in (credit[0], credit[2]))  # Adam's update
    last = next(r for r in reversed(_logged(tmp_path)) if r.get("flow/max_growth"))
    assert float(last["flow/max_growth"]) == pytest.approx(reading["max_growth"])
    assert float(last["flow/gradient/net.0"]) == pytest.approx(reading["gradients"][0])


class TaggingModule(TinyModule):
    """Tags every third optimizer step as a gap from its own training_step."""

    def __init__(self, monitor):
        super().__init__()
        self.monitor = monitor

    def training_step(self, batch, batch_idx):
        if batch_idx % 3 == 0:
            self.monitor.mark("gap")  # before this batch's optimizer step
        return super().training_step(batch, batch_idx)


def test_tags_and_a_stop_action_work_through_lightning(tmp_path):
    from wcdfa import TrainingMonitor, WeightChangeDFA
    from wcdfa.control import Stop

    torch.manual_seed(0)
    monitor = TrainingMonitor(probes=[WeightChangeDFA(window=50, stride=10)])
    monitor.on_event(Stop(monitor), kind="regime_change")
    callback = WeightChangeDFACallback(monitor=monitor, log_every_n_steps=10)
    module = TaggingModule(monitor)
    # 50 clean steps fill the clean window at step 75; the first α (step 50) is a
    # regime change, and Stop ends the run at the end of that batch
    _trainer(tmp_path, callback, 300).fit(module, _loader())
    wcdfa = monitor["wcdfa"]
    assert monitor.stop_requested.step == 50
    assert wcdfa.step_count == 50  # stopped: not 300
    assert wcdfa.tagged_steps["gap"] == list(range(1, 51, 3))
    assert len(wcdfa.alpha_clean_history) == 0  # 33 clean steps: fewer than the window
    assert wcdfa.alpha_clean is None


def test_alpha_clean_reaches_the_csv_logger(tmp_path):
    from wcdfa import TrainingMonitor, WeightChangeDFA

    torch.manual_seed(0)
    monitor = TrainingMonitor(probes=[WeightChangeDFA(window=50, stride=10)])
    callback = WeightChangeDFACallback(monitor=monitor, log_every_n_steps=10)
    _trainer(tmp_path, callback, 120).fit(TaggingModule(monitor), _loader())
    wcdfa = monitor["wcdfa"]
    last = next(r for r in reversed(_logged(tmp_path)) if r.get("wcdfa/alpha_clean"))
    assert int(last["step"]) == 120
    assert float(last["wcdfa/alpha_clean"]) == pytest.approx(wcdfa.alpha_clean)
    assert wcdfa.alpha_clean != pytest.approx(wcdfa.alpha)
