"""Grokking on modular addition, watched by weight-change DFA.

(a + b) mod 97 with 30 % of all pairs for training; an MLP on two learned 128-d
embeddings (two hidden layers of 256, ReLU); full-batch AdamW (lr 1e-3, weight decay
1.0); RollingWeightChangeDFA(window=500, stride=200) updated once per epoch (one
optimizer step per epoch).

    python examples/grokking.py                       # the full setting: 30,000 epochs
    python examples/grokking.py --quick               # a few minutes on a CPU
    python examples/grokking.py --epochs 30000 --seed 1 --device cuda --out runs/grok
    python examples/grokking.py --probes spectral      # + every layer's spectral α

Writes ``grokking_seed{SEED}.json`` (grokking epoch = first test accuracy > 90 %;
criticality epoch = first epoch from which α stays in the critical band; final α)
and ``grokking_seed{SEED}.png`` (test accuracy and α over epochs). With ``--probes
spectral`` a SpectralProbe reads each layer's heavy-tailed spectral exponent every
250 epochs (every layer has at least 97 eigenvalues): the JSON gains each layer's α
at the first reading, at grokking and at the end, the figure a third panel.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wcdfa import RollingWeightChangeDFA
from wcdfa.probes import SpectralProbe

P = 97
EVAL_EVERY = 10
SPECTRAL_EVERY = 250


class AdditionMLP(nn.Module):
    def __init__(self, p: int = P, dim: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.embed_a = nn.Embedding(p, dim)
        self.embed_b = nn.Embedding(p, dim)
        self.net = nn.Sequential(
            nn.Linear(2 * dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, p),
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.embed_a(pairs[:, 0]), self.embed_b(pairs[:, 1])], 1))


def split(seed: int, fraction: float, device: str):
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], 1)
    labels = (pairs[:, 0] + pairs[:, 1]) % P
    order = torch.randperm(pairs.shape[0], generator=gen)
    n_train = int(fraction * pairs.shape[0])
    train, test = order[:n_train], order[n_train:]
    return (
        pairs[train].to(device),
        labels[train].to(device),
        pairs[test].to(device),
        labels[test].to(device),
    )


def criticality_epoch(epochs: np.ndarray, alphas: np.ndarray, band: tuple[float, float]):
    """First epoch from which every later α lies in the critical band (None if none)."""
    ordered, disordered = band
    known = np.isfinite(alphas)
    inside = known & (alphas >= disordered) & (alphas <= ordered)
    if not known.any() or not inside[known][-1]:
        return None
    outside = np.flatnonzero(known & ~inside)
    start = 0 if outside.size == 0 else outside[-1] + 1
    first = np.flatnonzero(known[start:])[0] + start
    return int(epochs[first])


def run(
    epochs: int, seed: int, device: str, out: Path, fraction: float = 0.3, probes: tuple = ()
) -> dict:
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = split(seed, fraction, device)
    model = AdditionMLP().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0)
    monitor = RollingWeightChangeDFA(window=500, stride=200)
    monitor.update(model)  # baseline
    spectral = SpectralProbe(every=SPECTRAL_EVERY) if "spectral" in probes else None
    # accuracy every EVAL_EVERY epochs: the test set is 2.3x the training set, and
    # evaluating it every epoch would cost more than training
    test_acc = np.full(epochs, np.nan)
    train_acc = np.full(epochs, np.nan)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        logits = model(x_train)
        loss = nn.functional.cross_entropy(logits, y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        monitor.update(model)
        monitor.end_epoch(epoch)
        if spectral is not None and (epoch + 1) % spectral.every == 0:
            spectral.observe(model, epoch)  # reads the weights only: training untouched
        if epoch % EVAL_EVERY == 0 or epoch == epochs - 1:
            model.eval()
            with torch.no_grad():
                test_acc[epoch] = (model(x_test).argmax(1) == y_test).float().mean().item()
                train_acc[epoch] = (logits.argmax(1) == y_train).float().mean().item()
        if epoch % 2000 == 0 or epoch == epochs - 1:
            print(
                f"epoch {epoch:6d}  train {train_acc[epoch]:.3f}  test {test_acc[epoch]:.3f}  "
                f"{monitor}",
                flush=True,
            )
    ep, alphas = monitor.epoch_history
    grok = np.flatnonzero(test_acc > 0.9)  # NaN (not evaluated) compares False
    result = {
        "seed": seed,
        "epochs": epochs,
        "train_fraction": fraction,
        "accuracy_every": EVAL_EVERY,
        "grokking_epoch": int(grok[0]) if grok.size else None,
        "memorisation_epoch": (
            int(np.flatnonzero(train_acc > 0.99)[0]) if (train_acc > 0.99).any() else None
        ),
        "criticality_epoch": criticality_epoch(ep, alphas, monitor.thresholds),
        "final_alpha": monitor.alpha,
        "final_regime": monitor.regime,
        "final_alpha_ci": monitor.alpha_ci,
        "final_test_accuracy": float(test_acc[-1]),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    arrays = {"epochs": ep, "alphas": alphas, "test_acc": test_acc, "train_acc": train_acc}
    layers = None
    if spectral is not None:
        readings, names, layer_alphas = spectral.alpha_history()
        layers = (np.array(readings), names, layer_alphas)
        arrays.update(
            spectral_epochs=layers[0], spectral_layers=names, spectral_alphas=layer_alphas
        )
        result["spectral"] = spectral_summary(*layers, result["grokking_epoch"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"grokking_seed{seed}.json").write_text(json.dumps(result, indent=2))
    np.savez_compressed(out / f"grokking_seed{seed}.npz", **arrays)
    plot(
        out / f"grokking_seed{seed}.png",
        ep,
        alphas,
        test_acc,
        train_acc,
        result,
        monitor.thresholds,
        layers,
    )
    return result


def spectral_summary(epochs: np.ndarray, names: list, alphas: np.ndarray, grok) -> dict:
    """Each layer's spectral α at the first reading, the last before grokking, the end."""
    before = np.flatnonzero(epochs <= grok) if grok is not None else np.array([], int)
    at = {"first": 0, "at_grokking": before[-1] if before.size else None, "final": -1}
    out = {"every": SPECTRAL_EVERY, "layers": names}
    for key, j in at.items():
        out[key] = (
            None
            if j is None
            else {
                "epoch": int(epochs[j]),
                "alpha": {n: round(float(a), 3) for n, a in zip(names, alphas[:, j], strict=True)},
            }
        )
    return out


