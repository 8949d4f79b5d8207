"""‖ΔW‖ derived from the optimizer's state against the snapshot difference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from wcdfa import WeightChangeDFA  # noqa: E402
from wcdfa.errors import WCDFAWarning  # noqa: E402

SGD, Adam, AdamW = torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW
CONFIGS = {
    "sgd": (SGD, {"lr": 0.05}),
    "sgd-momentum": (SGD, {"lr": 0.02, "momentum": 0.9}),
    "sgd-dampening": (SGD, {"lr": 0.02, "momentum": 0.9, "dampening": 0.3}),
    "sgd-nesterov": (SGD, {"lr": 0.02, "momentum": 0.9, "nesterov": True}),
    "sgd-wd": (SGD, {"lr": 0.05, "weight_decay": 0.05}),
    "sgd-momentum-wd": (SGD, {"lr": 0.02, "momentum": 0.8, "weight_decay": 0.05}),
    "sgd-nesterov-wd": (SGD, {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    "sgd-maximize-wd": (SGD, {"lr": 0.02, "momentum": 0.5, "maximize": True, "weight_decay": 0.01}),
    "sgd-foreach": (
        SGD,
        {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "foreach": True},
    ),
    "adam": (Adam, {"lr": 1e-3}),
    "adam-l2": (Adam, {"lr": 1e-3, "weight_decay": 0.01}),
    "adam-amsgrad": (Adam, {"lr": 1e-3, "amsgrad": True, "betas": (0.8, 0.99)}),
    "adam-maximize": (Adam, {"lr": 1e-3, "maximize": True, "weight_decay": 0.01}),
    "adam-foreach": (Adam, {"lr": 1e-3, "foreach": True, "eps": 1e-6}),
    "adam-fused": (Adam, {"lr": 1e-3, "fused": True}),
    "adamw": (AdamW, {"lr": 1e-3, "weight_decay": 0.1}),
    "adamw-amsgrad": (AdamW, {"lr": 1e-3, "weight_decay": 0.5, "amsgrad": True}),
    "adamw-fused": (AdamW, {"lr": 1e-3, "weight_decay": 0.1, "fused": True}),
}


def _run(name, steps=1000, clip=False, schedule=False, maximize_loss=False):
    cls, kwargs = CONFIGS[name]
    # 68,000 parameters: the float32 rounding of the parameters (what the snapshot
    # sees, and the derived update does not) averages out below 1e-4 in the norm
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(10, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 1)
    )
    opt = cls(model.parameters(), **kwargs)
    sched = None
    if schedule:  # down to a tenth: near lr = 0 every update is below float32 rounding
        eta_min = kwargs["lr"] / 10
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=eta_min)
    snapshot = WeightChangeDFA(window=200, stride=50, method="snapshot")
    derived = WeightChangeDFA(window=200, stride=50, method="optimizer")
    snapshot.attach(opt)
    derived.attach(opt)
    gen = torch.Generator().manual_seed(1)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    for _ in range(steps):
        x = torch.randn(16, 10, generator=gen)
        loss = sign * nn.functional.mse_loss(model(x), torch.sin(x[:, :1]))
        opt.zero_grad()
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        if sched is not None:
            sched.step()  # after the step: the hook read this step's learning rate
    return snapshot, derived


@pytest.mark.parametrize("name", list(CONFIGS))
def test_derived_norm_matches_the_snapshot_every_step(name):
    snapshot, derived = _run(name, clip=name.endswith("wd"), schedule=name.startswith("adam"))
    assert derived.method_in_use == "optimizer-state"
    assert derived.snapshot_bytes == 0
    assert snapshot.step_count == derived.step_count == 1000
    np.testing.assert_allclose(derived.get_signal(), snapshot.get_signal(), rtol=1e-4)
    assert len(derived.history) == 17
    np.testing.assert_allclose(derived.history, snapshot.history, atol=1e-3)


def test_unsupported_optimizer_falls_back_with_a_reason():
    model = nn.Linear(3, 1)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01)
    m = WeightChangeDFA(window=50)
    with pytest.warns(WCDFAWarning, match="RMSprop is not SGD, Adam or AdamW"):
        m.attach(opt)
    assert m.method_in_use == "snapshot"
    assert "method=snapshot" in repr(m) or not m.ready


def test_snapshot_method_is_silent_and_sample_mode_uses_the_snapshot():
    model = nn.Linear(3, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = WeightChangeDFA(window=50, method="snapshot")
        m.attach(torch.optim.RMSprop(model.parameters()))
    assert m.method_in_use == "snapshot"
    s = WeightChangeDFA(window=50, sample=0.5)
    s.attach(torch.optim.Adam(model.parameters()))
    assert s.method_in_use == "snapshot"


def test_derived_per_group_norms_and_lr_normalisation_match_the_snapshot():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = AdamW(
        [
            {"params": model[0].parameters(), "lr": 1e-3},
            {"params": model[2].parameters(), "lr": 3e-3},
        ],
        weight_decay=0.1,
    )
    kw = {"window": 60, "stride": 30, "groups": "module", "normalize": "lr"}
    snap = WeightChangeDFA(**kw, method="snapshot")
    der = WeightChangeDFA(**kw, method="optimizer")
    snap.attach(opt, model=model)
    der.attach(opt, model=model)
    gen = torch.Generator().manual_seed(3)
    for _ in range(80):
        x = torch.randn(16, 10, generator=gen)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), x[:, :1]).backward()
        opt.step()
    np.testing.assert_allclose(der.get_signal(), snap.get_signal(), rtol=1e-4)
    for name, values in snap.get_group_signals().items():
        np.testing.assert_allclose(der.get_group_signals()[name], values, rtol=1e-4)


def test_step_skipped_by_grad_scaler_records_nothing_with_derived_norms():
    torch.manual_seed(4)
    model = nn.Linear(4, 1)
    opt = Adam(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu")
    m = WeightChangeDFA(window=50, method="optimizer")
    m.attach(opt)
    for step in range(4):
        opt.zero_grad()
        scaler.scale(model(torch.randn(8, 4)).square().mean()).backward()
        if step == 2:
            model.weight.grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
    assert m.step_count == 3
    assert m.method_in_use == "optimizer-state"


def test_auto_picks_the_faster_snapshot_on_the_cpu_while_it_fits(monkeypatch):
    import wcdfa.measure

    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
    m = WeightChangeDFA(window=50)
    m.attach(Adam(model.parameters(), lr=1e-3))
    assert m.method_in_use == "snapshot"
    assert m.method_reason.startswith("snapshot (CPU: 2-4x faster than the derivation")
    monkeypatch.setattr(wcdfa.measure, "AUTO_MEMORY_SHARE", 1e-12)  # as if memory were short
    tight = WeightChangeDFA(window=50)
    tight.attach(Adam(model.parameters(), lr=1e-3))
    assert tight.method_in_use == "optimizer-state"
    assert tight.snapshot_bytes == 0
    assert "would take over" in tight.method_reason
    explicit = WeightChangeDFA(window=50, method="optimizer")
    explicit.attach(Adam(model.parameters(), lr=1e-3))
    assert explicit.method_in_use == "optimizer-state"
    assert explicit.method_reason is None  # no choice was made
