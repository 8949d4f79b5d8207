"""compute_dfa against the peers and the direct per-box loop, measured side by side.

    python benchmarks/bench_dfa.py [--sizes 500 2000 10000 100000 1000000] [--seconds 1]

For each length n (a random walk, seed 0) every implementation is timed in the same
run (median of repeated calls, after one warm-up call) and the table prints the
ratio peer time / wcdfa time: above 1 means wcdfa is faster. The machine is shared
and noisy: compare the ratios, not the absolute times.

Peers, all on the same box sizes as wcdfa's defaults unless said otherwise:

- loop:    the wcdfa 0.1.0 algorithm (a Python loop with np.polyfit per box;
           tests/oracle.py), skipped above n = 10^5 (it takes minutes);
- nolds:   nolds.dfa(nvals=scales, overlap=False, order=1, fit_exp="poly");
- fathon:  fathon.DFA(...).computeFlucVec(scales, revSeg=True, polOrd=1) + fit;
- MFDFA:   MFDFA.MFDFA(x, lag=scales, q=2, order=1) + fit;
- antropy: antropy.detrended_fluctuation(x), numba, with its own lighter scales.

Then, per layout of ``dfa(x, boxes=...)``, its time over the "both" layout's (same
scales; below 1 is faster), each checked against the default's scales.

Then the cost of a running sum (``np.cumsum``) over an elementwise multiply, the
reason the sliding layout stays slower; then antropy at equal work: its own box
sizes (from 4 to n/10 by factors of 1.2) and layout (boxes from the start,
root-mean-square aggregate) given to ``dfa(x, scales=..., boxes="forward",
aggregate="rms")``, which reproduces its α.

Missing peers are reported as such. The last column is |alpha - alpha_oracle| of wcdfa
(the oracle is the loop, or its LAPACK-batched twin above 10^5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from timing import median_time

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from peers import peer_estimators

from oracle import dfa_loop, dfa_lstsq
from wcdfa import compute_dfa, dfa
from wcdfa.layouts import LAYOUTS

LOOP_MAX_N = 100_000
NOLDS_MAX_N = 100_000


def peers():
    """name -> (callable(x, scales) -> alpha, max n) for the peers importable here."""
    found = {"loop": (lambda x, s: dfa_loop(x)[0], LOOP_MAX_N)}
    for name, fn in peer_estimators().items():
        found[name] = (fn, NOLDS_MAX_N if name == "nolds" else None)
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[500, 2000, 10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    available = peers()
    names = list(available)
    missing = {"loop", "nolds", "fathon", "MFDFA", "antropy"} - set(names)
    if missing:
        print(f"not installed, skipped: {', '.join(sorted(missing))}")
    header = f"{'n':>8} {'wcdfa ms':>10} " + " ".join(f"{n + ' x':>10}" for n in names)
    print(header + f" {'|Δα| oracle':>12}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        x = np.cumsum(rng.standard_normal(n))
        scales = compute_dfa(x)[1]
        ours = median_time(lambda x=x: compute_dfa(x), args.seconds)
        cells = []
        for name in names:
            fn, max_n = available[name]
            if max_n is not None and n > max_n:
                cells.append(f"{'skipped':>10}")
                continue
            t = median_time(lambda fn=fn, x=x, s=scales: fn(x, s), args.seconds)
            cells.append(f"{t / ours:>9.1f}x")
        oracle = dfa_loop(x) if n <= LOOP_MAX_N else dfa_lstsq(x)
        diff = abs(compute_dfa(x)[0] - oracle[0])
        print(f"{n:>8} {ours * 1e3:>10.3f} " + " ".join(cells) + f" {diff:>12.1e}")
    print("(x = peer time / wcdfa time, same run; 'skipped': would take minutes)")
    print()
    print(f"{'n':>8} {'both ms':>10} " + " ".join(f"{name + ' /both':>14}" for name in LAYOUTS[1:]))
    for n in args.sizes:
        x = np.cumsum(rng.standard_normal(n))
        times = {
            layout: median_time(lambda x=x, b=layout: dfa(x, boxes=b, ci=None), args.seconds)
            for layout in LAYOUTS
        }
        cells = " ".join(f"{times[name] / times['both']:>13.2f}x" for name in LAYOUTS[1:])
        print(f"{n:>8} {times['both'] * 1e3:>10.3f} {cells}")
    print("(layout time / 'both' time, same run, same scales)")
    scan_cost(args.seconds, rng)
    same_work(args.sizes, args.seconds, rng)


def scan_cost(seconds, rng):
    """np.cumsum against an elementwise multiply: why the sliding layout stays slower."""
    a, b = rng.standard_normal(125_000), rng.standard_normal(125_000)
    scan = median_time(lambda: np.cumsum(a), seconds)
    multiply = median_time(lambda: a * b, seconds)
    print(
        f"np.cumsum of 125,000 values {scan * 1e3:.3f} ms, a * b {multiply * 1e3:.3f} ms: "
        f"the running sum costs {scan / multiply:.1f}x a multiply (same run)"
    )


def same_work(sizes, seconds, rng):
    """antropy against dfa on antropy's own scales and layout (the same work)."""
    try:
        from antropy import detrended_fluctuation
        from antropy.fractal import _log_n  # its box sizes, not public API
    except ImportError:
        print("antropy not installed: no equal-work comparison")
        return
    print()
    print(
        f"{'n':>8} {'scales':>7} {'wcdfa ms':>10} {'antropy ms':>11} {'antropy x':>10} {'|Δα|':>9}"
    )
    for n in sizes:
        x = np.cumsum(rng.standard_normal(n))
        scales = [int(v) for v in _log_n(4, 0.1 * n, 1.2)]

        def ours(x=x, s=scales):
            return dfa(x, scales=s, boxes="forward", aggregate="rms", ci=None)

        theirs = median_time(lambda x=x: detrended_fluctuation(x), seconds)
        t = median_time(ours, seconds)
        diff = abs(ours().alpha - detrended_fluctuation(x))
        print(
            f"{n:>8} {len(scales):>7} {t * 1e3:>10.3f} {theirs * 1e3:>11.3f} "
            f"{theirs / t:>9.2f}x {diff:>9.1e}"
        )
    print("(antropy's scales and layout given to wcdfa.dfa; x = antropy time / wcdfa time)")


if __name__ == "__main__":
    main()
