"""‖ΔW‖ from the optimizer's state against the snapshot path (CPU), side by side.

    python benchmarks/bench_derived.py [--sizes 23 90] [--tensors 20 200 1000] [--repeats 9]

For MLPs of bench_monitor.py (``--sizes``, millions of parameters) and for models of
many small tensors (``--tensors``: that many 64x64 weights and biases, half each):
the median time of the snapshot measurement (``update(model)``) and of the derived
one (what an attached monitor does after each step, here through the public probe
call ``measure``), timed in turn after the same step, and the bytes each holds
between steps. Adam, and SGD with Nesterov momentum and weight decay.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_monitor import mlp

from wcdfa import WeightChangeDFA
from wcdfa.probes import ProbeContext


def many_tensors(count: int) -> torch.nn.Module:
    """``count`` parameter tensors: count/2 Linear(64, 64) layers (weight and bias)."""
    return torch.nn.Sequential(*(torch.nn.Linear(64, 64) for _ in range(count // 2)))


def optimizers(model: torch.nn.Module) -> dict[str, torch.optim.Optimizer]:
    params = list(model.parameters())
    return {
        "adam": torch.optim.Adam(params, lr=1e-4),
        "sgd": torch.optim.SGD(params, lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4),
    }


def compare(label: str, model: torch.nn.Module, repeats: int) -> None:
    width = next(model.parameters()).shape[1]
    for name, optimizer in optimizers(model).items():
        loss = model(torch.randn(8, width)).square().mean()
        loss.backward()
        optimizer.step()  # the optimizer's state exists
        snapshot = WeightChangeDFA(window=500, stride=100, method="snapshot")
        snapshot.update(model)
        derived = WeightChangeDFA(window=500, stride=100, method="optimizer")
        context = ProbeContext(step=1, model=model, optimizer=optimizer)
        derived.start(context)
        times: dict[str, list[float]] = {"snapshot": [], "derived": []}
        candidates = (
            ("snapshot", lambda s=snapshot, m=model: s.update(m)),
            ("derived", lambda d=derived, c=context: d.measure(c)),
        )
        for _ in range(repeats):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1e-4)
            for key, fn in candidates:
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
        snap_ms = statistics.median(times["snapshot"]) * 1e3
        der_ms = statistics.median(times["derived"]) * 1e3
        assert derived.method_in_use == "optimizer-state"
        print(
            f"{label:>12} {name:>5} {snap_ms:>12.2f} {der_ms:>11.2f} {der_ms / snap_ms:>12.2f}x "
            f"{snapshot.snapshot_bytes / 2**20:>11.1f} MiB {derived.snapshot_bytes:>11d} B"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", type=float, nargs="*", default=[23, 90], help="MLPs, M params")
    parser.add_argument(
        "--tensors",
        type=int,
        nargs="*",
        default=[20, 200, 1000],
        help="models of this many small tensors",
    )
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per path")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"{'model':>12} {'optim':>5} {'snapshot ms':>12} {'derived ms':>11} "
        f"{'derived/snap':>13} {'held snapshot':>14} {'held derived':>13}"
    )
    for count in args.tensors:
        compare(f"{count} tensors", many_tensors(count), args.repeats)
    for size in args.sizes:
        compare(f"{size:g}M MLP", mlp(size), args.repeats)
    print("(held: parameter-sized bytes kept between steps; the derived path keeps none,")
    print(" only per-tensor Python objects: O(number of tensors))")


if __name__ == "__main__":
    main()
