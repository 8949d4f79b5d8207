"""wcdfa.control: WW-PGD projection against the reference algorithm, gaps, actions."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wcdfa import TrainingMonitor, WeightChangeDFA, dfa  # noqa: E402
from wcdfa.control import (  # noqa: E402
    GapSchedule,
    Project,
    SaveCheckpoint,
    ScaleLR,
    SpectralProjection,
    Stop,
    TriggerGap,
    hardness,
    project_weight,
    retention,
)
from wcdfa.spectral import analyze  # noqa: E402


def reference_projection(w, xmin, detx_num, h, *, q=1.0, min_tail=5, use_detx=True):
    """The published WW-PGD steps, written from their description, in float64 numpy."""
    w2 = w.reshape(w.shape[0], -1)
    u, s, vt = np.linalg.svd(w2, full_matrices=False)
    s = np.maximum(s, 1e-8)
    lam = s**2
    n = lam.size
    thr = xmin * (1 - 1e-6)  # xmin is an eigenvalue: in the tail to its last bits
    if use_detx and detx_num > 0:
        in_tail = int((lam >= thr).sum())
        if in_tail > 0:
            k = max(1, int(0.5 * (max(1, min(n, in_tail)) + max(1, min(n, detx_num)))))
            thr = max(thr, lam[k - 1])
    mask = lam >= thr
    k = int(mask.sum())
    if k < min_tail:
        return w
    tail = lam[mask]
    mu = np.arange(1, k + 1, dtype=np.float64) ** (-q)
    total = np.log(tail).sum()
    target = np.exp((total - np.log(mu).sum()) / k) * mu
    eta = 0.25 * h
    g = np.log(tail + 1e-8) - np.log(target + 1e-8)
    new = tail * np.clip((1 - eta * g) / (1 + eta * g), 0.1, 10.0)
    new = new * np.exp((total - np.log(new + 1e-8).sum()) / k)
    s_new = s.copy()
    s_new[mask] = np.sqrt(np.maximum(new, 1e-8))
    beta = 0.5 * h
    return ((1 - beta) * w2 + beta * (u * s_new) @ vt).reshape(w.shape)


@pytest.fixture(scope="module")
def trained():
    """An MLP trained on scikit-learn's digits (no download) to a heavy-tailed state."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def _copy(model, dtype=torch.float32):
    return copy.deepcopy(model).to(dtype)


# weightwatcher 0.7.7 builds its table with a pandas call that pandas deprecates
@pytest.mark.filterwarnings("ignore:Passing a dict to DataFrame.from_records")
def test_projected_weights_equal_the_reference_algorithm_with_weightwatchers_tail(trained):
    ww = pytest.importorskip("weightwatcher")
    details = ww.WeightWatcher(model=_copy(trained, torch.float64)).analyze(detX=True)
    rows = {str(row["longname"]): row for _, row in details.iterrows()}
    ours = {r.name: r for r in SpectralProjection(_copy(trained)).project(epoch=0)}
    assert sorted(ours) == sorted(rows) == ["0", "2", "4"]
    for name, row in rows.items():
        # our fit finds weightwatcher's tail (the reference's input): xmin (to the
        # float32 SVD of the float32 model: 1e-6) and detX_num
        assert ours[name].xmin == pytest.approx(row["xmin"], rel=1e-6)
        assert ours[name].detx_num == int(row["detX_num"])
        weight = dict(trained.named_parameters())[f"{name}.weight"].detach()
        w = weight.double().numpy()
        for epoch in range(3):  # hardness 0.2, 0.4, 0.6
            h = hardness(epoch)
            expected = reference_projection(w, row["xmin"], int(row["detX_num"]), h)
            for dtype, tolerance in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
                # the same xmin and detX_num in: the same weights out
                new, record = project_weight(
                    weight.to(dtype), h, xmin=row["xmin"], detx_num=int(row["detX_num"])
                )
                assert record.skipped is None
                assert new.dtype == dtype
                got = new.double().numpy()
                error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
                assert error < tolerance, (name, dtype, epoch, error)
                # and the change is well above the tolerance (0.14 % at hardness 0.2)
                assert np.linalg.norm(got - w) > 50 * tolerance * np.linalg.norm(w)


def test_repeated_projection_moves_each_layers_alpha_toward_two(trained):
    model = _copy(trained)
    before = {r.name: r.alpha for r in analyze(model)}
    projection = SpectralProjection(model)
    for _ in range(8):
        projection.project()
    after = {r.name: r.alpha for r in analyze(model)}
    far = [name for name, a in before.items() if abs(a - 2) > 0.2]
    assert far  # the first and last layer start at 2.31 and 2.34
    for name in far:
        assert abs(after[name] - 2) < abs(before[name] - 2) - 0.03, (name, before, after)
    assert projection.metrics()["projection/hardness"] == 1.0
    assert projection.calls == 8


