"""Simulate the confidence belt shipped in src/wcdfa/_calibration.npz.

    python benchmarks/calibrate_ci.py [--reps 500] [--out src/wcdfa/_calibration.npz]

For every length n of the grid, every true exponent α on a 0.05 grid from 0.05 to
2.45 and every synthetic family with that exponent (wcdfa.uncertainty.families), it
simulates ``reps`` series, computes α̂ with the default box settings (DFA-1, both
aggregates) and stores quantiles of α̂: for the lower levels the minimum over the
families, for the upper levels the maximum (the envelope). Deterministic: the seed of
each cell is derived from (n, α, family). Takes about 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path

import numpy as np

from wcdfa.uncertainty import estimates, families

NS = [50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 10000]
ALPHAS = np.round(np.arange(0.05, 2.4501, 0.05), 2)
LOWER = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25]
LEVELS = np.array([*LOWER, 0.5, *[1 - p for p in reversed(LOWER)]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=500)
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=Path, default=root / "src" / "wcdfa" / "_calibration.npz")
    args = parser.parse_args()
    tables = {}
    for aggregate in ("mean", "rms"):
        q = np.empty((len(NS), ALPHAS.size, LEVELS.size))
        for i, n in enumerate(NS):
            t0 = time.perf_counter()
            for j, alpha in enumerate(ALPHAS):
                per_family = []
                for family in families(float(alpha)):
                    seed = zlib.crc32(f"{n}:{alpha:.2f}:{family}".encode())
                    sims = estimates(
                        family,
                        n,
                        float(alpha),
                        args.reps,
                        np.random.default_rng(seed),
                        aggregate=aggregate,
                    )
                    per_family.append(np.quantile(sims, LEVELS))
                stacked = np.array(per_family)
                q[i, j] = np.where(LEVELS < 0.5, stacked.min(0), stacked.max(0))
                q[i, j, LEVELS == 0.5] = np.mean(stacked[:, LEVELS == 0.5])
            print(f"{aggregate} n={n}: {time.perf_counter() - t0:.1f} s", flush=True)
        tables[f"q_{aggregate}"] = q.astype(np.float32)
    np.savez_compressed(
        args.out,
        ns=np.array(NS, dtype=np.float64),
        alphas=ALPHAS,
        levels=LEVELS,
        reps=np.array(args.reps),
        **tables,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
