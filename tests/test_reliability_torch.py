"""Faults and misuse on the model path: the training loop keeps going (issue 11)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from wcdfa import WeightChangeDFA, compute_dfa  # noqa: E402
from wcdfa.errors import (  # noqa: E402
    LostSamplesWarning,
    MisuseWarning,
    WCDFAWarning,
)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))


def _train_step(model, opt, gen):
    x = torch.randn(8, 6, generator=gen)
    loss = (model(x) - x[:, :1]).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


class _UnreadableNorm(torch.Tensor):
    """A value whose transfer to the host fails, as on a faulted device."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in {"stack", "to", "cpu"}:
            msg = "device-side assert triggered (simulated)"
            raise RuntimeError(msg)
        return super().__torch_function__(func, types, args, kwargs or {})


def test_a_failed_fetch_loses_only_the_unreadable_values_and_says_which():
    m = WeightChangeDFA(window=50, stride=10)
    for i in range(1, 21):
        value = torch.tensor(float(i))
        if i == 7:
            value = value.as_subclass(_UnreadableNorm)
        if i == 10:
            with pytest.warns(LostSamplesWarning, match=r"1 measured value.*steps 7\).*assert"):
                m.update(value)
        else:
            m.update(value)
    assert m.lost_steps == [7]
    assert m.step_count == 20
    expected = [float(i) for i in range(1, 21) if i != 7]
    assert m.get_signal().tolist() == expected
    assert m.get_signal_steps().tolist() == [int(v) for v in expected]


def test_learning_rate_zero_steps_are_skipped_not_an_alarm():
    transformers = pytest.importorskip("transformers")
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    schedule = transformers.get_linear_schedule_with_warmup(opt, 5, 200)  # starts at lr=0
    gen = torch.Generator().manual_seed(0)
    m = WeightChangeDFA(window=50, stride=10, normalize="lr", on_nonfinite="raise")
    m.attach(opt)
    floats = WeightChangeDFA(window=50, normalize="lr", on_nonfinite="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(60):
            floats.update(1.0 + 0.1 * len(floats.skipped_steps), optimizer=opt)
            _train_step(model, opt, gen)
            schedule.step()
    assert m.skipped_steps == [1] == floats.skipped_steps
    assert not m.diverged
    assert m.step_count == 60
    assert m.get_signal_steps().tolist() == list(range(11, 61))
    assert np.all(np.isfinite(m.get_signal()))
    assert m.ready


def test_normalised_norms_are_named_as_such():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    m = WeightChangeDFA(window=50, normalize="lr")
    m.attach(opt)
    for _ in range(3):
        _train_step(model, opt, gen)
    metrics = m.metrics()
    assert "wcdfa/delta_norm_per_lr" in metrics
    assert "wcdfa/delta_norm" not in metrics


def test_a_model_with_nothing_trainable_records_nothing_and_warns_once():
    model = _model()
    gen = torch.Generator().manual_seed(2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    m = WeightChangeDFA(window=50)
    m.update(model)
    model.requires_grad_(False)  # a GAN generator between its critic's steps
    with pytest.warns(WCDFAWarning, match="No trainable parameters"):
        m.update(model)
    m.update(model)
    m.update(model)
    assert m.step_count == 0
    model.requires_grad_(True)
    m.update(model)  # a new baseline
    before = [p.detach().clone() for p in model.parameters()]
    _train_step(model, opt, gen)
    m.update(model)
    change = math.sqrt(
        sum(
            float((p.detach() - b).pow(2).sum())
            for p, b in zip(model.parameters(), before, strict=True)
        )
    )
    assert m.get_signal().tolist() == pytest.approx([change], rel=1e-6)


@pytest.mark.parametrize(
    "replace",
    [
        lambda w: torch.randn(w.shape[0] + 2, w.shape[1]),  # new shape
        lambda w: w.detach().double(),  # new dtype
    ],
    ids=["shape", "dtype"],
)
def test_replaced_parameter_data_takes_a_new_baseline_without_a_jump(replace):
    model = _model()
    m = WeightChangeDFA(window=50)
    m.update(model)
    with torch.no_grad():
        model[2].weight.add_(0.5)  # a known change of the other layer
        first = model[0].weight
        first.data = replace(first)
    with pytest.warns(WCDFAWarning, match=r"1 tracked parameter\(s\) changed shape, dtype"):
        m.update(model)
    assert m.get_signal().tolist() == pytest.approx([0.5 * math.sqrt(16)], rel=1e-6)
    with torch.no_grad():
        model[0].weight.add_(0.25)
    m.update(model)  # the replaced tensor counts from its next change on
    assert m.get_signal()[-1] == pytest.approx(0.25 * math.sqrt(model[0].weight.numel()))


def test_attach_and_update_in_the_loop_warns_once():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(3)
    m = WeightChangeDFA(window=50)
    m.attach(opt)
    _train_step(model, opt, gen)
    with pytest.warns(MisuseWarning, match="recorded twice"):
        m.update(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.update(model)


def test_a_tensor_that_requires_grad_is_flagged_as_probably_the_loss():
    model = _model()
    loss = model(torch.ones(1, 6)).pow(2).sum()
    m = WeightChangeDFA(window=50)
    with pytest.warns(MisuseWarning, match="looks like the loss"):
        m.update(loss)
    assert m.get_signal().tolist() == [pytest.approx(loss.detach().item())]
    grad_signal = torch.randn(200, requires_grad=True)
    assert compute_dfa(grad_signal)[0] == compute_dfa(grad_signal.detach().numpy())[0]
    assert compute_dfa(grad_signal.to(torch.bfloat16))[0] == pytest.approx(
        compute_dfa(grad_signal.to(torch.bfloat16).float().detach().numpy())[0]
    )


def test_a_hook_warning_names_the_users_optimizer_step_line():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(4)
    m = WeightChangeDFA(window=50, on_nonfinite="warn")
    m.attach(opt)
    x = torch.randn(8, 6, generator=gen)
    loss = model(x).sum() * math.inf  # diverged
    opt.zero_grad()
    loss.backward()

    def step_and_log():
        opt.step()
        m.metrics()  # the device value is fetched here; the warning names this line

    line = step_and_log.__code__.co_firstlineno + 1
    with pytest.warns(WCDFAWarning) as record:
        step_and_log()
    assert {(Path(w.filename).resolve(), w.lineno) for w in record} <= {
        (Path(__file__).resolve(), line),
        (Path(__file__).resolve(), line + 1),
    }


class _CountNewTensors(TorchDispatchMode):
    """Counts tensors built from Python data (torch.tensor(list): a host-to-device copy)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.lift_fresh.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["optimizer", "snapshot"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_no_tensor_is_built_from_python_data_per_step(method, optimizer):
    model = _model()
    opt = (
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        if optimizer == "sgd"
        else torch.optim.AdamW(model.parameters(), lr=1e-3)
    )
    gen = torch.Generator().manual_seed(5)
    m = WeightChangeDFA(window=50, stride=1000, groups="module", method=method)
    m.attach(opt, model=model)
    for _ in range(3):  # layouts are built on the first steps
        _train_step(model, opt, gen)
    mode = _CountNewTensors()
    for _ in range(20):
        x = torch.randn(8, 6, generator=gen)
        loss = (model(x) - x[:, :1]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        with mode:
            opt.step()
    assert mode.count == 0
    assert m.method_in_use == ("optimizer-state" if method == "optimizer" else "snapshot")
    assert m.n_samples == 23
