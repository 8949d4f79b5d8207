"""The timer every benchmark here shares: median of repeated calls after a warm-up."""

from __future__ import annotations

import statistics
import time


def median_time(fn, seconds):
    """Median wall time of ``fn()`` over at least ``seconds`` (and 3 calls), after one."""
    fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
