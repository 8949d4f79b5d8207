"""A probe of your own beside weight-change DFA, both driven by one TrainingMonitor.

``OutputScaleProbe`` measures the median norm of the model's output on a fixed probe
batch every ``every`` steps (in eval mode, without gradients and without consuming
random numbers, through ``wcdfa.probes.probe_forward``, so that training is
bit-identical with and without it) and fires an event when it has grown ``factor``
times since its first reading. It shows the whole probe protocol: ``name``,
``every``, ``events``, ``start``, ``measure``, ``metrics``, ``state_dict`` and
``load_state_dict``.

    python examples/custom_probe.py [--steps 2000] [--every 100]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from wcdfa import TrainingMonitor, WeightChangeDFA
from wcdfa.probes import Event, ProbeContext, probe_forward


class OutputScaleProbe:
    """Median ‖f(x)‖ over a fixed probe batch; an event when it grows ``factor`` times."""

    name = "output"

    def __init__(self, batch: torch.Tensor, every: int = 100, factor: float = 10.0) -> None:
        self.batch, self.every, self.factor = batch, every, factor
        self.events: list[Event] = []
        self.history: list[tuple[int, float]] = []

    def start(self, context: ProbeContext) -> None:
        """Nothing to take before the first step."""

    def measure(self, context: ProbeContext) -> None:
        """Read the output scale on the probe batch, untouched training."""
        with probe_forward(context.model):
            scale = float(context.model(self.batch).norm(dim=-1).median())
        self.history.append((context.step, scale))
        first = self.history[0][1]
        if scale > self.factor * first and not self.events:
            self.events.append(
                Event(context.step, self.name, "grew", {"scale": scale, "first": first})
            )

    def metrics(self) -> dict[str, float]:
        """Return the latest reading."""
        return {f"{self.name}/scale": self.history[-1][1]} if self.history else {}

    def state_dict(self) -> dict[str, Any]:
        """Return the readings and events as plain values."""
        return {
            "history": [list(h) for h in self.history],
            "events": [e.as_dict() for e in self.events],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        history = [(int(k), float(v)) for k, v in state["history"]]
        self.events = [Event(**e) for e in state["events"]]
        self.history = history

    def plot(self, ax: Any, show: bool = False) -> None:
        """Draw the readings into ``ax`` (TrainingMonitor.plot gives it a panel)."""
        steps = [s for s, _ in self.history]
        ax.plot(steps, [v for _, v in self.history], ".-")
        ax.set_ylabel("median ‖f(x)‖")
        ax.set_xlabel("step")

    def __str__(self) -> str:
        if not self.history:
            return f"{self.name}: no reading yet"
        step, scale = self.history[-1]
        return f"{self.name}: median output norm {scale:.3g} at step {step}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps")
    parser.add_argument("--every", type=int, default=100, help="steps between probe readings")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 64),
        torch.nn.BatchNorm1d(64),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(64, 4),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = torch.randn(4096, 16), torch.randint(0, 4, (4096,))
    monitor = TrainingMonitor(
        model, [WeightChangeDFA(window=500), OutputScaleProbe(x[:256], every=args.every)]
    )
    monitor.attach(optimizer)  # one hook drives both probes
    monitor.on_event(lambda e: print(f"event at step {e.step}: {e.probe} {e.kind} {e.detail}"))
    try:
        from tqdm import tqdm

        steps: Any = tqdm(range(args.steps), desc="training", mininterval=1.0)
    except ImportError:
        steps = range(args.steps)
    for step in steps:
        batch = torch.randint(0, x.shape[0], (64,))
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 500 == 0 and not hasattr(steps, "set_postfix"):
            print(f"step {step}: loss {loss.item():.3f}")
    print(monitor)


if __name__ == "__main__":
    main()
