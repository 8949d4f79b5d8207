"""wcdfa.spectral.analyze and SpectralProbe against weightwatcher 0.7.7 and hand computation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ww = pytest.importorskip("weightwatcher")
# weightwatcher 0.7.7 builds its table with a pandas call that pandas deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Passing a dict to DataFrame.from_records")

from wcdfa import TrainingMonitor  # noqa: E402
from wcdfa.probes import SpectralProbe  # noqa: E402
from wcdfa.spectral import analyze, layer_spectrum  # noqa: E402

# weightwatcher's column -> ours
COLUMNS = {
    "alpha": "alpha",
    "xmin": "xmin",
    "D": "D",
    "sigma": "sigma",
    "num_pl_spikes": "num_tail",
    "detX_num": "detx_num",
    "ERG_gap": "detx_gap",
    "num_evals": "num_evals",
    "alpha_weighted": "alpha_hat",
    "log_norm": "log_norm",
    "log_spectral_norm": "log_spectral_norm",
    "log_alpha_norm": "log_alpha_norm",
    "stable_rank": "stable_rank",
    "entropy": "entropy",
    "lambda_max": "lambda_max",
}


def _train(model, inputs, targets, steps=60, lr=1e-2):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
    return model


def trained_mlp():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    return _train(model, torch.randn(512, 64), torch.randint(0, 10, (512,)))


def small_cnn():
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 5),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 8 * 8, 10),
    )
    return _train(model, torch.randn(64, 3, 16, 16), torch.randint(0, 10, (64,)), steps=20)


def tiny_gpt2():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        vocab_size=300, n_positions=32, n_embd=64, n_layer=2, n_head=4, attn_implementation="eager"
    )
    torch.manual_seed(2)
    return transformers.GPT2LMHeadModel(config)


@pytest.mark.parametrize("build", [trained_mlp, small_cnn, tiny_gpt2])
def test_every_layer_agrees_with_weightwatcher(build):
    model = build()
    details = ww.WeightWatcher(model=model).analyze(detX=True)
    ours = analyze(model, attention=False)
    assert ours.names == list(details["longname"])  # the same layers, in the same order
    compared = 0
    for (_, row), record in zip(details.iterrows(), ours, strict=True):
        assert record.num_evals == row["num_evals"]
        if row["num_evals"] < 20:
            continue  # the agreement contract: layers with at least 20 eigenvalues
        compared += 1
        for theirs, mine in COLUMNS.items():
            # 1e-6 relative; measured: at most 2e-13 (float64 Gram eigenvalues against
            # SciPy's SVD of the same float32 weights, then the same arithmetic)
            assert getattr(record, mine) == pytest.approx(row[theirs], rel=1e-6), (
                record.name,
                theirs,
            )
        assert (record.warning.split(";")[0] if record.warning else "") == row["warning"]
    assert compared >= 2


def test_small_spectra_follow_weightwatchers_small_sample_fit():
    from weightwatcher.WW_powerlaw import WWFit

    from wcdfa.spectral import fit_power_law

    rng = np.random.default_rng(3)
    for _ in range(200):
        evals = np.sort(np.exp(rng.standard_normal(int(rng.integers(8, 20)))))
        ours, theirs = fit_power_law(evals), WWFit(evals)
        assert ours.xmin == theirs.xmin
        assert ours.alpha == pytest.approx(theirs.alpha, rel=1e-12)
        assert ours.D == pytest.approx(theirs.D, rel=1e-12)
        assert ours.sigma == pytest.approx(theirs.sigma, rel=1e-12)
        assert ours.num_tail == np.count_nonzero(evals >= theirs.xmin)


def test_attention_in_projection_is_read_as_its_query_key_and_value_blocks():
    torch.manual_seed(4)
    layer = torch.nn.TransformerEncoderLayer(d_model=48, nhead=4, dim_feedforward=96)
    model = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    result = analyze(model)
    packed = model.layers[1].self_attn.in_proj_weight.detach().double().numpy()
    for i, part in enumerate("qkv"):
        record = result[f"layers.1.self_attn.in_proj_{part}"]
        block = packed[i * 48 : (i + 1) * 48]
        expected = np.sort(np.linalg.svd(block, compute_uv=False) ** 2)
        np.testing.assert_allclose(record.evals, expected, rtol=1e-10, atol=1e-14)
        assert record.shape == (48, 48)
    assert "layers.1.self_attn.out_proj" in result.names  # weightwatcher reads that one too
    assert not any("in_proj" in name for name in analyze(model, attention=False).names)


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0, 4.0, 6.0])
def test_a_matrix_with_a_known_power_law_spectrum_is_recovered(alpha):
    # W = U diag(sqrt(λ)) Vᵀ with λ drawn from a Pareto law of density ~ λ^-alpha
    # above 1: the fit must find alpha within 3 of its own sigma (a 0.3 % chance of
    # failing for an unbiased fit; seeded: measured -2.8, -1.6, -0.4, +0.04 and +0.8
    # sigma; the -2.8 at alpha = 6, where KS picks a short tail of a steep law).
    rng = np.random.default_rng(int(alpha * 10))
    m = 600
    lam = (1.0 - rng.random(m)) ** (-1.0 / (alpha - 1.0))
    u, _ = np.linalg.qr(rng.standard_normal((800, m)))
    v, _ = np.linalg.qr(rng.standard_normal((m, m)))
    layer = torch.nn.Linear(m, 800, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy((u * np.sqrt(lam)) @ v.T))
    record = analyze(layer)[0]
    assert abs(record.alpha - alpha) < 3 * record.sigma, (record.alpha, record.sigma)


def test_float32_and_svd_routes_agree_with_the_float64_path():
    model = trained_mlp()
    exact = analyze(model)
    for kwargs in ({"dtype": torch.float32}, {"method": "svd"}):
        other = analyze(model, **kwargs)
        for a, b in zip(exact, other, strict=True):
            # the device path's contract: 1e-3 on α (measured 6e-5 in float32)
            assert b.alpha == pytest.approx(a.alpha, rel=1e-3), (a.name, kwargs)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights_are_read_as_the_values_they_hold(dtype):
    torch.manual_seed(8)
    layer = torch.nn.Linear(40, 60).to(dtype)
    record = analyze(layer)[0]
    exact = np.linalg.svd(layer.weight.detach().double().numpy(), compute_uv=False) ** 2
    np.testing.assert_allclose(record.evals, np.sort(exact), rtol=1e-10, atol=1e-14)


def test_layer_selection_and_bad_arguments_name_what_is_wrong():
    model = trained_mlp()
    assert analyze(model, layers=["2"]).names == ["2"]
    assert analyze(model, layers=[torch.nn.Linear]).names == ["0", "2", "4"]
    assert analyze(model, min_evals=100).names == ["2"]  # "0" has 64 eigenvalues
    with pytest.raises(ValueError, match=r"`layers` names \['nope'\].*\['0', '2', '4'\]"):
        analyze(model, layers=["nope"])
    with pytest.raises(
        ValueError, match=r"`method` must be one of \('gram', 'svd'\), but got 'qr'"
    ):
        analyze(model, method="qr")
    with pytest.raises(ValueError, match="`min_evals` must be an integer >= 1, but got 0"):
        analyze(model, min_evals=0)
    with pytest.raises(TypeError, match="module names or module types, but got 3"):
        analyze(model, layers=[3])


def test_a_record_prints_as_a_table_and_converts_to_plain_values():
    result = analyze(trained_mlp())
    table = str(result).splitlines()
    assert table[0].split()[:4] == ["name", "shape", "num_evals", "alpha"]
    assert [line.split()[0] for line in table[1:]] == ["0", "2", "4"]
    row = result["2"].as_dict()
    assert row["shape"] == [128, 256]
    assert "evals" not in row
    summary = result.summary()
    assert summary["alpha"] == pytest.approx(np.mean([r.alpha for r in result]))


def test_a_failed_fit_is_a_warning_not_a_crash():
    record = layer_spectrum(np.array([0.0, 1e-9, 2.0]), name="tiny")
    assert np.isnan(record.alpha)
    assert record.warning.startswith("fit failed")
    record = layer_spectrum(np.array([1.0, np.nan, 2.0]), name="nan")
    assert record.warning == "fit failed: non-finite"


def _sgd_run(model, probe=None, steps=30):
    torch.manual_seed(5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = TrainingMonitor(model, [probe]) if probe else None
    if monitor:
        monitor.attach(optimizer)
    x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
    for step in range(steps):
        batch = slice((step * 32) % 256, (step * 32) % 256 + 32)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    return monitor


def test_the_probe_reads_every_layer_on_schedule_with_events_and_metrics():
    model = trained_mlp()
    monitor = _sgd_run(model, SpectralProbe(every=10))
    probe = monitor["spectral"]
    assert [step for step, _ in probe.history] == [10, 20, 30]
    reading = probe.history[-1][1]
    exact = analyze(model, min_evals=20)
    assert sorted(reading) == sorted(exact.names) == ["0", "2"]  # "4" has 10 eigenvalues
    for record in exact:
        assert reading[record.name]["alpha"] == pytest.approx(record.alpha, rel=1e-12)
    metrics = monitor.metrics()
    assert metrics["spectral/alpha/0"] == reading["0"]["alpha"]
    assert metrics["spectral/alpha_mean"] == pytest.approx(np.mean([r.alpha for r in exact]))
    assert metrics["spectral/layers"] == 2.0
    kinds = {(e.kind, e.detail["layer"]) for e in probe.events}
    bands = {r.name: r.warning.split(";")[0] for r in analyze(model, min_evals=20)}
    for layer, band in bands.items():
        if band:  # out of the band at the first reading: one event for it
            assert (band.replace("-", "_"), layer) in kinds


def test_band_crossings_fire_once_each_way():
    probe = SpectralProbe(every=1, bounds=(2.0, 6.0))
    layer = torch.nn.Linear(300, 400, bias=False)
    rng = np.random.default_rng(6)
    u, _ = np.linalg.qr(rng.standard_normal((400, 300)))
    v, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    for step, alpha in enumerate([3.0, 3.0, 1.4, 1.4, 3.0], start=1):
        lam = (1.0 - np.random.default_rng(step).random(300)) ** (-1.0 / (alpha - 1.0))
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy((u * np.sqrt(lam)) @ v.T))
        probe.observe(layer, step)
    assert [(e.step, e.kind) for e in probe.events] == [(3, "over_trained"), (5, "in_band")]


def test_the_probe_state_survives_torch_save_and_load(tmp_path):
    model = trained_mlp()
    monitor = _sgd_run(model, SpectralProbe(every=10))
    path = tmp_path / "state.pt"
    torch.save(monitor.state_dict(), path)
    fresh = TrainingMonitor(model, [SpectralProbe(every=10)])
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert fresh.metrics() == monitor.metrics()
    assert fresh["spectral"].history == monitor["spectral"].history
    assert fresh.events == monitor.events
    before = fresh["spectral"].history
    with pytest.raises(ValueError, match="'history' has a bad reading at step 10"):
        fresh["spectral"].load_state_dict(
            {"format": "wcdfa.spectral/1", "history": [[10, {"0": {"alpha": 1.0}}]]}
        )
    assert fresh["spectral"].history == before


def test_training_is_bit_identical_with_and_without_the_probe():
    plain, probed = trained_mlp(), trained_mlp()
    _sgd_run(plain)
    _sgd_run(probed, SpectralProbe(every=3))
    for a, b in zip(plain.parameters(), probed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_plots_show_every_layer_and_the_fitted_tail(tmp_path):
    model = trained_mlp()
    monitor = _sgd_run(model, SpectralProbe(every=10))
    probe = monitor["spectral"]
    _, ax = probe.plot(save_path=tmp_path / "alpha.png")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "2"]
    assert (tmp_path / "alpha.png").stat().st_size > 0
    _, ax = probe.plot_esd("0")
    record = probe.latest["0"]
    assert f"α = {record.alpha:.2f}" in [t.get_text() for t in ax.get_legend().get_texts()][1]
    _, axes = monitor.plot(show=False)
    assert len(axes) == 1


def test_analyze_stays_the_function_once_its_module_is_loaded():
    import importlib

    import wcdfa.spectral

    importlib.import_module("wcdfa.spectral.analysis")  # the probe loads it
    assert callable(wcdfa.spectral.analyze)
    assert wcdfa.spectral.analyze(torch.nn.Linear(30, 40)).names == [""]
