"""Weight-change DFA in a PyTorch Lightning run: one callback, α in the CSV log.

python examples/lightning_callback.py [--steps 600] [--out runs/lightning]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch

from wcdfa.integrations.lightning import WeightChangeDFACallback


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    parser.add_argument("--out", type=Path, default=Path("runs/lightning"), help="output folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(4096, 16)
    y = torch.sin(x[:, :4].sum(1, keepdim=True)) + 0.1 * torch.randn(4096, 1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True
    )
    callback = WeightChangeDFACallback(window=200, log_every_n_steps=50)
    trainer = pl.Trainer(
        max_steps=args.steps,
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=pl.loggers.CSVLogger(args.out, name="wcdfa"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Regressor(), loader)
    print(f"final: {callback.monitor}")
    print(f"metrics: {trainer.logger.log_dir}/metrics.csv")


if __name__ == "__main__":
    main()
