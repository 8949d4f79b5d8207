"""‖ΔW‖ from the optimizer's state against the snapshot path (CPU, Adam), side by side.

    python benchmarks/bench_derived.py [--sizes 0.4 4 23 90] [--repeats 9]

For the MLPs of bench_monitor.py: the median time of the snapshot measurement
(``update(model)``) and of the derived one (the optimizer post-hook of an attached
monitor with ``method="optimizer"``), timed in turn after the same Adam step, and the
bytes each holds between steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_monitor import mlp

from wcdfa import WeightChangeDFA


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.4, 4, 23, 90])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"{'params':>8} {'snapshot ms':>12} {'derived ms':>11} {'derived/snap':>13} "
        f"{'held snapshot':>14} {'held derived':>13} {'tensors':>8}"
    )
    for size in args.sizes:
        model = mlp(size)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        loss = model(torch.randn(8, next(model.parameters()).shape[1])).square().mean()
        loss.backward()
        optimizer.step()
        snapshot = WeightChangeDFA(window=500, stride=100, method="snapshot")
        snapshot.update(model)
        derived = WeightChangeDFA(window=500, stride=100, method="optimizer")
        derived.attach(optimizer)
        key = ("optimizer", id(optimizer))
        times: dict[str, list[float]] = {"snapshot": [], "derived": []}
        candidates = (
            ("snapshot", lambda s=snapshot, m=model: s.update(m)),
            ("derived", lambda d=derived, o=optimizer, k=key: d._update_optimizer(o, k)),
        )
        for _ in range(args.repeats):
            for name, fn in candidates:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        snap_ms = statistics.median(times["snapshot"]) * 1e3
        der_ms = statistics.median(times["derived"]) * 1e3
        n = sum(p.numel() for p in model.parameters())
        n_tensors = len(list(model.parameters()))
        print(
            f"{n / 1e6:>7.1f}M {snap_ms:>12.2f} {der_ms:>11.2f} {der_ms / snap_ms:>12.2f}x "
            f"{snapshot.snapshot_bytes / 2**20:>11.1f} MiB {derived.snapshot_bytes:>11d} B "
            f"{n_tensors:>8}"
        )
    print("(held: parameter-sized bytes kept between steps; the derived path keeps none,")
    print(" only per-tensor Python objects: O(number of tensors))")


if __name__ == "__main__":
    main()
