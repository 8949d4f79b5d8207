"""wcdfa.spectral.fit_power_law against weightwatcher's default fit, side by side.

    python benchmarks/bench_spectral.py [--sizes 256 1024 4096] [--seconds 1]

Eigenvalues of WᵀW for a random (2m, m) matrix W (seed 0); both fits run on the same
values in the same run (median of repeated calls). The ratio is weightwatcher's time
over ours (above 1: wcdfa is faster); the last columns check that the fits agree.
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import median_time
from weightwatcher.WW_powerlaw import WWFit

from wcdfa.spectral import fit_power_law


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{'evals':>6} {'wcdfa ms':>9} {'ww ms':>9} {'ww / wcdfa':>11} "
        f"{'|Δα|':>9} {'same xmin':>10}"
    )
    for m in args.sizes:
        w = rng.standard_normal((2 * m, m)) / np.sqrt(m)
        evals = np.linalg.eigvalsh(w.T @ w)
        ours = median_time(lambda e=evals: fit_power_law(e), args.seconds)
        theirs = median_time(lambda e=evals: WWFit(e[e > 1e-5]), args.seconds)
        a, b = fit_power_law(evals), WWFit(evals[evals > 1e-5])
        print(
            f"{m:>6} {ours * 1e3:>9.2f} {theirs * 1e3:>9.2f} {theirs / ours:>10.1f}x "
            f"{abs(a.alpha - b.alpha):>9.1e} {a.xmin == b.xmin!s:>10}"
        )


if __name__ == "__main__":
    main()
