"""A deterministic CPU training run, for the checkpoint/resume test.

python tests/resume_job.py full OUT.json
python tests/resume_job.py first CKPT_DIR        # steps 1..500, then checkpoint
python tests/resume_job.py second CKPT_DIR OUT.json   # fresh process: 501..1000
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

from wcdfa import RollingWeightChangeDFA

STEPS, SAVE_AT = 1000, 500


def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    data = [
        (torch.randn(16, 8, generator=gen), torch.randn(16, 1, generator=gen)) for _ in range(STEPS)
    ]
    monitor = RollingWeightChangeDFA(window=100, stride=20)
    return model, opt, data, monitor


def train(model, opt, data, monitor, steps):
    for step in steps:
        x, y = data[step]
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.update(model)
        if step % 50 == 49:
            monitor.end_epoch()


def main():
    phase = sys.argv[1]
    model, opt, data, monitor = setup()
    if phase == "second":
        ckpt = Path(sys.argv[2])
        state = torch.load(ckpt / "model.pt", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        monitor.load_state_dict(json.loads((ckpt / "monitor.json").read_text()), model=model)
        train(model, opt, data, monitor, range(SAVE_AT, STEPS))
        out = Path(sys.argv[3])
    else:
        monitor.update(model)  # baseline
        train(model, opt, data, monitor, range(SAVE_AT if phase == "first" else STEPS))
        if phase == "first":
            ckpt = Path(sys.argv[2])
            torch.save(
                {"model": model.state_dict(), "optimizer": opt.state_dict()}, ckpt / "model.pt"
            )
            (ckpt / "monitor.json").write_text(json.dumps(monitor.state_dict()))
            return
        out = Path(sys.argv[2])
    epochs, alphas = monitor.epoch_history
    out.write_text(
        json.dumps(
            {
                "history": monitor.history,
                "signal": monitor.get_signal().tolist(),
                "epochs": epochs.tolist(),
                "epoch_alphas": [None if a != a else a for a in alphas],
                "step_count": monitor.step_count,
            }
        )
    )


if __name__ == "__main__":
    main()
