"""compute_dfa against the direct per-box loop (the 0.1.0 algorithm), side by side.

    python benchmarks/bench_dfa.py [--sizes 500 2000 10000 100000] [--seconds 1]

Prints the median time of each and their ratio, measured in the same run, plus the
agreement in alpha. The loop is skipped where one call would take over a minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracle import dfa_loop  # noqa: E402

from wcdfa import compute_dfa  # noqa: E402


def median_time(fn, seconds):
    fn()  # warm-up (and the cached box layout)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 10_000, 100_000])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'n':>8} {'wcdfa ms':>10} {'loop ms':>10} {'speed-up':>9} {'|Δα|':>9}")
    for n in args.sizes:
        x = np.cumsum(rng.standard_normal(n))
        ours = median_time(lambda: compute_dfa(x), args.seconds)
        loop = median_time(lambda: dfa_loop(x), args.seconds) if n <= 200_000 else float("nan")
        diff = abs(compute_dfa(x)[0] - dfa_loop(x)[0]) if n <= 200_000 else float("nan")
        print(f"{n:>8} {ours * 1e3:>10.3f} {loop * 1e3:>10.1f} {loop / ours:>8.0f}x {diff:>9.1e}")


if __name__ == "__main__":
    main()
