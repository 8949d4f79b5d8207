"""Attention-head crystallisation on modular addition, with ‖ΔW‖ DFA and per-layer spectra.

(a + b) mod 113 as the sequence [a, a, b, b, =] (token 113 is "="), the answer read at
the last position; a 2-layer, 2-head causal transformer (d_model 64, learned positions,
pre-norm, feed-forward 128, no dropout); 30 % of the pairs for training; full-batch AdamW (lr 1e-3,
weight decay 1.0). One TrainingMonitor holds an AttentionProbe (every 100 epochs, on
256 fixed training sequences), WeightChangeDFA(window=500, stride=100) and a
SpectralProbe (every 500 epochs). At the end the compensation test scales each head of
the first layer by 0.5-1.5 and fits the second layer's response.

    python examples/attention_crystallisation.py                  # 12,000 epochs
    python examples/attention_crystallisation.py --quick          # 100 epochs: a smoke run
    python examples/attention_crystallisation.py --seed 1 --out runs/attention

Writes ``attention_seed{SEED}.json`` (grokking epoch, every head's final entropy, the
crystallisation events with the ‖ΔW‖ regime at each, the heads' convergence steps, the
compensation scores) and ``attention_seed{SEED}.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wcdfa import TrainingMonitor, WeightChangeDFA
from wcdfa.attention.compensation import compensation_test
from wcdfa.probes import AttentionProbe, SpectralProbe

P = 113
EQUALS = P
EVAL_EVERY = 50


class Transformer(nn.Module):
    def __init__(self, dim: int = 64, heads: int = 2, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(P + 1, dim)
        self.position = nn.Parameter(torch.randn(5, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.unembed = nn.Linear(dim, P)
        self.register_buffer("causal", torch.triu(torch.ones(5, 5, dtype=torch.bool), 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.position
        h = self.blocks(h, mask=self.causal, is_causal=True)
        return self.unembed(h[:, -1])


def data(seed: int, fraction: float = 0.3):
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    tokens = torch.stack([a, a, b, b, torch.full_like(a, EQUALS)], 1)
    labels = (a + b) % P
    order = torch.randperm(tokens.shape[0], generator=torch.Generator().manual_seed(seed))
    n = int(fraction * tokens.shape[0])
    return tokens[order[:n]], labels[order[:n]], tokens[order[n:]], labels[order[n:]]


def run(epochs: int, seed: int, out: Path, every: int = 100) -> dict:
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = data(seed)
    model = Transformer()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0)
    attention = AttentionProbe(x_train[:256], every=every)
    monitor = TrainingMonitor(
        model,
        [WeightChangeDFA(window=500, stride=100), attention, SpectralProbe(every=5 * every)],
    )
    monitor.attach(optimizer)
    test_acc = np.full(epochs, np.nan)
    regimes: list[tuple[int, str | None]] = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        loss = nn.functional.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()  # the monitor's hook: ‖ΔW‖ every step, the probes on schedule
        regimes.append((monitor.step_count, monitor["wcdfa"].regime))
        if epoch % EVAL_EVERY == 0 or epoch == epochs - 1:
            with torch.no_grad():
                model.eval()
                test_acc[epoch] = (model(x_test).argmax(1) == y_test).float().mean().item()
                model.train()
        if epoch % 1000 == 0 or epoch == epochs - 1:
            print(
                f"epoch {epoch:6d}  loss {loss.item():.4f}  test {test_acc[epoch]:.3f}", flush=True
            )
    grok = np.flatnonzero(test_acc > 0.9)
    regime_at = dict(regimes)
    steps, heads, table = attention.head_history()
    compensation = compensation_test(
        model, x_train[:256], heads=[h for h in heads if h.startswith("blocks.layers.0")]
    )
    result = {
        "seed": seed,
        "epochs": epochs,
        "grokking_epoch": int(grok[0]) if grok.size else None,
        "final_test_accuracy": float(test_acc[-1]),
        "final_entropy": {h: round(float(v), 6) for h, v in zip(heads, table[-1], strict=True)},
        "final_mean_entropy": round(float(np.mean(table[-1])), 6),
        "final_spread": float(np.std(table[-1])),
        "events": [
            {"step": e.step, "kind": e.kind, "wcdfa_regime": regime_at.get(e.step)}
            for e in attention.events
        ],
        "convergence": attention.convergence_steps(),
        "compensation_score": compensation.score,
        "compensation_net": compensation.net,
        "final_wcdfa_alpha": monitor["wcdfa"].alpha,
        "spectral_alpha": {
            str(step): {k: round(v["alpha"], 3) for k, v in reading.items()}
            for step, reading in monitor["spectral"].history
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"attention_seed{seed}.json").write_text(json.dumps(result, indent=2))
    wcdfa_steps = monitor["wcdfa"].history_steps
    np.savez_compressed(
        out / f"attention_seed{seed}.npz",
        steps=np.array(steps),
        heads=np.array(heads),
        entropies=table,
        test_acc=test_acc,
        wcdfa_steps=np.array(wcdfa_steps),
        wcdfa_alphas=np.array(monitor["wcdfa"].history),
    )
    plot(out / f"attention_seed{seed}.png", result, steps, heads, table, test_acc, monitor)
    return result


def plot(path, result, steps, heads, table, test_acc, monitor) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 9), layout="constrained")
    ax_acc, ax_ent, ax_spread, ax_dfa = fig.subplots(4, 1, sharex=True)
    x = np.flatnonzero(np.isfinite(test_acc))
    ax_acc.plot(x + 1, test_acc[x], color="#222222", label="test accuracy")
    ax_acc.set_ylabel("accuracy")
    for i, head in enumerate(heads):
        ax_ent.plot(steps, table[:, i], linewidth=1.0, label=head)
    ax_ent.set_ylabel("normalised entropy")
    ax_spread.semilogy(steps, table.std(axis=1), color="#534AB7", label="std across heads")
    ax_spread.axhline(1e-3, color="#888888", linestyle=":", label="start 1e-3")
    ax_spread.axhline(1e-4, color="#444444", linestyle=":", label="end 1e-4")
    ax_spread.set_ylabel("spread")
    probe = monitor["wcdfa"]
    ax_dfa.axhspan(0.8, 1.2, color="#1D9E75", alpha=0.12, label="critical band")
    ax_dfa.plot(probe.history_steps, probe.history, color="#534AB7", label="‖ΔW‖ DFA α")
    ax_dfa.set_ylabel("weight-change α")
    ax_dfa.set_xlabel("epoch (one optimizer step each)")
    for ax in (ax_acc, ax_ent, ax_spread, ax_dfa):
        if result["grokking_epoch"] is not None:
            ax.axvline(result["grokking_epoch"], color="#D85A30", linestyle="--", label="grokking")
        for event in result["events"]:
            ax.axvline(event["step"], color="#1D9E75", linestyle=":", linewidth=1)
        ax.legend(fontsize=7, frameon=False, loc="best", ncol=2)
    fig.suptitle(f"(a + b) mod {P}, 2-layer 2-head transformer, seed {result['seed']}")
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=12_000, help="training epochs")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", type=Path, default=Path("runs/attention"), help="output folder")
    parser.add_argument("--quick", action="store_true", help="100 epochs: a smoke run")
    parser.add_argument(
        "--every", type=int, help="epochs between attention readings (100; quick: 20)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    every = args.every or (20 if args.quick else 100)
    result = run(100 if args.quick else args.epochs, args.seed, args.out, every)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
