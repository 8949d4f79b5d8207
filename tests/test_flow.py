"""FlowProbe on a small residual MLP against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from wcdfa import TrainingMonitor  # noqa: E402
from wcdfa.audit import flags, threshold_sensitivity  # noqa: E402
from wcdfa.probes import FlowProbe  # noqa: E402


class Block(nn.Module):
    def __init__(self, width, scale=1.0, dropout=0.0):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)
        self.scale = scale

    def forward(self, x):
        return self.scale * (x + torch.tanh(self.drop(self.linear(x))))


class ResMLP(nn.Module):
    def __init__(self, scale=1.0, dropout=0.0, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.inp = nn.Linear(8, 16)
        self.blocks = nn.ModuleList([Block(16, scale, dropout) for _ in range(4)])
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def _batch(seed=1, n=32):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def _hand(model, x, y, train=False):
    """Block outputs, their loss gradients and the blocks' parameter gradients, by hand."""
    model.train(train)
    h = model.inp(x)
    outs = []
    for block in model.blocks:
        h = block(h)
        h.retain_grad()
        outs.append(h)
    loss = nn.functional.cross_entropy(model.head(h), y)
    model.zero_grad()
    loss.backward()
    acts = [float(o.detach().norm(dim=1).median()) for o in outs]
    grads = [float(o.grad.norm()) for o in outs]
    params = [
        float(torch.sqrt(sum(p.grad.norm() ** 2 for p in b.parameters()))) for b in model.blocks
    ]
    model.zero_grad()
    return acts, grads, params


def test_norms_growth_and_gradients_match_hand_computation():
    model = ResMLP()
    x, y = _batch()
    probe = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy)
    reading = probe.observe(model, 1)
    acts, grads, params = _hand(model, x, y)
    assert reading["blocks"] == [f"blocks.{i}" for i in range(4)]
    # 1e-6: the same float32 forward and backward (measured: equal to the last bit)
    np.testing.assert_allclose(reading["activations"], acts, rtol=1e-6)
    np.testing.assert_allclose(reading["gradients"], grads, rtol=1e-6)
    np.testing.assert_allclose(reading["param_gradients"], params, rtol=1e-6)
    growth = np.array(acts[1:]) / np.array(acts[:-1])
    assert reading["max_growth"] == pytest.approx(growth.max(), rel=1e-6)
    assert reading["end_to_end"] == pytest.approx(acts[-1] / acts[0], rel=1e-6)
    assert reading["deepest_gradient"] == pytest.approx(grads[0], rel=1e-6)
    metrics = probe.metrics()
    assert metrics["flow/growth/blocks.2"] == pytest.approx(growth[1], rel=1e-6)
    assert metrics["flow/growth_flag"] == 0.0


def test_the_probes_backward_leaves_every_grad_alone():
    model = ResMLP()
    x, y = _batch()
    nn.functional.cross_entropy(model(x), y).backward()
    before = [p.grad.clone() for p in model.parameters()]
    FlowProbe((x, y), loss_fn=nn.functional.cross_entropy).observe(model, 1)
    assert all(torch.equal(a, p.grad) for a, p in zip(before, model.parameters(), strict=True))
    assert model.training  # the mode is restored


def test_flag_a_fires_on_blocks_that_grow_100x_and_not_on_a_healthy_net():
    x, y = _batch()
    healthy = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy)
    healthy.observe(ResMLP(), 10)
    assert not healthy.history[-1][1]["growth_flag"]
    assert healthy.history[-1][1]["max_growth"] < 5  # as healthy backprop in the audit
    grown = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy)
    grown.observe(ResMLP(scale=100.0), 10)
    assert grown.history[-1][1]["max_growth"] == pytest.approx(100.0, rel=0.05)
    assert [(e.kind, e.step) for e in grown.events] == [("growth_flag", 10)]
    assert grown.first_fired["growth_flag"] == 10


def test_both_flags_are_the_degenerate_credit_signature_and_fire_once():
    x, y = _batch()
    # a floor above every gradient of this net: flag (b) fires with (a)
    probe = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy, floor=1e9)
    model = ResMLP(scale=100.0)
    for step in (1, 2):
        probe.observe(model, step)
    assert [(e.kind, e.step) for e in probe.events] == [
        ("growth_flag", 1),
        ("floor_flag", 1),
        ("degenerate_credit", 1),
    ]
    relative = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy, relative=True, floor=0.5)
    reading = relative.observe(ResMLP(scale=0.01), 1)
    _, grads, _ = _hand(ResMLP(scale=0.01), x, y)
    assert reading["deepest_gradient"] == pytest.approx(grads[0] / grads[-1], rel=1e-6)
    assert reading["floor_flag"] == (grads[0] / grads[-1] < 0.5)


