"""Simulate the confidence belt shipped in src/wcdfa/_calibration.npz.

    python benchmarks/calibrate_ci.py [--reps 500] [--rows all|long]
                                      [--out src/wcdfa/_calibration.npz]

For every length n of the grid, every true exponent α on a grid from 0.05 to 2.45
and every synthetic family with that exponent (wcdfa.uncertainty.families), it
simulates series, computes α̂ with the default box settings (DFA-1, both aggregates)
and stores quantiles of α̂: for the lower levels the minimum over the families, for
the upper levels the maximum (the envelope). Deterministic: the seed of each cell is
derived from (n, α, family).

- Short rows (n <= 10^4, 0.05 grid, ``--reps`` series per cell): empirical quantiles.
  About 15 minutes on 2 cores.
- Long rows (n = 2·10^4 ... 10^6, 0.1 grid interpolated to 0.05, fewer series as n
  grows: LONG_REPS): the median and standard deviation of α̂ per family, and the
  quantiles median ± z·sd·LONG_INFLATION (α̂ is close to Gaussian there; the
  inflation covers the sampling error of sd from 40-200 series). Both aggregates come
  from the same series. About 20 minutes on one core.

``--rows long`` recomputes only the long rows and keeps the short ones of ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib
from pathlib import Path

import numpy as np

from wcdfa.fluctuation import alpha_batch, box_scales
from wcdfa.uncertainty import estimates, families, simulate

SHORT_NS = [50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 10000]
LONG_REPS = {20_000: 200, 50_000: 150, 100_000: 100, 300_000: 60, 1_000_000: 40}
LONG_INFLATION = 1.1
ALPHAS = np.round(np.arange(0.05, 2.4501, 0.05), 2)
LONG_ALPHAS = np.round(np.arange(0.05, 2.4501, 0.1), 2)
LOWER = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25]
LEVELS = np.array([*LOWER, 0.5, *[1 - p for p in reversed(LOWER)]])
AGGREGATES = ("mean", "rms")


def envelope(per_family):
    """Quantiles over the families: the lowest lower, the highest upper, the mean median."""
    stacked = np.array(per_family)
    out = np.where(LEVELS < 0.5, stacked.min(0), stacked.max(0))
    out[LEVELS == 0.5] = np.mean(stacked[:, LEVELS == 0.5])
    return out


def short_rows(reps):
    q = np.empty((len(AGGREGATES), len(SHORT_NS), ALPHAS.size, LEVELS.size))
    for a, aggregate in enumerate(AGGREGATES):
        for i, n in enumerate(SHORT_NS):
            t0 = time.perf_counter()
            for j, alpha in enumerate(ALPHAS):
                per_family = []
                for family in families(float(alpha)):
                    seed = zlib.crc32(f"{n}:{alpha:.2f}:{family}".encode())
                    rng = np.random.default_rng(seed)
                    sims = estimates(family, n, float(alpha), reps, rng, aggregate=aggregate)
                    per_family.append(np.quantile(sims, LEVELS))
                q[a, i, j] = envelope(per_family)
            print(f"{aggregate} n={n}: {time.perf_counter() - t0:.1f} s", flush=True)
    return q


def long_rows():
    z = np.array([statistics.NormalDist().inv_cdf(p) for p in LEVELS]) * LONG_INFLATION
    q = np.empty((len(AGGREGATES), len(LONG_REPS), ALPHAS.size, LEVELS.size))
    for i, (n, reps) in enumerate(LONG_REPS.items()):
        t0 = time.perf_counter()
        scales = box_scales(n, 4, None, 20).scales
        coarse = np.empty((len(AGGREGATES), LONG_ALPHAS.size, LEVELS.size))
        for j, alpha in enumerate(LONG_ALPHAS):
            per_family = {agg: [] for agg in AGGREGATES}
            for family in families(float(alpha)):
                rng = np.random.default_rng(zlib.crc32(f"{n}:{alpha:.2f}:{family}".encode()))
                sims = {agg: [] for agg in AGGREGATES}
                chunk = max(1, min(64, 4_000_000 // n))
                for start in range(0, reps, chunk):
                    x = simulate(family, n, float(alpha), min(chunk, reps - start), rng)
                    for agg in AGGREGATES:
                        sims[agg].append(alpha_batch(x, scales, 1, agg))
                for agg in AGGREGATES:
                    est = np.concatenate(sims[agg])
                    per_family[agg].append(np.median(est) + z * est.std(ddof=1))
            for a, agg in enumerate(AGGREGATES):
                coarse[a, j] = envelope(per_family[agg])
        for a in range(len(AGGREGATES)):
            for k in range(LEVELS.size):
                q[a, i, :, k] = np.interp(ALPHAS, LONG_ALPHAS, coarse[a, :, k])
        print(f"n={n}: {time.perf_counter() - t0:.1f} s", flush=True)
    return q


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--rows", choices=("all", "long"), default="all")
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=Path, default=root / "src" / "wcdfa" / "_calibration.npz")
    args = parser.parse_args()
    if args.rows == "long":
        with np.load(args.out) as old:
            keep = old["ns"] <= SHORT_NS[-1]
            short = np.array([old[f"q_{agg}"][keep] for agg in AGGREGATES])
            reps = int(old["reps"])
    else:
        short, reps = short_rows(args.reps), args.reps
    q = np.concatenate([short, long_rows()], axis=1)
    np.savez_compressed(
        args.out,
        ns=np.array(SHORT_NS + list(LONG_REPS), dtype=np.float64),
        alphas=ALPHAS,
        levels=LEVELS,
        reps=np.array(reps),
        **{f"q_{agg}": q[a].astype(np.float32) for a, agg in enumerate(AGGREGATES)},
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
