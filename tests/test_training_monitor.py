"""The probe host: one schedule, one state, one set of sinks (issue 13)."""

from __future__ import annotations

import runpy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import ROOT  # noqa: E402
from wcdfa import TrainingMonitor, WeightChangeDFA  # noqa: E402
from wcdfa.errors import WCDFAWarning  # noqa: E402
from wcdfa.probes import Event, Probe, event_counts  # noqa: E402

OutputScaleProbe = runpy.run_path(str(ROOT / "examples" / "custom_probe.py"))["OutputScaleProbe"]


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 32),
        torch.nn.BatchNorm1d(32),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(32, 1),
    )


def _train(model, opt, steps, seed=1, monitor=None):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout draws from the global generator
    for _ in range(steps):
        x = torch.randn(16, 6, generator=gen)
        loss = (model(x) - x[:, :1].sin()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if monitor is not None:
            monitor.step(optimizer=opt)


class Recorder:
    """A minimal probe: records the steps it was measured at."""

    def __init__(self, name="rec", every=5, fail_at=None):
        self.name, self.every, self.fail_at = name, every, fail_at
        self.steps, self.events = [], []

    def start(self, context):
        self.started_at = context.step

    def measure(self, context):
        if context.step == self.fail_at:
            msg = "SVD did not converge (simulated)"
            raise np.linalg.LinAlgError(msg)
        self.steps.append(context.step)
        if context.step == 10:
            self.events.append(Event(context.step, self.name, "ten", {"x": 1}))

    def metrics(self):
        return {f"{self.name}/count": float(len(self.steps))}

    def state_dict(self):
        return {"steps": list(self.steps), "events": [e.as_dict() for e in self.events]}

    def load_state_dict(self, state):
        self.steps = list(state["steps"])
        self.events = [Event(**e) for e in state["events"]]


def test_a_hosted_weight_change_dfa_gives_the_numbers_of_an_attached_one():
    alone_model, hosted_model = _model(), _model()
    alone = WeightChangeDFA(window=60, stride=10)
    alone.attach(opt_a := torch.optim.AdamW(alone_model.parameters(), lr=1e-2))
    _train(alone_model, opt_a, 100)
    hosted = TrainingMonitor(hosted_model, [WeightChangeDFA(window=60, stride=10), Recorder()])
    hosted.attach(opt_h := torch.optim.AdamW(hosted_model.parameters(), lr=1e-2))
    _train(hosted_model, opt_h, 100)
    metrics = hosted.metrics()
    assert {k: v for k, v in metrics.items() if k.startswith("wcdfa/")} == alone.metrics()
    assert hosted["wcdfa"].history == alone.history
    assert hosted["rec"].steps == list(range(5, 101, 5))  # its own schedule
    assert metrics["rec/count"] == 20.0
    assert hosted.step_count == 100
    assert isinstance(hosted["rec"], Probe)


def test_step_drives_custom_loops_like_attach():
    a_model, b_model = _model(), _model()
    a = TrainingMonitor(a_model, [WeightChangeDFA(window=60, stride=10)])
    a.attach(opt_a := torch.optim.SGD(a_model.parameters(), lr=0.05, momentum=0.9))
    _train(a_model, opt_a, 80)
    b = TrainingMonitor(b_model, [WeightChangeDFA(window=60, stride=10)])
    opt_b = torch.optim.SGD(b_model.parameters(), lr=0.05, momentum=0.9)
    b.start(opt_b)  # the baselines before the first step, as attach takes them
    _train(b_model, opt_b, 80, monitor=b)
    assert a["wcdfa"].history == b["wcdfa"].history
    assert a.metrics() == b.metrics()


def test_a_failing_probe_is_an_event_not_a_crash():
    model = _model()
    monitor = TrainingMonitor(model, [Recorder(every=1, fail_at=3)])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor.start(opt)
    with pytest.warns(WCDFAWarning, match=r"Probe 'rec' failed at step 3 \(LinAlgError"):
        _train(model, opt, 12, monitor=monitor)
    (failure,) = [e for e in monitor.events if e.kind == "failed"]
    assert (failure.step, failure.probe, failure.detail["probe"]) == (3, "monitor", "rec")
    assert "SVD did not converge" in failure.detail["reason"]
    assert monitor["rec"].steps == [1, 2, *range(4, 13)]
    strict = TrainingMonitor(model, [Recorder(every=1, fail_at=2)], raise_errors=True)
    with pytest.raises(np.linalg.LinAlgError):
        _train(model, opt, 3, monitor=strict)  # its first step() takes the baselines
    assert strict["rec"].steps == [1]


def test_handlers_act_on_events_with_filters():
    model = _model()
    monitor = TrainingMonitor(model, [Recorder(every=1), WeightChangeDFA(window=50, stride=10)])
    seen, regimes = [], []
    remove = monitor.on_event(seen.append)
    monitor.on_event(regimes.append, probe="wcdfa", kind="regime_change")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor.attach(opt)
    _train(model, opt, 12)
    assert [(e.step, e.kind) for e in seen] == [(10, "ten")]
    remove()
    _train(model, opt, 60)
    assert len(seen) == 1  # removed
    assert regimes
    assert all(e.probe == "wcdfa" and e.kind == "regime_change" for e in regimes)
    assert regimes[0].step == 50  # the first α
    assert event_counts(monitor.events)["rec/events/ten"] == 1.0


def test_regime_changes_wait_for_confirmation():
    rng = np.random.default_rng(0)
    white = np.abs(rng.standard_normal(400)) + 0.5
    walk = np.cumsum(rng.standard_normal(400)) + 100.0
    quick, patient = (
        WeightChangeDFA(window=100, stride=20),
        WeightChangeDFA(window=100, stride=20, confirm=3),
    )
    for v in np.concatenate((white, walk)):
        quick.update(v)
        patient.update(v)
    first = [e.step for e in quick.events]
    assert [e.detail["to"] for e in quick.events][:1] == ["disordered"]
    assert patient.events[0].step == first[0] + 40  # two more recomputations
    assert len(patient.events) <= len(quick.events)
    for m in (quick, patient):
        for e in m.events:
            k = m.history_steps.index(e.step) + 1
            confirming = m.history[k - m.confirm : k]
            assert len(confirming) == m.confirm
            assert {m.classify_alpha(a) for a in confirming} == {e.detail["to"]}


def test_state_round_trips_through_torch_save_weights_only(tmp_path):
    model = _model()
    monitor = TrainingMonitor(model, [WeightChangeDFA(window=50, stride=10), Recorder()])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor.attach(opt)
    _train(model, opt, 70)
    torch.save({"model": model.state_dict(), "monitor": monitor.state_dict()}, tmp_path / "c.pt")
    checkpoint = torch.load(tmp_path / "c.pt", weights_only=True)
    resumed_model = _model()
    resumed_model.load_state_dict(checkpoint["model"])
    resumed = TrainingMonitor(resumed_model, [WeightChangeDFA(window=50, stride=10), Recorder()])
    resumed.load_state_dict(checkpoint["monitor"])
    assert resumed.metrics() == monitor.metrics()
    assert resumed.events == monitor.events
    assert resumed.step_count == 70
    with pytest.raises(ValueError, match=r"must hold the probes \['wcdfa'\]"):
        TrainingMonitor(model, [WeightChangeDFA(window=50, stride=10)]).load_state_dict(
            checkpoint["monitor"]
        )


def test_probes_are_validated():
    with pytest.raises(TypeError, match=r"`probes\[0\]` must be a probe.*without start"):
        TrainingMonitor(probes=[object()])
    with pytest.raises(ValueError, match="unique names, but 'rec' is repeated"):
        TrainingMonitor(probes=[Recorder(), Recorder()])
    with pytest.raises(ValueError, match=r"`probes\[0\].every` must be an integer >= 1.*0"):
        TrainingMonitor(probes=[Recorder(every=0)])


def test_a_probe_batch_leaves_training_bit_identical():
    runs = []
    for with_probe in (False, True):
        model = _model()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        probes = [WeightChangeDFA(window=50)]
        if with_probe:
            probes.append(OutputScaleProbe(torch.randn(64, 6), every=3))
        monitor = TrainingMonitor(model, probes)
        monitor.attach(opt)
        _train(model, opt, 40)
        runs.append((model, monitor))
    (plain, _), (probed, monitor) = runs
    for a, b in zip(plain.state_dict().values(), probed.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # weights and BatchNorm statistics, bit for bit
    assert probed.training  # the mode is restored
    assert len(monitor["output"].history) == 13


def test_sinks_take_the_whole_monitor(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    model = _model()
    monitor = TrainingMonitor(model, [WeightChangeDFA(window=50, stride=10), Recorder()])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor.attach(opt)
    _train(model, opt, 60)
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    monitor.log_tensorboard(writer)
    writer.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"wcdfa/alpha", "rec/count"} <= tags
    assert events.Scalars("rec/count")[-1].value == 12.0
    assert events.Scalars("rec/count")[-1].step == 60
    path = monitor.save(tmp_path / "events.csv")
    text = path.read_text()
    assert text.startswith("step,probe,kind,detail\n")
    assert "rec,ten" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        str(monitor)
    assert "α = " in str(monitor)


def test_the_monitor_plots_one_panel_per_probe(tmp_path):
    pytest.importorskip("matplotlib")
    model = _model()
    monitor = TrainingMonitor(
        model, [WeightChangeDFA(window=50, stride=10), OutputScaleProbe(torch.randn(32, 6), 10)]
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor.attach(opt)
    _train(model, opt, 80)
    _, axes = monitor.plot(save_path=tmp_path / "p" / "all.png", show=False)
    assert len(axes) == 2
    assert axes[0].get_ylabel() == "weight-change DFA α"
    assert axes[1].get_ylabel() == "median ‖f(x)‖"
    assert (tmp_path / "p" / "all.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="has a plot"):
        TrainingMonitor(model, [Recorder()]).plot(show=False)


def test_wandb_gets_every_probes_metrics(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from wandb_reader import history_rows

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    model = _model()
    monitor = TrainingMonitor(model, [WeightChangeDFA(window=50, stride=10), Recorder()])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor.attach(opt)
    _train(model, opt, 60)
    run = wandb.init(project="wcdfa-test", dir=str(tmp_path))
    try:
        monitor.log_wandb()
    finally:
        run.finish()
        wandb.teardown()  # the service has written everything to the run's file
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (row,) = history_rows(run_dir)
    assert row["_step"] == 60
    assert row["wcdfa/alpha"] == monitor["wcdfa"].alpha
    assert row["wcdfa/regime"] == monitor["wcdfa"].regime_code()
    assert row["rec/count"] == 12.0
