"""AttentionProbe: per-head entropies against hand computation from the returned weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wcdfa import TrainingMonitor  # noqa: E402
from wcdfa.attention import Crystallisation, convergence_steps, head_entropies  # noqa: E402
from wcdfa.attention.capture import reduce_entropy  # noqa: E402
from wcdfa.attention.compensation import compensation_test  # noqa: E402
from wcdfa.probes import AttentionProbe  # noqa: E402


def _causal(n):
    return np.tril(np.ones((n, n), bool))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 16, 17])
def test_uniform_and_one_hot_attention_give_one_and_zero(n):
    uniform = np.full((2, 3, 5, n), 1.0 / n)
    one_hot = np.zeros((2, 3, 5, n))
    one_hot[..., n // 2] = 1.0
    for reduce in (head_entropies, lambda p: _torch_means(torch.from_numpy(p))):
        u, o = reduce(uniform), reduce(one_hot)
        assert np.all(o == 0.0)
        if n & (n - 1) == 0:
            assert np.all(u == 1.0)  # powers of two: every step exact
        else:
            np.testing.assert_allclose(u, 1.0, rtol=0, atol=4e-16)  # float64 rounding


def _torch_means(probs, valid=None):
    sums, counts = reduce_entropy(probs, valid)
    return (sums / counts).numpy()


def test_masked_keys_padding_and_single_key_rows_never_count():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 2, 6, 6))
    valid = _causal(6)[None] & np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], bool)[:, None]
    probs = np.exp(np.where(valid[:, None], logits, -np.inf))
    probs /= probs.sum(-1, keepdims=True)
    ours = _torch_means(torch.from_numpy(probs), torch.from_numpy(valid))
    rows = []
    for b in range(2):
        for q in range(1, 6):  # query 0 sees one key: left out
            if b == 1 and q >= 4:
                continue  # padding queries
            keep = valid[b, q]
            p = probs[b, :, q][:, keep]
            rows.append(-(p * np.log(p)).sum(-1) / np.log(keep.sum()))
    np.testing.assert_allclose(ours, np.mean(rows, axis=0), rtol=1e-12)
    np.testing.assert_allclose(head_entropies(probs, valid), ours, rtol=1e-12)


def _encoder(batch_first, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(
        d_model=32, nhead=4, dim_feedforward=64, dropout=dropout, batch_first=batch_first
    )
    return torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=batch_first)


# torch's own encoder turns the bool causal mask into a float one and then warns itself
@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("masks", ["none", "causal", "padding", "both"])
def test_encoder_entropies_agree_with_the_weights_multihead_attention_returns(batch_first, masks):
    enc = _encoder(batch_first)
    x = torch.randn(3, 7, 32) if batch_first else torch.randn(7, 3, 32)
    causal = (
        torch.nn.Transformer.generate_square_subsequent_mask(7)
        if "causal" in masks or masks == "both"
        else None
    )
    pad = None
    if masks in ("padding", "both"):
        pad = torch.zeros(3, 7, dtype=torch.bool)
        pad[1, 5:] = True
        pad[2, 6:] = True

    def forward(model, batch):
        return model(batch, mask=causal, src_key_padding_mask=pad, is_causal=causal is not None)

    reading = AttentionProbe(x, forward=forward).read(enc)
    enc.eval()
    valid = np.ones((3, 7, 7), bool)
    if causal is not None:
        valid &= _causal(7)[None]
    if pad is not None:
        valid &= ~pad.numpy()[:, None, :]
    with torch.no_grad():
        h = x
        for i, layer in enumerate(enc.layers):
            _, w = layer.self_attn(
                h, h, h, attn_mask=causal, key_padding_mask=pad, average_attn_weights=False
            )
            queries = None if pad is None else ~pad.numpy()
            expected = head_entropies(w.numpy(), valid, queries)
            # 1e-6; measured at most 3e-16 (the same float32 weights, reduced in float64)
            np.testing.assert_allclose(reading[f"layers.{i}.self_attn"], expected, rtol=1e-6)
            h = layer(h, src_mask=causal, src_key_padding_mask=pad, is_causal=causal is not None)


def _gpt2():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=4)
    torch.manual_seed(1)
    return transformers.GPT2LMHeadModel(config)


def _bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    torch.manual_seed(2)
    return transformers.BertModel(config)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("build", "causal"), [(_gpt2, True), (_bert, False)])
def test_hugging_face_entropies_agree_with_eager_output_attentions(build, causal):
    model = build()
    assert model.config._attn_implementation == "sdpa"  # which returns no weights
    ids = torch.randint(0, 100, (3, 9), generator=torch.Generator().manual_seed(3))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    batch = {"input_ids": ids, "attention_mask": mask}
    reading = AttentionProbe(batch).read(model)
    assert model.config._attn_implementation == "sdpa"  # restored
    model.eval()
    model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(**batch, output_attentions=True).attentions
    real = mask.numpy().astype(bool)
    valid = (_causal(9)[None] if causal else np.ones((1, 9, 9), bool)) & real[:, None, :]
    assert len(reading) == len(attentions) == 2
    for values, weights in zip(reading.values(), attentions, strict=True):
        expected = head_entropies(weights.numpy(), valid, real)
        # 1e-6; measured 2e-16
        np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_a_user_capture_function_reads_anything():
    probs = torch.full((2, 3, 4, 4), 0.25)

    def capture(model, batch):
        return {"mine": probs, "masked": (probs, torch.ones(4, 4, dtype=torch.bool))}

    probe = AttentionProbe(torch.zeros(1), capture=capture)
    assert probe.read(torch.nn.Linear(1, 1)) == {"mine": [1.0] * 3, "masked": [1.0] * 3}
    with pytest.raises(ValueError, match="found no attention to read"):
        AttentionProbe(torch.zeros(1, 1)).read(torch.nn.Linear(1, 1))


def test_the_weights_never_leave_the_hook():
    from wcdfa.attention.capture import EntropySink, attention_modules, capturing

    enc = _encoder(True).eval()
    mha = enc.layers[0].self_attn
    sink = EntropySink(attention_modules(enc))
    x = torch.randn(2, 5, 32)
    with torch.no_grad(), capturing(enc, sink):
        out, weights = mha(x, x, x, need_weights=True)
    assert weights is None  # reduced inside the hook, then dropped
    assert list(sink.sums) == ["layers.0.self_attn"]
    with torch.no_grad():
        assert torch.equal(out, mha(x, x, x)[0])  # the output itself is unchanged


def _train(model, probe=None, steps=20):
    torch.manual_seed(7)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if probe is not None:
        TrainingMonitor(model, [probe]).attach(optimizer)
    for _ in range(steps):
        x = torch.randn(4, 6, 32)
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()


def test_training_is_bit_identical_with_and_without_the_probe():
    plain, probed = _encoder(True, dropout=0.1), _encoder(True, dropout=0.1)
    _train(plain)
    _train(probed, AttentionProbe(torch.randn(2, 6, 32), every=3))
    for a, b in zip(plain.parameters(), probed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_crystallisation_starts_and_ends_after_confirmation():
    watch = Crystallisation(start=1e-3, end=1e-4, confirm=2)
    spreads = [1e-2, 5e-4, 5e-4, 5e-5, 5e-5, 5e-5, 2e-3, 5e-4, 5e-4]
    events = [e[:2] for step, s in enumerate(spreads) for e in watch.update(step * 10, s)]
    assert events == [
        ("crystallisation_start", 10),
        ("crystallisation_end", 30),
        ("decrystallised", 60),
        ("crystallisation_start", 70),
    ]


def test_heads_converge_where_their_changes_stay_below_tol():
    steps = [0, 10, 20, 30, 40, 50]
    table = np.array(
        [[0.9, 0.5], [0.8, 0.5], [0.7001, 0.6], [0.7005, 0.5], [0.7002, 0.6], [0.7003, 0.6]]
    )
    assert convergence_steps(steps, table, tol=1e-3, confirm=3) == [20, None]


def test_the_probe_fires_crystallisation_events_and_survives_a_checkpoint(tmp_path):
    # heads whose attention collapses towards the same distribution over the readings
    sharp = [0.4, 0.1, 0.01, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]

    def capture(model, batch):
        gap = sharp[len(probe.history)]
        p = torch.tensor([[0.5, 0.3, 0.2], [0.5 + gap, 0.3 - gap / 2, 0.2 - gap / 2]])
        return {"layer": p.view(1, 2, 1, 3)}

    probe = AttentionProbe(None, every=1, capture=capture, confirm=2)
    for step in range(1, 9):
        probe.observe(torch.nn.Linear(1, 1), step)
    kinds = [(e.kind, e.step) for e in probe.events]
    assert [k for k, _ in kinds] == ["crystallisation_start", "crystallisation_end"]
    assert probe.metrics()["attention/spread"] < 1e-4
    path = tmp_path / "state.pt"
    torch.save(probe.state_dict(), path)
    fresh = AttentionProbe(None, capture=capture)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert fresh.history == probe.history
    assert fresh.metrics() == probe.metrics()
    assert fresh.events == probe.events
    with pytest.raises(ValueError, match="'watch' is not a crystallisation watch"):
        fresh.load_state_dict({**probe.state_dict(), "watch": {"bogus": 1}})
    assert fresh.history == probe.history


def test_the_compensation_test_scales_one_head_and_reads_the_later_ones():
    enc = _encoder(True)
    x = torch.randn(3, 7, 32)
    result = compensation_test(enc, x, omegas=[0.5, 1.0, 1.5])
    first = [h for h in result.heads if h.startswith("layers.0")]
    last = [h for h in result.heads if h.startswith("layers.1")]
    assert result.perturbed == result.heads
    for head in first:
        assert result.score[head] > 0  # the later layer responds
    for head in last:
        assert np.isnan(result.score[head])  # no later layer to respond
    # at omega = 1 every row is the unperturbed reading
    unperturbed = AttentionProbe(x).read(enc)
    flat = [v for values in unperturbed.values() for v in values]
    np.testing.assert_allclose(
        result.entropies[:, 1, :], np.tile(flat, (len(result.heads), 1)), rtol=1e-12
    )
    # the perturbed head's own layer does not move: it attends before the scaling
    own = [result.heads.index(h) for h in first]
    assert np.ptp(result.entropies[0][:, own], axis=0).max() == 0.0
    with pytest.raises(ValueError, match="not heads of the model"):
        compensation_test(enc, x, heads=["nope/h0"])


def test_probe_metrics_and_bad_arguments():
    enc = _encoder(True)
    probe = AttentionProbe(torch.randn(2, 5, 32), every=1)
    probe.observe(enc, 1)
    metrics = probe.metrics()
    assert sorted(k for k in metrics if "/h" in k)[:2] == [
        "attention/entropy/layers.0.self_attn/h0",
        "attention/entropy/layers.0.self_attn/h1",
    ]
    heads = [v for values in probe.history[-1][1].values() for v in values]
    assert metrics["attention/entropy"] == pytest.approx(np.mean(heads))
    assert metrics["attention/spread"] == pytest.approx(np.std(heads))
    with pytest.raises(ValueError, match=r"0 < end <= start, but got 0\.001, 0\.01"):
        AttentionProbe(None, start=1e-3, end=1e-2)
    with pytest.raises(TypeError, match="`capture` must be callable, but got int"):
        AttentionProbe(None, capture=3)