def test_hardness_ramps_like_the_reference():
    assert [hardness(e) for e in range(7)] == [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0]
    assert [hardness(e, warmup_epochs=2, ramp_epochs=2) for e in range(5)] == [0, 0, 0.5, 1, 1]


def test_a_short_tail_or_non_finite_weight_is_left_alone():
    torch.manual_seed(0)
    weight = torch.randn(6, 6)
    new, record = project_weight(weight, 1.0, min_tail=7)  # 6 values never make 7
    assert new is None
    assert record.skipped == f"tail of {record.tail} < min_tail=7"
    assert record.tail <= 6
    bad = weight.clone()
    bad[0, 0] = math.nan
    new, record = project_weight(bad, 1.0)
    assert new is None
    assert record.skipped == "non-finite"


def test_moments_are_kept_reset_or_rescaled(trained):
    results = {}
    for moments in ("keep", "reset", "rescale"):
        model = _copy(trained)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        model(torch.randn(4, 64)).sum().backward()
        opt.step()
        first = {p: opt.state[p]["exp_avg"].clone() for p in model.parameters()}
        second = {p: opt.state[p]["exp_avg_sq"].clone() for p in model.parameters()}
        SpectralProjection(model, optimizer=opt, moments=moments).project(epoch=4)  # h = 1
        weight = model[0].weight
        results[moments] = (opt.state[weight], first[weight], second[weight])
        bias = model[0].bias  # not projected: untouched
        assert torch.equal(opt.state[bias]["exp_avg"], first[bias])
    state, first, second = results["keep"]
    assert torch.equal(state["exp_avg"], first)
    assert torch.equal(state["exp_avg_sq"], second)
    state, _, _ = results["reset"]
    assert not state["exp_avg"].any()
    assert not state["exp_avg_sq"].any()
    assert float(state["step"]) == 0.0
    state, first, second = results["rescale"]
    assert torch.allclose(state["exp_avg"], first * 0.5)  # 1 - β at hardness 1
    assert torch.equal(state["exp_avg_sq"], second)


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="`moments`"):
        SpectralProjection(moments="zero")
    with pytest.raises(ValueError, match="`moments`='reset' needs the optimizer"):
        SpectralProjection(moments="reset")
    with pytest.raises(ValueError, match=r"`blend` must be in \(0, 1\]"):
        SpectralProjection(blend=1.5)
    with pytest.raises(ValueError, match="`q` must be > 0"):
        SpectralProjection(q=0)
    with pytest.raises(ValueError, match="needs the model"):
        SpectralProjection().project()


def test_the_projection_runs_on_a_training_monitors_schedule_and_resumes(trained):
    model = _copy(trained)
    projection = SpectralProjection(every=5)
    monitor = TrainingMonitor(model, [WeightChangeDFA(window=50, stride=10), projection])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor.attach(opt)
    x = torch.randn(32, 64)
    for _ in range(12):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    assert [step for step, _ in projection.history] == [5, 10]
    assert [e.step for e in monitor.events if e.kind == "projected"] == [5, 10]
    metrics = monitor.metrics()
    assert metrics["projection/hardness"] == pytest.approx(0.4)
    assert metrics["projection/layers"] == 3
    again = SpectralProjection(every=5)
    again.load_state_dict(projection.state_dict())
    assert again.calls == 2
    assert again.state_dict() == projection.state_dict()
    with pytest.raises(ValueError, match=r"wcdfa\.projection/1"):
        again.load_state_dict({"format": "other"})


# ------------------------------------------------------------------ gaps


def _run_gaps(schedule, steps=400, *, window=100, method="snapshot", seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = WeightChangeDFA(window=window, stride=20, method=method)
    monitor.attach(opt)
    if schedule is not None:
        schedule.attach(opt, monitor)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 8, generator=gen)
        opt.zero_grad()
        (model(x) - x[:, :4]).pow(2).mean().backward()
        opt.step()
    return monitor, model, opt


def test_a_fraction_schedule_spreads_its_gaps_evenly():
    schedule = GapSchedule("noise", fraction=0.25)
    assert [k for k in range(1, 17) if schedule.is_gap(k)] == [4, 8, 12, 16]
    burst = GapSchedule("lr", every=10, length=3, start=5)
    assert [k for k in range(1, 30) if burst.is_gap(k)] == [6, 7, 8, 16, 17, 18, 26, 27, 28]
    assert sum(GapSchedule("noise", fraction=0.4).is_gap(k) for k in range(1, 1001)) == 400


