"""One monitor, every sink: TensorBoard, Weights & Biases (offline), CSV, plots, CLI.

python examples/logging_sinks.py [--steps 1500] [--out runs/sinks]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from wcdfa import RollingWeightChangeDFA


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps")
    parser.add_argument("--out", type=Path, default=Path("runs/sinks"), help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(2048, 16), torch.randn(2048, 1)

    monitor = RollingWeightChangeDFA(window=300, keep_norms=True)
    monitor.attach(optimizer)  # no call in the loop
    writer = SummaryWriter(log_dir=str(args.out / "tensorboard"))
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    run = wandb.init(project="wcdfa-example", dir=str(args.out))
    for step in range(1, args.steps + 1):
        batch = torch.randint(0, 2048, (32,))
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            monitor.end_epoch()
            monitor.log_tensorboard(writer, step)
            monitor.log_wandb(step=step)
    writer.close()
    run.finish()
    csv_path = monitor.save(args.out / "norms.csv")
    monitor.plot(save_path=args.out / "alpha.png", show=False)
    monitor.plot_fluctuations(save_path=args.out / "fluctuations.png", show=False)
    print(f"monitor (its last window of {monitor.window} steps): {monitor}")
    print(monitor.summary())
    print(
        f"wcdfa analyze {csv_path.name} (all {monitor.step_count} steps saved with "
        "keep_norms=True, so its α describes the whole run, not the last window):"
    )
    subprocess.run([sys.executable, "-m", "wcdfa.cli", "analyze", str(csv_path)], check=True)


if __name__ == "__main__":
    main()