def plot(path, epochs, alphas, test_acc, train_acc, result, thresholds, layers=None) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 9 if layers else 6), layout="constrained")
    axes = fig.subplots(3 if layers else 2, 1, sharex=True)
    ax_acc, ax_alpha = axes[:2]
    if layers:
        readings, names, layer_alphas = layers
        ax_spec = axes[2]
        ax_spec.axhspan(2.0, 6.0, color="#888888", alpha=0.12, label="HTSR band 2-6")
        for name, row in zip(names, layer_alphas, strict=True):
            ax_spec.plot(readings, row, linewidth=1.0, label=name)
        ax_spec.set_yscale("log")
        ax_spec.set_ylabel("spectral α per layer")
    x = np.flatnonzero(np.isfinite(test_acc))
    ax_acc.plot(x, train_acc[x], color="#888888", linewidth=0.8, label="train accuracy")
    ax_acc.plot(x, test_acc[x], color="#222222", linewidth=1.0, label="test accuracy")
    ax_acc.set_ylabel("accuracy")
    ordered, disordered = thresholds
    ax_alpha.axhspan(disordered, ordered, color="#1D9E75", alpha=0.12, label="critical band")
    valid = np.isfinite(alphas)
    ax_alpha.plot(epochs[valid], alphas[valid], color="#534AB7", linewidth=0.8, label="α")
    ax_alpha.set_ylabel("weight-change DFA α")
    axes[-1].set_xlabel("epoch")
    for ax in axes:
        if result["grokking_epoch"] is not None:
            ax.axvline(
                result["grokking_epoch"],
                color="#D85A30",
                linestyle="--",
                label=f"grokking (test > 90 %): {result['grokking_epoch']}",
            )
        if result["criticality_epoch"] is not None:
            ax.axvline(
                result["criticality_epoch"],
                color="#1D9E75",
                linestyle=":",
                label=f"α enters and stays critical: {result['criticality_epoch']}",
            )
        ax.legend(fontsize=8, frameon=False, loc="best")
    fig.suptitle(f"(a + b) mod {P}, seed {result['seed']}")
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=30_000, help="training epochs")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/grokking"), help="folder for the JSON and the figure"
    )
    parser.add_argument("--quick", action="store_true", help="1,500 epochs: a smoke run")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument(
        "--probes", nargs="*", default=[], choices=["spectral"], help="extra probes to run"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    epochs = 1_500 if args.quick else args.epochs
    result = run(epochs, args.seed, args.device, args.out, probes=tuple(args.probes))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