def test_noise_gaps_are_tagged_measured_and_left_out_of_alpha_clean():
    schedule = GapSchedule("noise", fraction=0.1, size=0.5)
    monitor, _, _ = _run_gaps(schedule)
    gaps = monitor.tagged_steps["gap"]
    assert gaps == schedule.gap_steps == list(range(10, 401, 10))
    steps, norms = monitor.get_norm_record()
    tagged = np.isin(steps, gaps)
    # a relative-noise step moves the weights far more than an SGD step
    assert norms[tagged].min() > 5 * np.median(norms[~tagged])
    # the clean window: the last 100 untagged samples (from step 289), in the state
    state = monitor.state_dict()
    clean = np.asarray(state["clean_signal"])
    assert state["clean_steps"] == [k for k in range(1, 401) if k % 10][-100:]
    assert monitor.alpha_clean_steps[-1] == 400
    assert monitor.alpha_clean == pytest.approx(dfa(clean, ci=None).alpha, rel=1e-12)
    assert monitor.alpha_clean != pytest.approx(monitor.alpha, abs=1e-3)
    assert monitor.metrics()["wcdfa/alpha_clean"] == monitor.alpha_clean


def test_lr_pulse_is_restored_after_the_monitors_hook_and_before_the_scheduler():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = GapSchedule("lr", every=3, size=10.0)
    monitor = WeightChangeDFA(window=50, method="optimizer")
    schedule.attach(opt, monitor)  # before the monitor: its restore still runs after it
    monitor.attach(opt)
    seen = []  # the rate a post-hook registered after both sees
    opt.register_step_post_hook(lambda o, a, k: seen.append(o.param_groups[0]["lr"]))
    x = torch.randn(8, 4)
    real, rates = [], []
    for _ in range(6):
        before = [p.detach().clone() for p in model.parameters()]
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
        rates.append(opt.param_groups[0]["lr"])  # what a scheduler would read
        with torch.no_grad():
            real.append(
                math.sqrt(
                    sum(
                        float(((p - b) ** 2).sum())
                        for p, b in zip(model.parameters(), before, strict=True)
                    )
                )
            )
    assert rates == [0.1] * 6  # restored after every step
    assert seen == pytest.approx([1.0, 0.1, 0.1, 1.0, 0.1, 0.1])  # pulsed during steps 1, 4
    # the derived ‖ΔW‖ read the pulsed rate: it equals the real change on every step
    _, norms = monitor.get_norm_record()
    assert norms == pytest.approx(real, rel=1e-5)
    assert monitor.tagged_steps == {"gap": [1, 4]}


def test_objective_gaps_step_on_the_users_objective():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    target = torch.tensor([[1.0, -2.0, 0.5]])
    schedule = GapSchedule(
        "objective", every=2, objective=lambda: (model.weight - target).pow(2).sum()
    )
    schedule.attach(opt)
    changes = []
    for _ in range(2):
        before = model.weight.detach().clone()
        opt.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        changes.append((before, model.weight.detach().clone()))
    # step 1 opens a burst (a gap): its gradient is 2 (W - target), not the ones
    before, after = changes[0]
    assert torch.allclose(after, before - 0.1 * 2 * (before - target))
    before, after = changes[1]  # step 2 is an ordinary step
    assert torch.allclose(after, before - 0.1)
    assert schedule.gap_steps == [1]


def test_noise_gaps_refuse_a_monitor_that_cannot_see_them():
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = WeightChangeDFA(window=50, method="optimizer")
    monitor.attach(opt)
    with pytest.raises(ValueError, match="cannot see a 'noise' gap"):
        GapSchedule("noise", fraction=0.5).attach(opt, monitor)