def test_k_batches_report_their_spread():
    model = ResMLP()
    batches = [_batch(seed) for seed in (1, 2, 3)]
    reading = FlowProbe(batches, loss_fn=nn.functional.cross_entropy).observe(model, 1)
    per = [_hand(model, x, y) for x, y in batches]
    growths = [max(np.array(a[1:]) / np.array(a[:-1])) for a, _, _ in per]
    assert reading["max_growth"] == pytest.approx(np.mean(growths), rel=1e-6)
    assert reading["max_growth_std"] == pytest.approx(np.std(growths), rel=1e-5)
    assert reading["deepest_gradient_std"] == pytest.approx(
        np.std([g[0] for _, g, _ in per]), rel=1e-5
    )


def test_training_is_bit_identical_with_and_without_the_probe():
    def train(probe=None):
        model = ResMLP(dropout=0.2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        if probe:
            TrainingMonitor(model, [probe]).attach(optimizer)
        torch.manual_seed(9)
        for _ in range(12):
            x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        return model

    plain = train()
    probed = train(FlowProbe(_batch(), every=2, loss_fn=nn.functional.cross_entropy))
    for a, b in zip(plain.parameters(), probed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_sensitivity_and_state(tmp_path):
    x, y = _batch()
    probe = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy)
    for step, scale in ((10, 1.0), (20, 30.0), (30, 100.0)):
        probe.observe(ResMLP(scale=scale), step)
    table = probe.sensitivity(growths=(10.0, 50.0, 1000.0), floors=(1e-30,))
    assert table == {"growth": {10.0: 20, 50.0: 30, 1000.0: None}, "floor": {1e-30: None}}
    path = tmp_path / "flow.pt"
    torch.save(probe.state_dict(), path)
    fresh = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert fresh.metrics() == probe.metrics()
    assert fresh.events == probe.events
    assert fresh.first_fired == probe.first_fired
    with pytest.raises(ValueError, match="'firing' and 'first_fired' must name every flag"):
        fresh.load_state_dict({**probe.state_dict(), "firing": {}})


def test_blocks_by_name_and_type_and_clear_errors():
    model = ResMLP()
    x, y = _batch()
    named = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy, blocks=["inp", "blocks.3"])
    assert named.observe(model, 1)["blocks"] == ["inp", "blocks.3"]
    typed = FlowProbe(x, blocks=[Block])  # no loss_fn: activations only
    reading = typed.observe(model, 1)
    assert reading["blocks"] == [f"blocks.{i}" for i in range(4)]
    assert np.isnan(reading["deepest_gradient"])
    assert not reading["floor_flag"]
    with pytest.raises(ValueError, match=r"`blocks` names \['nope'\]"):
        FlowProbe(x, blocks=["nope"]).observe(model, 1)
    with pytest.raises(ValueError, match="no block stack"):
        FlowProbe(torch.randn(2, 3)).observe(nn.Linear(3, 3), 1)


def test_audit_helpers_on_plain_numbers():
    out = flags([1.0, 2.0, 200.0], [1e-9, 1e-3, 1.0])
    assert out["max_growth"] == 100.0
    assert out["end_to_end"] == 200.0
    assert out["growth_flag"]
    assert out["floor_flag"]
    assert out["degenerate"]
    table = threshold_sensitivity(
        [5, 6], [3.0, 60.0], [1e-3, 1e-8], growths=(50.0,), floors=(1e-7,)
    )
    assert table == {"growth": {50.0: 6}, "floor": {1e-7: 6}}


def _credit_run(make_optimizer, steps=6, updates=None):
    model = ResMLP()
    optimizer = make_optimizer(model.parameters())
    probe = FlowProbe(_batch(), every=3, loss_fn=nn.functional.cross_entropy)
    monitor = TrainingMonitor(model, [probe] if updates is None else [probe, updates])
    monitor.attach(optimizer)
    for step in range(steps):
        x, y = _batch(seed=10 + step)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return probe, monitor


def test_credit_alignment_is_one_under_plain_sgd_and_below_under_adam():
    probe, monitor = _credit_run(lambda p: torch.optim.SGD(p, lr=0.1))
    assert [s for s, _ in probe.history] == [3, 6]
    for _, reading in probe.history:
        # ΔW = -lr·g exactly: the cosine is 1 up to float32 rounding (measured 1 - 2e-8)
        np.testing.assert_allclose(reading["credit"], 1.0, atol=1e-6)
    assert monitor.metrics()["flow/credit_mean"] == pytest.approx(1.0, abs=1e-6)
    probe, _ = _credit_run(lambda p: torch.optim.Adam(p, lr=1e-2))
    credit = np.array(probe.history[-1][1]["credit"])
    # Adam's momentum (of earlier batches) and per-coordinate scaling turn the update
    # away from this step's gradient: measured -0.07 to -0.01 at step 6 here
    assert np.all(np.isfinite(credit))
    assert np.all(np.abs(credit) < 0.99)


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "nesterov+wd": lambda p: torch.optim.SGD(
        p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1
    ),
    "momentum+wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
    "adam+l2": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1),
    "adamw+amsgrad": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.5, amsgrad=True),
}


