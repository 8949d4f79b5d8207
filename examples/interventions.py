"""Interventions on training, evaluated as they are: WW-PGD projection and perturbation gaps.

Two tasks, each trained the same way under several conditions:

- ``grokking``: (a + b) mod 97, the MLP of examples/grokking.py, full-batch AdamW (lr
  1e-3, weight decay 1.0), one step per epoch; ``--fraction`` of the pairs trains
  (0.5 by default: it generalises within a few thousand epochs, 0.3 takes ~8,000).
- ``digits``: scikit-learn's 8x8 digits (shipped with the package: no download), an
  MLP 64-256-256-10, AdamW (lr 1e-3) on mini-batches of 64 (16 steps per epoch, 300
  epochs); 1,000 images train.

Conditions: ``baseline``; ``wwpgd`` (wcdfa.control.SpectralProjection, the reference's
defaults, every ``--project-every`` steps); ``gap2``, ``gap40``, ``gap95`` (a
GapSchedule of relative weight noise 0.01 on 2 %, 40 %, 95 % of the steps). Each run's
‖ΔW‖ goes into a WeightChangeDFA (snapshot measurement, so the noise is seen; gap steps
tagged) that gives α and α over the clean steps; its window is 150 steps for grokking
(at 95 % gaps 4,000 steps leave 200 clean ones) and 200 for digits.

    python examples/interventions.py --task digits --seed 0 --out runs/interventions
    python examples/interventions.py --task grokking --seed 0 --epochs 4000
    python examples/interventions.py --quick            # seconds: the test's setting

Writes ``{task}_{condition}_seed{SEED}.json`` per condition: test accuracy over
training, the epoch of generalisation (first test accuracy >= 0.9 for grokking, 0.95
for digits), α, α_clean and every layer's spectral α (wcdfa.spectral.analyze) at each
evaluation.
``benchmarks/interventions_report.py`` turns a folder of them into
docs/interventions.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grokking import AdditionMLP, split

from wcdfa import WeightChangeDFA
from wcdfa.control import GapSchedule, SpectralProjection
from wcdfa.spectral import analyze

CONDITIONS = {
    "baseline": None,
    "wwpgd": "projection",
    "gap2": 0.02,
    "gap40": 0.40,
    "gap95": 0.95,
}
NOISE = 0.01
THRESHOLD = {"grokking": 0.9, "digits": 0.95}


def digits_data(seed: int):
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    train, test = order[:1000], order[1000:]
    return x[train], y[train], x[test], y[test]


def digits_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )


def run(task: str, condition: str, seed: int, epochs: int, args) -> dict:
    torch.manual_seed(seed)
    if task == "grokking":
        x_train, y_train, x_test, y_test = split(seed, args.fraction, "cpu")
        model: nn.Module = AdditionMLP()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0)
        batch, window = len(y_train), args.window or 150
    else:
        x_train, y_train, x_test, y_test = digits_data(seed)
        model = digits_model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        batch, window = 64, args.window or 200
    monitor = WeightChangeDFA(window=window, stride=max(1, window // 5), method="snapshot")
    monitor.attach(optimizer)
    kind = CONDITIONS[condition]
    projection = None
    if kind == "projection":
        projection = SpectralProjection(model)
    elif kind is not None:
        GapSchedule("noise", fraction=kind, size=NOISE, seed=seed).attach(optimizer, monitor)
    gen = torch.Generator().manual_seed(seed)
    steps = 0
    curve, alphas, spectra = [], [], []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        for start in range(0, len(y_train), batch):
            idx = order[start : start + batch]
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if projection is not None and steps % args.project_every == 0:
                projection.project()
        if epoch % args.eval_every == 0 or epoch == epochs - 1:
            model.eval()
            with torch.no_grad():
                acc = (model(x_test).argmax(1) == y_test).float().mean().item()
            curve.append((epoch, acc))
            alphas.append((epoch, monitor.alpha, monitor.alpha_clean))
            spectra.append((epoch, {r.name: r.alpha for r in analyze(model)}))
    reached = [e for e, a in curve if a >= THRESHOLD[task]]
    return {
        "task": task,
        "condition": condition,
        "seed": seed,
        "epochs": epochs,
        "steps": steps,
        "gap_fraction": kind if isinstance(kind, float) else 0.0,
        "generalisation_epoch": reached[0] if reached else None,
        "final_test_accuracy": curve[-1][1],
        "test_accuracy": curve,
        "alpha": alphas,
        "final_alpha": monitor.alpha,
        "final_alpha_clean": monitor.alpha_clean,
        "gap_steps": len(monitor.tagged_steps.get("gap", [])),
        "spectral_alpha": spectra[-1][1],
        "spectral_alpha_history": spectra,
        "projections": 0 if projection is None else projection.calls,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--task", choices=["grokking", "digits"], default="digits", help="the task")
    add("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS),
        help="the conditions to run")  # fmt: skip
    add("--seed", type=int, default=0, help="seed of the data split, weights and noise")
    add("--epochs", type=int, default=None, help="epochs (None: 4000 grokking, 300 digits)")
    add("--fraction", type=float, default=0.5, help="grokking: share of the pairs that trains")
    add("--window", type=int, default=None, help="DFA window (None: 150 grokking, 200 digits)")
    add("--project-every", type=int, default=None,
        help="steps between projections (None: 100 grokking, 16 = one epoch digits)")  # fmt: skip
    add("--eval-every", type=int, default=None, help="epochs between test evaluations")
    add("--threads", type=int, default=None, help="torch threads (results depend on it)")
    add("--out", type=Path, default=Path("runs/interventions"), help="folder of the JSON files")
    add("--quick", action="store_true", help="a few seconds: digits, 8 epochs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    grok = args.task == "grokking"
    if args.quick:
        args.task, grok, args.epochs, args.window = "digits", False, 8, 50
    epochs = args.epochs or (4000 if grok else 300)
    args.project_every = args.project_every or (100 if grok else 16)  # 16 steps: one epoch
    args.eval_every = args.eval_every or (10 if grok else 1)
    args.out.mkdir(parents=True, exist_ok=True)
    for condition in args.conditions:
        result = run(args.task, condition, args.seed, epochs, args)
        path = args.out / f"{args.task}_{condition}_seed{args.seed}.json"
        path.write_text(json.dumps(result, indent=1))
        print(
            f"{args.task} {condition:8s} seed {args.seed}: "
            f"test {result['final_test_accuracy']:.3f}, "
            f"generalised at {result['generalisation_epoch']}, α {result['final_alpha']}, "
            f"α_clean {result['final_alpha_clean']}, {result['seconds']} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
