from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from wcdfa.integrations.transformers import WeightChangeDFACallback  # noqa: E402


class TokenDataset(torch.utils.data.Dataset):
    def __init__(self, n=256, length=16, vocab=64, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, vocab, (n, length), generator=gen)

    def __len__(self):
        return self.ids.shape[0]

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _trainer(tmp_path, callback, **kw):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)  # from a config: nothing downloaded
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=kw.pop("max_steps", 120),
        per_device_train_batch_size=4,
        logging_steps=10,
        learning_rate=1e-3,
        report_to=["tensorboard"],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        **kw,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=TokenDataset())
    return callback.install(trainer), trainer


def test_alpha_reaches_log_history_and_the_report_to_backend(tmp_path):
    callback, trainer = _trainer(tmp_path, WeightChangeDFACallback(window=60, stride=10))
    trainer.train()
    monitor = callback.monitor
    assert monitor.step_count == 120  # attach took the baseline: every step recorded
    # the periodic logs (with "loss"); the final summary log gets the keys as well
    logged = [r for r in trainer.state.log_history if "wcdfa/delta_norm" in r and "loss" in r]
    assert [r["step"] for r in logged] == list(range(10, 121, 10))
    with_alpha = [r for r in logged if "wcdfa/alpha" in r]
    assert [r["step"] for r in with_alpha] == list(range(60, 121, 10))
    assert with_alpha[-1]["wcdfa/alpha"] == monitor.alpha
    assert with_alpha[-1]["wcdfa/regime"] == monitor.regime_code()
    # the tensorboard integration (report_to) received them: read its event file
    (run_dir,) = {p.parent for p in tmp_path.rglob("events.out.tfevents.*")}
    acc = event_accumulator.EventAccumulator(str(run_dir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    alpha_tag = next(t for t in tags if t.endswith("wcdfa/alpha"))
    events = acc.Scalars(alpha_tag)
    # (the final summary log repeats step 120)
    assert sorted({e.step for e in events}) == list(range(60, 121, 10))
    assert events[-1].value == pytest.approx(monitor.alpha, rel=1e-6)


def test_gradient_accumulation_records_optimizer_steps_only(tmp_path):
    callback, trainer = _trainer(
        tmp_path,
        WeightChangeDFACallback(window=50),
        max_steps=30,
        gradient_accumulation_steps=4,
    )
    trainer.train()
    assert callback.monitor.step_count == 30


class WeightNormProbe:
    """Global ‖W‖ of the model every `every` steps (a probe of the simplest kind)."""

    name, every = "weights", 20

    def __init__(self):
        self.events, self.readings = [], []

    def start(self, context):
        pass

    def measure(self, context):
        with torch.no_grad():
            norm = torch.sqrt(sum(p.pow(2).sum() for p in context.model.parameters()))
        self.readings.append((context.step, float(norm)))

    def metrics(self):
        return {"weights/norm": self.readings[-1][1]} if self.readings else {}

    def state_dict(self):
        return {"readings": self.readings}

    def load_state_dict(self, state):
        self.readings = [tuple(r) for r in state["readings"]]


def test_a_training_monitor_with_two_probes_reaches_the_logs(tmp_path):
    from wcdfa import TrainingMonitor, WeightChangeDFA

    monitor = TrainingMonitor(probes=[WeightChangeDFA(window=60, stride=10), WeightNormProbe()])
    _, trainer = _trainer(tmp_path, WeightChangeDFACallback(monitor=monitor))
    trainer.train()
    assert monitor.model is trainer.model
    assert monitor.step_count == 120
    logged = [r for r in trainer.state.log_history if "loss" in r]
    assert all("weights/norm" in r for r in logged if r["step"] >= 20)
    assert logged[-1]["wcdfa/alpha"] == monitor["wcdfa"].alpha
    assert logged[-1]["weights/norm"] == monitor["weights"].readings[-1][1]
    assert [s for s, _ in monitor["weights"].readings] == list(range(20, 121, 20))


def test_the_spectral_probe_reaches_the_logs(tmp_path):
    from wcdfa import TrainingMonitor, WeightChangeDFA
    from wcdfa.probes import SpectralProbe

    monitor = TrainingMonitor(
        probes=[WeightChangeDFA(window=60, stride=10), SpectralProbe(every=40)]
    )
    _, trainer = _trainer(tmp_path, WeightChangeDFACallback(monitor=monitor))
    trainer.train()
    probe = monitor["spectral"]
    assert [s for s, _ in probe.history] == [40, 80, 120]
    reading = probe.history[-1][1]
    # GPT-2's Conv1D projections, the embeddings and the tied head, as weightwatcher reads them
    assert "transformer.h.0.attn.c_attn" in reading
    assert "transformer.wte" in reading
    logged = [r for r in trainer.state.log_history if "loss" in r]
    assert logged[-1]["spectral/alpha/transformer.h.0.attn.c_attn"] == pytest.approx(
        reading["transformer.h.0.attn.c_attn"]["alpha"]
    )
    assert logged[-1]["spectral/layers"] == len(reading)


def test_the_attention_probe_reaches_the_logs(tmp_path):
    from wcdfa import TrainingMonitor
    from wcdfa.probes import AttentionProbe

    batch = {"input_ids": TokenDataset(n=8, seed=5).ids}
    monitor = TrainingMonitor(probes=[AttentionProbe(batch, every=40)])
    _, trainer = _trainer(tmp_path, WeightChangeDFACallback(monitor=monitor))
    assert trainer.model.config._attn_implementation == "sdpa"
    trainer.train()
    probe = monitor["attention"]
    assert [s for s, _ in probe.history] == [40, 80, 120]
    assert trainer.model.config._attn_implementation == "sdpa"  # restored after each reading
    heads = probe.history[-1][1]["transformer.h.0.attn"]
    assert len(heads) == 2
    logged = [r for r in trainer.state.log_history if "loss" in r]
    assert logged[-1]["attention/entropy/transformer.h.0.attn/h0"] == pytest.approx(heads[0])


def test_the_flow_probe_reaches_the_logs(tmp_path):
    from wcdfa import TrainingMonitor
    from wcdfa.probes import FlowProbe

    ids = TokenDataset(n=8, seed=6).ids
    probe = FlowProbe(
        ({"input_ids": ids, "labels": ids}, None),
        every=40,
        loss_fn=lambda output, _: output.loss,
        blocks=["transformer.wte", "transformer.h.0", "transformer.ln_f"],
    )
    monitor = TrainingMonitor(probes=[probe])
    _, trainer = _trainer(tmp_path, WeightChangeDFACallback(monitor=monitor))
    trainer.train()
    assert [s for s, _ in probe.history] == [40, 80, 120]
    reading = probe.history[-1][1]
    assert all(g > 0 for g in reading["gradients"])
    logged = [r for r in trainer.state.log_history if "loss" in r]
    assert logged[-1]["flow/deepest_gradient"] == pytest.approx(reading["deepest_gradient"])


def test_a_stop_action_stops_the_trainer(tmp_path):
    from wcdfa import TrainingMonitor, WeightChangeDFA
    from wcdfa.control import Stop

    monitor = TrainingMonitor(probes=[WeightChangeDFA(window=50, stride=10)])
    monitor.on_event(Stop(monitor), kind="regime_change")
    _, trainer = _trainer(tmp_path, WeightChangeDFACallback(monitor=monitor))
    trainer.train()
    assert monitor.stop_requested.step == 50  # the first α is a regime change
    assert trainer.state.global_step == 50  # not 120


def test_gap_steps_give_alpha_clean_in_the_logs_and_the_event_file(tmp_path):
    from wcdfa import dfa
    from wcdfa.control import GapSchedule

    class Gaps(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            while hasattr(optimizer, "optimizer"):  # accelerate's wrapper
                optimizer = optimizer.optimizer
            GapSchedule("noise", fraction=0.25, size=0.01).attach(optimizer, callback.monitor)

    callback = WeightChangeDFACallback(window=60, stride=10, method="snapshot")
    callback, trainer = _trainer(tmp_path, callback)
    trainer.add_callback(Gaps())
    trainer.train()
    monitor = callback.monitor
    assert len(monitor.tagged_steps["gap"]) == 30  # a quarter of 120 steps
    state = monitor.state_dict()  # the clean window: the last 60 untagged steps
    gaps = set(monitor.tagged_steps["gap"])
    assert state["clean_steps"] == [k for k in range(1, 121) if k not in gaps][-60:]
    assert monitor.alpha_clean == pytest.approx(
        dfa(state["clean_signal"], ci=None).alpha, rel=1e-12
    )
    assert monitor.alpha_clean != pytest.approx(monitor.alpha, abs=0.05)
    last = next(r for r in reversed(trainer.state.log_history) if "wcdfa/alpha_clean" in r)
    assert last["wcdfa/alpha_clean"] == monitor.alpha_clean
    (run_dir,) = {p.parent for p in tmp_path.rglob("events.out.tfevents.*")}
    acc = event_accumulator.EventAccumulator(str(run_dir))
    acc.Reload()
    tag = next(t for t in acc.Tags()["scalars"] if t.endswith("wcdfa/alpha_clean"))
    assert acc.Scalars(tag)[-1].value == pytest.approx(monitor.alpha_clean, rel=1e-6)
