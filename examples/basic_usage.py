"""A real small PyTorch training run watched by WeightChangeDFA.

A two-layer MLP learns a noisy non-linear regression with Adam; every optimizer step
adds ‖ΔW‖ to the monitor, which prints α and the regime whenever it recomputes.

    python examples/basic_usage.py [--steps 3000] [--window 500] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from wcdfa import WeightChangeDFA


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps")
    parser.add_argument("--window", type=int, default=500, help="DFA window (samples)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    x = torch.randn(4096, 16)
    y = torch.sin(x[:, :4].sum(1, keepdim=True)) + 0.1 * torch.randn(4096, 1)
    model = nn.Sequential(nn.Linear(16, 128), nn.ReLU(), nn.Linear(128, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    monitor = WeightChangeDFA(window=args.window)
    monitor.update(model)  # baseline weights
    for step in range(1, args.steps + 1):
        batch = torch.randint(0, x.shape[0], (64,))
        loss = nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        monitor.update(model)
        if monitor.ready and step % monitor.stride == 0:
            alpha, regime = monitor.alpha, monitor.regime
            print(f"step {step:5d}  loss {loss.item():.4f}  α={alpha:.3f}  {regime}")

    print(f"final: {monitor}")
    print(monitor.describe())


if __name__ == "__main__":
    main()
