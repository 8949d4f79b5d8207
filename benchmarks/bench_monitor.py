"""Per-step cost and memory of WeightChangeDFA.update(model), side by side (CPU).

    python benchmarks/bench_monitor.py [--sizes 0.4 4 23 90] [--repeats 15]

For MLPs of about 0.4M, 4M, 23M and 90M float32 parameters, in the same run:

- floor:  torch._foreach_copy_ of the parameters into a snapshot (the memory
          bandwidth floor of keeping any snapshot at all);
- wcdfa:  monitor.update(model);
- 0.1.0:  the published approach: clone every parameter, then one .item() per
          tensor for the squared difference;
- step:   one Adam training step of the same model (batch 64), for scale: the last
          columns give each monitor's cost as a share of that step.

It prints the median times and the ratios wcdfa / floor and 0.1.0 / wcdfa, the
resident memory the monitor adds (RSS delta after its first update and after all
updates) against the parameters' bytes, and the amortised cost of the DFA itself
per update (window 500, stride 100). Parameters are perturbed between calls as an
optimizer step would.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

from wcdfa import WeightChangeDFA

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def mlp(millions: float) -> nn.Module:
    width = {0.4: 256, 4: 1024, 23: 1024, 90: 2048}.get(millions, 1024)
    depth = max(1, round(millions * 1e6 / (width * width + width)))
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def interleaved_ms(fns, repeats, between=None):
    """Median ms of each callable, timed in turn in every round (fair under noise)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            if between is not None:
                between()
            t0 = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]


def train_step(model: nn.Module):
    """A closure running one Adam step of ``model`` on a random batch of 64."""
    width = next(model.parameters()).shape[1]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(64, width)

    def step() -> None:
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def resident_memory(size: float, updates: int = 30) -> tuple[float, float]:
    """RSS added by a monitor (first update, after ``updates``) / parameter bytes.

    Run in a fresh process per size, after a warm-up on another model, so that
    neither earlier models nor first-use library pages blur the measurement.
    """
    torch.manual_seed(0)
    warm = mlp(0.4)
    warm_monitor = WeightChangeDFA(window=500, stride=10)
    for _ in range(25):
        with torch.no_grad():
            next(warm.parameters()).add_(1e-3)  # a real change: no run of zero updates
        warm_monitor.update(warm)
    model = mlp(size)
    params = [p for p in model.parameters() if p.requires_grad]
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    gc.collect()
    before = rss()
    monitor = WeightChangeDFA(window=500, stride=10)
    monitor.update(model)
    first = rss() - before
    for _ in range(updates):
        with torch.no_grad():
            params[-1].add_(1e-3)
        monitor.update(model)
    return first / param_bytes, (rss() - before) / param_bytes


class OldMonitor:
    """The 0.1.0 per-step norm: clone all parameters, one .item() per tensor."""

    def __init__(self) -> None:
        self.prev: dict[str, torch.Tensor] | None = None

    def update(self, model: nn.Module) -> float | None:
        current = {
            name: p.detach().cpu().clone()
            for name, p in model.named_parameters()
            if p.requires_grad
        }
        if self.prev is None:
            self.prev = current
            return None
        total = 0.0
        for name, p in current.items():
            total += (p - self.prev[name]).square().sum().item()
        self.prev = current
        return float(np.sqrt(total))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.4, 4, 23, 90])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(
        f"{'params':>8} {'floor ms':>9} {'wcdfa ms':>9} {'0.1.0 ms':>9} {'step ms':>8} "
        f"{'wcdfa/floor':>11} {'0.1.0/wcdfa':>11} {'wcdfa/step':>10} {'0.1.0/step':>10} "
        f"{'held':>7} {'RSS first':>10} {'RSS after':>10}"
    )
    for size in args.sizes:
        model = mlp(size)
        params = [p for p in model.parameters() if p.requires_grad]
        n_params = sum(p.numel() for p in params)
        param_bytes = sum(p.numel() * p.element_size() for p in params)

        def perturb(params=params):
            with torch.no_grad():
                params[-1].add_(1e-3)  # a tiny "optimizer step": values change

        with multiprocessing.get_context("spawn").Pool(1) as pool:
            mem_first, mem_after = pool.apply(resident_memory, (size,))
        monitor = WeightChangeDFA(window=500, stride=100)
        snapshot = [p.detach().clone() for p in params]
        old = OldMonitor()
        floor, wcdfa, old_ms, step = interleaved_ms(
            [
                lambda s=snapshot, p=params: torch._foreach_copy_(s, p),
                lambda m=monitor, mod=model: m.update(mod),
                lambda o=old, mod=model: o.update(mod),
                train_step(model),
            ],
            args.repeats,
            perturb,
        )
        held = monitor.snapshot_bytes / param_bytes
        del old, monitor, snapshot
        gc.collect()
        print(
            f"{n_params / 1e6:>7.1f}M {floor:>9.2f} {wcdfa:>9.2f} {old_ms:>9.2f} {step:>8.2f} "
            f"{wcdfa / floor:>10.2f}x {old_ms / wcdfa:>10.1f}x "
            f"{wcdfa / step:>9.0%} {old_ms / step:>10.0%} {held:>6.3f}x "
            f"{mem_first:>9.3f}x {mem_after:>9.3f}x"
        )
    print(
        "(held: bytes of the monitor's tensors / trainable parameter bytes; RSS: resident "
        "memory added by the monitor after its first and after 30 more updates, measured "
        "in a fresh process, same ratio)"
    )

    # The DFA itself, amortised over the updates between recomputations: the same
    # float updates with stride 100 and with a stride that never recomputes.
    norms = (np.abs(np.random.default_rng(0).standard_normal(20_000)) + 0.1).tolist()

    def feed(stride: int) -> float:
        monitor = WeightChangeDFA(window=500, stride=stride)
        t0 = time.perf_counter()
        for v in norms:
            monitor.update(v)
        return (time.perf_counter() - t0) / len(norms) * 1e6

    with_dfa = statistics.median(feed(100) for _ in range(3))
    without = statistics.median(feed(10**9) for _ in range(3))
    print(
        f"window 500, stride 100: {with_dfa:.2f} µs per float update with DFA, "
        f"{without:.2f} µs without: the DFA costs {with_dfa - without:.2f} µs per update "
        "amortised"
    )


if __name__ == "__main__":
    main()