@pytest.mark.parametrize("method", ["snapshot", "optimizer"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_credit_from_the_monitors_measurer_equals_the_probes_own_copy(name, method):
    from wcdfa import WeightChangeDFA

    own, _ = _credit_run(OPTIMIZERS[name])
    updates = WeightChangeDFA(window=50, method=method)
    probe, _ = _credit_run(OPTIMIZERS[name], updates=updates)
    assert updates.method_in_use == {"snapshot": "snapshot", "optimizer": "optimizer-state"}[method]
    got = np.array([r["credit"] for _, r in probe.history])
    want = np.array([r["credit"] for _, r in own.history])
    assert got.shape == want.shape == (2, 4)
    # the same update from another source: float32 rounding of ΔW (measured up to 1.2e-7)
    np.testing.assert_allclose(got, want, atol=1e-6)
    if name != "sgd":  # momentum and Adam turn ΔW away from the gradient
        assert np.all(np.abs(want) < 0.99)
    if method == "optimizer":  # ΔW from the optimizer's state: no copy anywhere
        assert updates.snapshot_bytes == 0


def test_credit_from_a_sampled_snapshot_is_exact_where_the_update_is_the_gradient():
    from wcdfa import WeightChangeDFA

    # plain SGD: ΔW = -lr·g coordinate by coordinate, so any sample has cosine 1
    updates = WeightChangeDFA(window=50, method="snapshot", sample=0.25)
    probe, _ = _credit_run(OPTIMIZERS["sgd"], updates=updates)
    for _, reading in probe.history:
        np.testing.assert_allclose(reading["credit"], 1.0, atol=1e-6)


def test_a_rules_credit_is_compared_with_the_true_gradient_and_a_null_reference():
    model = ResMLP()
    x, y = _batch()

    def exact(m, inputs, targets, generator):
        # the true gradient itself (cosine 1); with a generator: random directions
        outs = []
        handles = [b.register_forward_hook(lambda mod, a, o: outs.append(o)) for b in m.blocks]
        with torch.enable_grad():
            loss = nn.functional.cross_entropy(m(inputs), targets)
            grads = torch.autograd.grad(loss, outs)
        for h in handles:
            h.remove()
        if generator is None:
            return list(grads)
        return [torch.randn(g.shape, generator=generator) for g in grads]

    probe = FlowProbe((x, y), loss_fn=nn.functional.cross_entropy, credit_fn=exact, null_draws=16)
    reading = probe.observe(model, 1)
    np.testing.assert_allclose(reading["rule_cosine"], 1.0, atol=1e-6)
    # random directions in 32 x 16 dimensions: cosine about 0 with std 1/sqrt(512) = 0.044
    assert np.all(np.abs(reading["null_cosine"]) < 0.05)
    assert np.all(
        (np.array(reading["null_cosine_std"]) > 0.02)
        & (np.array(reading["null_cosine_std"]) < 0.08)
    )
    assert probe.metrics()["flow/rule_cosine/blocks.0"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="`credit_fn` must be callable and needs `loss_fn`"):
        FlowProbe(x, credit_fn=exact)


def test_gradients_from_the_training_backward_match_that_steps_own_gradients():
    model = ResMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    probe = FlowProbe(_batch()[0], every=3, gradients="training")
    TrainingMonitor(model, [probe]).attach(optimizer)
    expected = {}
    for step in range(1, 7):
        x, y = _batch(seed=20 + step)
        if step % 3 == 0:  # the gradient w.r.t. each block's output, by hand, same weights
            twin = ResMLP()
            twin.load_state_dict(model.state_dict())
            _, grads, params = _hand(twin, x, y, train=True)
            expected[step] = (grads, params)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert [s for s, _ in probe.history] == [3, 6]
    for step, reading in probe.history:
        grads, params = expected[step]
        np.testing.assert_allclose(reading["gradients"], grads, rtol=1e-6)
        np.testing.assert_allclose(reading["param_gradients"], params, rtol=1e-6)
        assert np.isnan(reading["deepest_gradient_std"])  # one training batch
    with pytest.raises(ValueError, match=r"`gradients` must be one of \('probe', 'training'\)"):
        FlowProbe(_batch()[0], gradients="both")