def test_a_resumed_noise_schedule_draws_what_an_uninterrupted_one_draws(tmp_path):
    def train(schedule, model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            model(torch.ones(3, 4)).square().sum().backward()
            opt.step()

    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        schedule = GapSchedule("noise", fraction=0.5, size=0.1, seed=3)
        schedule.attach(opt)
        return schedule, model, opt

    schedule, model, opt = fresh()  # 20 steps straight
    train(schedule, model, opt, 20)
    straight = model.weight.detach().clone()
    schedule, model, opt = fresh()  # 10 steps, a checkpoint, a new process's objects, 10 more
    train(schedule, model, opt, 10)
    torch.save(
        {"gaps": schedule.state_dict(), "model": model.state_dict(), "opt": opt.state_dict()},
        tmp_path / "ckpt.pt",
    )
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    again, model, opt = fresh()
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    again.load_state_dict(ckpt["gaps"])
    train(again, model, opt, 10)
    assert again.gap_steps == list(range(2, 21, 2))
    assert torch.equal(model.weight, straight)  # the same noise, bit for bit
    restarted, model, opt = fresh()  # without the generators' state the noise differs
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    restarted.load_state_dict({k: v for k, v in ckpt["gaps"].items() if k != "noise_state"})
    train(restarted, model, opt, 10)
    assert not torch.allclose(model.weight, straight, atol=1e-3)
    with pytest.raises(ValueError, match=r"state\['noise_state'\]\['cpu'\] is not a generator"):
        again.load_state_dict({**ckpt["gaps"], "noise_state": {"cpu": [1, 2, 3]}})


def test_gap_settings_are_checked():
    with pytest.raises(ValueError, match="exactly one of `fraction` and `every`"):
        GapSchedule("noise")
    with pytest.raises(ValueError, match=r"`fraction` must be in \(0, 1\]"):
        GapSchedule("noise", fraction=1.5)
    with pytest.raises(ValueError, match="`kind`"):
        GapSchedule("dropout", fraction=0.5)
    with pytest.raises(TypeError, match="`objective` must be callable"):
        GapSchedule("objective", fraction=0.5)
    with pytest.raises(ValueError, match="`tag` must be a non-empty str"):
        WeightChangeDFA().mark("")


def test_retention_is_the_share_of_the_effect_the_clean_steps_keep():
    assert retention(1.84, 1.02, 1.0631) == pytest.approx((1.0631 - 1.84) / (1.02 - 1.84))
    assert math.isnan(retention(1.0, 1.0, 0.9))
    assert math.isnan(retention(1.0, 0.8, None))
    base, _, _ = _run_gaps(None)
    noisy, _, _ = _run_gaps(GapSchedule("noise", fraction=0.1, size=0.5))
    expected = (noisy.alpha_clean - base.alpha) / (noisy.alpha - base.alpha)
    assert retention(base, noisy) == pytest.approx(expected)


# --------------------------------------------------------------- actions


def _white_noise_run(monitor, steps=60):
    """Feed white noise through the host's step: a regime_change fires at step 50."""
    rng = np.random.default_rng(0)
    for value in rng.random(steps) + 0.5:
        monitor["wcdfa"].update(float(value))
        monitor.step()


def test_actions_act_on_the_events_they_are_given(tmp_path, trained):
    model = _copy(trained)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = TrainingMonitor(probes=[WeightChangeDFA(window=50, stride=10)])
    scale = ScaleLR(opt, 0.5, min_lr=0.03)
    schedule = GapSchedule("noise", every=1000, start=10**6)
    projection = SpectralProjection(model)
    save = SaveCheckpoint(tmp_path / "ckpt-{kind}-{step}.pt", {"model": model, "opt": opt})
    stop = Stop(monitor)
    for handler in (scale, TriggerGap(schedule, 3), Project(projection), save, stop):
        monitor.on_event(handler, kind="regime_change")
    _white_noise_run(monitor)
    (event,) = [e for e in monitor.events if e.kind == "regime_change"]
    assert event.step == 50
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    scale(event)  # a handler is a plain callable: again, down to the floor
    assert opt.param_groups[0]["lr"] == pytest.approx(0.03)
    assert schedule.forced == 3
    assert projection.calls == 1
    assert projection.history[0][0] == 50
    assert save.saved[0].name == "ckpt-regime_change-50.pt"
    loaded = torch.load(save.saved[0], weights_only=True)
    assert loaded["event"]["step"] == 50
    assert set(loaded) == {"model", "opt", "event"}
    assert monitor.stop_requested is event
    stop(event)
    assert len(stop.calls) == 1  # limit 1


def test_a_failing_handler_is_recorded_not_raised():
    monitor = TrainingMonitor(probes=[WeightChangeDFA(window=50, stride=10)])

    def broken(event):
        msg = "disk full"
        raise OSError(msg)

    monitor.on_event(broken, kind="regime_change")
    with pytest.warns(Warning, match="An event handler failed"):
        _white_noise_run(monitor)
    (failed,) = [e for e in monitor.events if e.kind == "failed"]
    assert failed.step == 50
    assert failed.detail["reason"] == "OSError: disk full"
    strict = TrainingMonitor(probes=[WeightChangeDFA(window=50, stride=10)], raise_errors=True)
    strict.on_event(broken)
    with pytest.raises(OSError, match="disk full"):
        _white_noise_run(strict)
