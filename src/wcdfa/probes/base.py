"""The probe protocol: what a TrainingMonitor needs from every training-dynamics probe.

A probe is a small object with a name (the prefix of its metrics), a schedule
(``every`` optimizer steps), a measurement taking a :class:`ProbeContext`, its
metrics, the events it fired (a list it appends to), and its state.
:class:`wcdfa.WeightChangeDFA` is one; ``examples/custom_probe.py`` writes another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from wcdfa._checks import check_int

__all__ = [
    "Event",
    "ModelProbe",
    "Probe",
    "ProbeContext",
    "check_name",
    "event_counts",
    "load_history",
    "probe_forward",
]


@dataclasses.dataclass(frozen=True)
class Event:
    """Something a probe noticed: a regime change, a fired flag, a failure.

    Attributes
    ----------
    step : int
        The optimizer step it happened at.
    probe : str
        The probe's name.
    kind : str
        What happened, e.g. ``"regime_change"``, ``"diverged"``, ``"failed"``.
    detail : dict
        Plain values (numbers, strings, None) describing it.
    """

    step: int
    probe: str
    kind: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, value: Any) -> Event:
        """Rebuild an event from :meth:`as_dict` (a state's), or raise ``ValueError``."""
        if not isinstance(value, dict) or not {"step", "probe", "kind"} <= set(value):
            msg = f"Argument `state` field 'events' must hold event dicts, but got {value!r:.80}"
            raise ValueError(msg)
        detail = dict(value.get("detail") or {})
        return cls(int(value["step"]), str(value["probe"]), str(value["kind"]), detail)

    def as_dict(self) -> dict[str, Any]:
        """Return the event as plain Python values (JSON- and checkpoint-safe)."""
        return {
            "step": self.step,
            "probe": self.probe,
            "kind": self.kind,
            "detail": dict(self.detail),
        }


def event_counts(events: Any) -> dict[str, float]:
    """Count events as metrics for dashboards: ``"<probe>/events/<kind>" -> count``."""
    out: dict[str, float] = {}
    for event in events:
        key = f"{event.probe}/events/{event.kind}"
        out[key] = out.get(key, 0.0) + 1.0
    return out


@dataclasses.dataclass(frozen=True)
class ProbeContext:
    """What a probe may look at when it measures.

    Attributes
    ----------
    step : int
        Optimizer steps taken so far (1 at the first step).
    model : torch.nn.Module or None
        The model the monitor watches, when it was given one.
    optimizer : torch.optim.Optimizer or None
        The optimizer whose step just completed (``attach``), or the one passed to
        ``TrainingMonitor.step``.
    measures_updates : bool
        Whether a probe of the host measures every step's ΔW (a
        :class:`wcdfa.WeightChangeDFA`): a probe with ``wants_alignment = True`` then
        gets ``alignment`` on its steps instead of keeping a copy of its own.
    alignment : wcdfa.alignment.UpdateAlignment or None
        On the steps of such a probe: per tensor ⟨ΔW, −∇L⟩, ‖ΔW‖², ‖∇L‖² of the step
        just taken, from the measurer's snapshot or the optimizer's state.
    """

    step: int
    model: Any = None
    optimizer: Any = None
    measures_updates: bool = False
    alignment: Any = None


@runtime_checkable
class Probe(Protocol):
    """A training-dynamics probe hosted by :class:`wcdfa.TrainingMonitor`.

    ``name`` prefixes its metrics (``"<name>/<metric>"``) and names it in events and
    in the monitor's state; ``every`` is its schedule in optimizer steps; ``events``
    is the list of :class:`Event` it fired, oldest first (the host picks up the new
    ones after each call and hands them to its handlers).
    """

    name: str
    every: int

    @property
    def events(self) -> list[Event]:
        """Every event this probe fired, oldest first."""

    def start(self, context: ProbeContext) -> None:
        """Prepare before the first step (take a baseline); ``context.step`` is 0."""

    def measure(self, context: ProbeContext) -> None:
        """Measure after a scheduled step (append any event it fires to ``events``)."""

    def metrics(self) -> dict[str, float]:
        """Return the current readings, keyed ``"<name>/<metric>"``."""

    def state_dict(self) -> dict[str, Any]:
        """Return the probe's state as plain Python values."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (validate all of it before changing anything)."""


class ModelProbe:
    """The shared part of the probes that read the model on their schedule.

    A subclass sets ``name`` and ``every`` and defines ``observe(model, step)``; this
    gives it ``events``, a ``start`` with nothing to do and a ``measure`` that reads the
    context's model (and says so when the monitor was given none).
    """

    name: str
    every: int
    _events: list[Event]

    @property
    def events(self) -> list[Event]:
        """Every event this probe fired, oldest first."""
        return self._events

    def start(self, context: ProbeContext) -> None:
        """Nothing to take before the first step."""

    def measure(self, context: ProbeContext) -> None:
        """Read the model now (on every rank under torch.distributed)."""
        if context.model is None:
            msg = f"{type(self).__name__} needs the model: TrainingMonitor(model, probes=[...])"
            raise ValueError(msg)
        self.observe(context.model, context.step)

    def observe(self, model: Any, step: int) -> Any:
        """Read ``model`` as the reading of ``step`` (outside a TrainingMonitor too)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One sentence on the latest reading."""
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{self.name}: {self.describe()}"


def load_history(
    state: Any, format_: str, valid: Callable[[dict[str, Any]], bool]
) -> list[tuple[int, Any]]:
    """Check a probe state's ``format`` and return its ``history`` as ``(step, reading)``.

    Every reading must be a dict that ``valid`` accepts; anything else raises
    ``ValueError`` naming the field, before the probe changes anything.
    """
    if not isinstance(state, dict) or state.get("format") != format_:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        msg = f"Argument `state` must be a {format_!r} state_dict, but got {got!r}"
        raise ValueError(msg)
    out = []
    for entry in state.get("history", []):
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
            msg = f"Argument `state` field 'history' must hold [step, reading], got {entry!r:.80}"
            raise ValueError(msg)
        step, reading = entry
        if not isinstance(reading, dict) or not valid(reading):
            msg = f"Argument `state` field 'history' has a bad reading at step {step!r}"
            raise ValueError(msg)
        out.append((check_int("state['history'] step", step, 0), reading))
    return out


def check_name(name: Any) -> str:
    """Return a probe's ``name`` if it is a non-empty string."""
    if not isinstance(name, str) or not name:
        msg = f"Argument `name` must be a non-empty str, but got {name!r}"
        raise ValueError(msg)
    return name


@contextlib.contextmanager
def probe_forward(model: Any, *, grad: bool = False) -> Iterator[None]:
    """Run a probe's forward pass without touching training.

    Inside: every module in eval mode (no dropout, no BatchNorm statistics updated),
    gradients off (``grad=True`` keeps them on, for a probe's own backward through
    ``torch.autograd.grad``, which leaves every ``.grad`` alone), and the random number
    generators of the CPU and of every accelerator the model lives on forked, so that
    training after it is bit-identical to training without it. Each module's own
    train/eval flag is restored on exit, and FSDP2 modules are resharded (the root
    stays unsharded after a forward that no backward follows: its full weights would
    stay in memory and a write to its parameters, a projection's, would be lost).
    """
    torch = sys.modules["torch"]
    modes = [(module, module.training) for module in model.modules()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        model.eval()
        with torch.random.fork_rng(devices=devices), torch.set_grad_enabled(grad):
            yield
    finally:
        for module, mode in modes:
            module.training = mode
        fsdp = (
            getattr(torch.distributed, "fsdp", None) if torch.distributed.is_available() else None
        )
        sharded = getattr(fsdp, "FSDPModule", None)
        if sharded is not None:
            for module, _ in modes:
                if isinstance(module, sharded):
                    module.reshard()  # local: frees the gathered weights, no collective
