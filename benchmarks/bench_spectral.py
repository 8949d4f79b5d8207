"""wcdfa.spectral against weightwatcher 0.7.7, side by side in one run.

    python benchmarks/bench_spectral.py [--seconds 1] [--sizes 256 1024 4096]
                                        [--models mlp2m mlp20m cnn] [--skip-fit]

1. The fit alone: ``fit_power_law`` against weightwatcher's ``WWFit`` on the same
   eigenvalues (those of WᵀW for a random (2m, m) matrix).
2. The whole analysis: ``wcdfa.spectral.analyze(model)`` against
   ``weightwatcher.WeightWatcher(model).analyze()`` on the same model (seed 0), without
   and with detX, median of repeated calls; ratios above 1 mean wcdfa is faster. The
   last columns check that both read the same layers with the same α.
3. Where wcdfa's time goes on each model: copying the weights to float64, the Gram
   matrices, their eigenvalues, and the fits with the other quantities.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time

import numpy as np
import torch
import weightwatcher as ww
from timing import median_time
from weightwatcher.WW_powerlaw import WWFit

from wcdfa.spectral import analyze, fit_power_law, layer_spectrum
from wcdfa.spectral.layers import find_layers, full_weight, matrices


def mlp(widths):
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def cnn():
    conv = [(3, 64), (64, 128), (128, 256), (256, 256)]
    layers = []
    for a, b in conv:
        layers += [torch.nn.Conv2d(a, b, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
    return torch.nn.Sequential(
        *layers,
        torch.nn.Flatten(),
        torch.nn.Linear(256 * 2 * 2, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )


MODELS = {
    "mlp2m": ("MLP 784-1024-1024-10", lambda: mlp([784, 1024, 1024, 10])),
    "mlp20m": ("MLP 784-2048x5-10", lambda: mlp([784, 2048, 2048, 2048, 2048, 2048, 10])),
    "cnn": ("CNN 4 conv + 2 fc", cnn),
    "tiny": ("MLP 64-128-10", lambda: mlp([64, 128, 10])),  # the smoke test's
}


def bench_fit(seconds, sizes):
    rng = np.random.default_rng(0)
    print(
        f"{'evals':>6} {'wcdfa ms':>9} {'ww ms':>9} {'ww / wcdfa':>11} {'|Δα|':>9} "
        f"{'same xmin':>10}"
    )
    for m in sizes:
        w = rng.standard_normal((2 * m, m)) / np.sqrt(m)
        evals = np.linalg.eigvalsh(w.T @ w)
        ours = median_time(lambda e=evals: fit_power_law(e), seconds)
        theirs = median_time(lambda e=evals: WWFit(e[e > 1e-5]), seconds)
        a, b = fit_power_law(evals), WWFit(evals[evals > 1e-5])
        print(
            f"{m:>6} {ours * 1e3:>9.2f} {theirs * 1e3:>9.2f} {theirs / ours:>10.1f}x "
            f"{abs(a.alpha - b.alpha):>9.1e} {a.xmin == b.xmin!s:>10}"
        )


def bench_analyze(seconds, models):
    print(
        f"\n{'model':<22} {'params':>7} {'detX':>5} {'wcdfa s':>8} {'ww s':>8} "
        f"{'ww / wcdfa':>11} {'layers':>7} {'max |Δα|/α':>11}"
    )
    for key in models:
        label, build = MODELS[key]
        torch.manual_seed(0)
        model = build()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        watcher = ww.WeightWatcher(model=model)
        for detx in (False, True):
            ours = median_time(lambda d=detx, m=model: analyze(m, detx=d, attention=False), seconds)
            theirs = median_time(lambda d=detx, w=watcher: w.analyze(detX=d), seconds)
            details = watcher.analyze(detX=detx)
            result = analyze(model, detx=detx, attention=False)
            same = result.names == list(details["longname"])
            err = max(abs(r.alpha - a) / a for r, a in zip(result, details["alpha"], strict=True))
            print(
                f"{label:<22} {params:>6.1f}M {detx!s:>5} {ours:>8.3f} {theirs:>8.3f} "
                f"{theirs / ours:>10.2f}x {'same' if same else 'DIFFER':>7} {err:>11.1e}"
            )


def where_the_time_goes(models):
    print(f"\n{'model':<22} {'copy':>7} {'Gram':>7} {'eigh':>7} {'fit+':>7}  (seconds, one call)")
    for key in models:
        label, build = MODELS[key]
        torch.manual_seed(0)
        found = find_layers(build())
        phases = np.zeros(4)
        for layer in found:
            t0 = time.perf_counter()
            a = matrices(layer, full_weight(layer.param)).numpy().astype(np.float64)
            a = a[0] if a.shape[0] == 1 else a
            t1 = time.perf_counter()
            at = np.swapaxes(a, -1, -2)
            gram = at @ a if a.shape[-2] >= a.shape[-1] else a @ at
            t2 = time.perf_counter()
            evals = np.linalg.eigvalsh(gram).ravel() * layer.scale
            t3 = time.perf_counter()
            layer_spectrum(evals, N=layer.N, M=layer.M)
            phases += [t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3]
        print(f"{label:<22} " + " ".join(f"{p:>7.3f}" for p in phases))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 1024, 4096])
    parser.add_argument(
        "--models", nargs="*", default=["mlp2m", "mlp20m", "cnn"], choices=sorted(MODELS)
    )
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    if not args.skip_fit:
        bench_fit(args.seconds, args.sizes)
    if args.models:
        bench_analyze(args.seconds, args.models)
        where_the_time_goes(args.models)


if __name__ == "__main__":
    main()
