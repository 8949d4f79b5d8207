"""Simulate the confidence belt shipped in src/wcdfa/_calibration.npz.

    python benchmarks/calibrate_ci.py [--reps 500] [--rows all|long] [--jobs 1]
                                      [--out src/wcdfa/_calibration.npz]

For every length n of the grid, every true exponent α on a grid from 0.05 to 2.45
and every synthetic family with that exponent (wcdfa.uncertainty.families), it
simulates series, computes α̂ with the default box settings (DFA-1, both aggregates)
and stores quantiles of α̂ over the families. Deterministic: the seed of each cell is
derived from (n, α, family).

- Short rows (n <= 10^4, 0.05 grid, ``--reps`` series per cell): empirical quantiles
  per family, and for the lower levels the minimum over the families, for the upper
  levels the maximum (the envelope). About 15 minutes on 2 cores.
- Long rows (n = 2·10^4 ... 10^6, 0.1 grid and α = 1, interpolated to 0.05, fewer
  series as n grows: LONG_REPS): the median and standard deviation of α̂ per family;
  the standard deviation smoothed over n (a least-squares line of log sd against log
  n per family, α and aggregate: the spread of 40 series alone has an 11 % error) and
  multiplied by LONG_INFLATION; each family taken as a Gaussian with that median and
  spread (α̂ is close to Gaussian there), and the quantiles of the equal-weight
  mixture of the families. Not the envelope: at these lengths the families' biases
  differ by more than their spread, and the envelope's band then covers each family
  at 0.98-1.00. The mixture's band covers a family lying apart from the others at
  about the nominal level (its far tail falls inside the other family's share) and
  one coinciding with them at the nominal level of the inflated Gaussian. Both
  aggregates come from the same series. 23 minutes with ``--jobs 2`` on 2 cores.

``--rows long`` recomputes only the long rows and keeps the short ones of ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from wcdfa.fluctuation import alpha_batch, box_scales
from wcdfa.uncertainty import estimates, families, simulate

SHORT_NS = [50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 10000]
LONG_REPS = {20_000: 200, 50_000: 150, 100_000: 100, 300_000: 60, 1_000_000: 40}
LONG_INFLATION = 1.1
ALPHAS = np.round(np.arange(0.05, 2.4501, 0.05), 2)
# α = 1 is on the long grid: there pink noise is the only family, while on either side
# fGn (H -> 1) and fBm (H -> 0) are biased in opposite directions at large n, and a band
# interpolated across them covered pink noise at 0.98-1.00.
LONG_ALPHAS = np.union1d(np.round(np.arange(0.05, 2.4501, 0.1), 2), [1.0])
LOWER = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25]
LEVELS = np.array([*LOWER, 0.5, *[1 - p for p in reversed(LOWER)]])
AGGREGATES = ("mean", "rms")


def envelope(per_family):
    """Quantiles over the families: the lowest lower, the highest upper, the mean median."""
    stacked = np.array(per_family)
    out = np.where(LEVELS < 0.5, stacked.min(0), stacked.max(0))
    out[LEVELS == 0.5] = np.mean(stacked[:, LEVELS == 0.5])
    return out


def mixture_quantiles(medians, sds):
    """Quantiles at LEVELS of the equal-weight mixture of Gaussians N(median, sd²)."""
    parts = [statistics.NormalDist(m, s) for m, s in zip(medians, sds, strict=True)]
    out = np.empty(LEVELS.size)
    for k, p in enumerate(LEVELS):
        lo = min(d.inv_cdf(p) for d in parts)
        hi = max(d.inv_cdf(p) for d in parts)
        for _ in range(60):  # bisection: the mixture's CDF is increasing
            mid = 0.5 * (lo + hi)
            if np.mean([d.cdf(mid) for d in parts]) < p:
                lo = mid
            else:
                hi = mid
        out[k] = 0.5 * (lo + hi)
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


def long_stats(cell):
    """Median and standard deviation of α̂ per family and aggregate, one (n, α) cell.

    Returns an array (aggregates, families, 2); fGn or fBm comes second where present.
    """
    n, alpha = cell
    scales = box_scales(n, 4, None, 20).scales
    reps = LONG_REPS[n]
    out = []
    for family in families(float(alpha)):
        rng = np.random.default_rng(zlib.crc32(f"{n}:{alpha:.2f}:{family}".encode()))
        sims = {agg: [] for agg in AGGREGATES}
        chunk = max(1, min(64, 4_000_000 // n))
        for start in range(0, reps, chunk):
            x = simulate(family, n, float(alpha), min(chunk, reps - start), rng)
            for agg in AGGREGATES:
                sims[agg].append(alpha_batch(x, scales, 1, agg))
        est = [np.concatenate(sims[agg]) for agg in AGGREGATES]
        out.append([(np.median(e), e.std(ddof=1)) for e in est])
    return np.array(out).transpose(1, 0, 2)


def smooth_spread(sd):
    """Least-squares line of log sd against log n, evaluated at the long lengths.

    ``sd`` has the lengths first. The spread falls smoothly with n (a power of n); the
    line pools the 40-200 series of every length, so the spread at 10^6 no longer rests
    on its own 40 series alone (an 11 % standard error).
    """
    log_n = np.log(np.array(list(LONG_REPS), dtype=np.float64))
    design = np.stack([np.ones_like(log_n), log_n - log_n.mean()], axis=1)
    flat = np.log(sd.reshape(len(log_n), -1))
    coef = np.linalg.lstsq(design, flat, rcond=None)[0]
    return np.exp(design @ coef).reshape(sd.shape)


def long_rows(jobs=1):
    cells = [(n, float(alpha)) for n in LONG_REPS for alpha in LONG_ALPHAS]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        stats = list(pool.map(long_stats, cells))
    print(f"long rows simulated: {time.perf_counter() - t0:.1f} s", flush=True)
    q = np.full((len(AGGREGATES), len(LONG_REPS), ALPHAS.size, LEVELS.size), np.nan)
    for j, alpha in enumerate(LONG_ALPHAS):
        per_n = np.array([stats[i * LONG_ALPHAS.size + j] for i in range(len(LONG_REPS))])
        medians = per_n[..., 0]  # (n, aggregates, families)
        spreads = smooth_spread(per_n[..., 1]) * LONG_INFLATION
        for i in range(len(LONG_REPS)):
            for a in range(len(AGGREGATES)):
                q[a, i, np.isclose(ALPHAS, alpha)] = mixture_quantiles(medians[i, a], spreads[i, a])
    on_grid = np.isin(np.round(ALPHAS, 2), np.round(LONG_ALPHAS, 2))
    for a in range(len(AGGREGATES)):  # the 0.05 grid between the long grid's points
        for i in range(len(LONG_REPS)):
            for k in range(LEVELS.size):
                q[a, i, ~on_grid, k] = np.interp(
                    ALPHAS[~on_grid], ALPHAS[on_grid], q[a, i, on_grid, k]
                )
    return q


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--rows", choices=("all", "long"), default="all")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the long rows")
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
    q = np.concatenate([short, long_rows(args.jobs)], axis=1)
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
