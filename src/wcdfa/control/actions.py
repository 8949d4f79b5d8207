"""Event handlers that act: each is opt-in, given to :meth:`wcdfa.TrainingMonitor.on_event`.

    monitor.on_event(ScaleLR(optimizer, 0.5), probe="wcdfa", kind="regime_change")
    monitor.on_event(Stop(monitor), kind="diverged")

Each handler is called with the :class:`~wcdfa.probes.Event` and keeps what it did in
``calls`` (the events it acted on). Handlers run inside the monitor's step, on every
rank: an action that enters a collective (a projection) is safe because the events it
reacts to are the same on every rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wcdfa._checks import check_int, check_real
from wcdfa.export import atomic_write
from wcdfa.probes.base import Event

__all__ = ["Project", "SaveCheckpoint", "ScaleLR", "Stop", "TriggerGap"]


class _Action:
    """A handler that records the events it acted on, at most ``limit`` of them."""

    def __init__(self, limit: int | None) -> None:
        self.limit = None if limit is None else check_int("limit", limit, 1)
        self.calls: list[Event] = []

    def __call__(self, event: Event) -> None:
        if self.limit is not None and len(self.calls) >= self.limit:
            return
        self.calls.append(event)
        self.act(event)

    def act(self, event: Event) -> None:
        """Do the action for ``event``."""
        raise NotImplementedError


class ScaleLR(_Action):
    """Multiply every param group's learning rate by ``factor`` (not below ``min_lr``).

    A scheduler that sets the rate from its own base each step (``LambdaLR``) undoes
    this: scale the scheduler's ``base_lrs`` yourself in that case.
    """

    def __init__(
        self, optimizer: Any, factor: float, *, min_lr: float = 0.0, limit: int | None = None
    ) -> None:
        super().__init__(limit)
        self.optimizer = optimizer
        self.factor = check_real("factor", factor)
        if self.factor <= 0:
            msg = f"Argument `factor` must be > 0, but got {factor!r}"
            raise ValueError(msg)
        self.min_lr = check_real("min_lr", min_lr)

    def act(self, event: Event) -> None:
        """Do the action for ``event``."""
        for group in self.optimizer.param_groups:
            group["lr"] = max(self.min_lr, group["lr"] * self.factor)


class Project(_Action):
    """Run a :class:`~wcdfa.control.SpectralProjection` now (on every rank)."""

    def __init__(self, projection: Any, model: Any = None, *, limit: int | None = None) -> None:
        super().__init__(limit)
        self.projection, self.model = projection, model

    def act(self, event: Event) -> None:
        """Do the action for ``event``."""
        self.projection.project(self.model, step=event.step)


class TriggerGap(_Action):
    """Make the next ``steps`` optimizer steps gaps of a :class:`~wcdfa.control.GapSchedule`."""

    def __init__(self, schedule: Any, steps: int = 1, *, limit: int | None = None) -> None:
        super().__init__(limit)
        self.schedule, self.steps = schedule, check_int("steps", steps, 1)

    def act(self, event: Event) -> None:
        """Do the action for ``event``."""
        self.schedule.trigger(self.steps)


class SaveCheckpoint(_Action):
    """``torch.save`` the ``state_dict()`` of each object, atomically, from rank 0.

    ``path`` may hold ``{step}`` and ``{kind}`` (``"ckpt-{step}.pt"``); ``objects`` maps
    a key to anything with ``state_dict()`` (model, optimizer, monitor).
    """

    def __init__(self, path: Any, objects: dict[str, Any], *, limit: int | None = None) -> None:
        super().__init__(limit)
        if not isinstance(objects, dict) or not all(
            callable(getattr(o, "state_dict", None)) for o in objects.values()
        ):
            msg = "Argument `objects` must be a dict name -> object with state_dict()"
            raise TypeError(msg)
        self.path, self.objects = str(path), objects
        self.saved: list[Path] = []

    def act(self, event: Event) -> None:
        """Do the action for ``event``."""
        import torch  # noqa: PLC0415 - checkpoints of torch objects

        from wcdfa._dist import rank  # noqa: PLC0415

        if rank() != 0:
            return
        target = Path(self.path.format(step=event.step, kind=event.kind))
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {k: o.state_dict() for k, o in self.objects.items()}
        payload["event"] = event.as_dict()
        atomic_write(target, lambda f: torch.save(payload, f), mode="wb")
        self.saved.append(target)


class Stop(_Action):
    """Ask the run to stop: ``monitor.stop_requested`` becomes the event.

    A plain loop checks ``monitor.stop_requested``; the Lightning and Hugging Face
    callbacks set the trainer's stop flag themselves.
    """

    def __init__(self, monitor: Any, *, limit: int | None = 1) -> None:
        super().__init__(limit)
        if not callable(getattr(monitor, "request_stop", None)):
            msg = f"Argument `monitor` must be a TrainingMonitor, but got {type(monitor).__name__}"
            raise TypeError(msg)
        self.monitor = monitor

    def act(self, event: Event) -> None:
        """Do the action for ``event``."""
        self.monitor.request_stop(event)
