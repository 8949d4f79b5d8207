"""TrainingMonitor: one schedule, one state and one set of sinks for every probe."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wcdfa._checks import check_int
from wcdfa._warn import warn
from wcdfa.errors import DivergenceError, WCDFAWarning
from wcdfa.export import check_path, write_rows
from wcdfa.measure import UpdateMeasurer, check_optimizer
from wcdfa.probes.base import Event, Probe, ProbeContext

__all__ = ["TrainingMonitor"]

STATE_FORMAT = "wcdfa.training/1"
_PROBE_METHODS = ("start", "measure", "metrics", "state_dict", "load_state_dict")
HOST = "monitor"
"""The ``probe`` of the events the host itself records (a probe's failures)."""


class TrainingMonitor:
    """Host of training-dynamics probes: one optimizer hook drives them all.

    Parameters
    ----------
    model : torch.nn.Module, optional
        The model the probes look at (given to each in its :class:`ProbeContext`).
    probes : sequence of Probe
        Each with a unique ``name`` and a schedule ``every`` (optimizer steps):
        :class:`wcdfa.WeightChangeDFA` (name ``"wcdfa"``, every step), or your own
        (see :class:`wcdfa.probes.Probe`).
    raise_errors : bool, default False
        Keyword-only. A probe that fails (a fit that does not converge, a layer it
        cannot read) is recorded as a ``"failed"`` event with the reason and warned
        about once; with ``True`` the exception propagates instead. A
        :class:`~wcdfa.errors.DivergenceError` that a probe was asked to raise
        (``on_nonfinite="raise"``) always propagates.

    Examples
    --------
    >>> import numpy as np
    >>> from wcdfa import TrainingMonitor, WeightChangeDFA
    >>> monitor = TrainingMonitor(probes=[WeightChangeDFA(window=100, stride=50)])
    >>> rng = np.random.default_rng(0)
    >>> for norm in np.abs(rng.standard_normal(200)) + 0.5:  # floats, as from JAX
    ...     _ = monitor["wcdfa"].update(norm)
    >>> sorted(monitor.metrics())[:2]
    ['wcdfa/alpha', 'wcdfa/alpha_ci_high']
    >>> [(e.step, e.kind, e.detail["to"]) for e in monitor.events]
    [(100, 'regime_change', 'disordered')]
    """

    def __init__(
        self, model: Any = None, probes: Sequence[Probe] = (), *, raise_errors: bool = False
    ) -> None:
        self.model = model
        self.probes = list(probes)
        self.raise_errors = bool(raise_errors)
        names = set()
        for i, probe in enumerate(self.probes):
            missing = [m for m in _PROBE_METHODS if not callable(getattr(probe, m, None))]
            name = getattr(probe, "name", None)
            if missing or not isinstance(name, str) or not name:
                msg = (
                    f"Argument `probes[{i}]` must be a probe (a non-empty str `name`, `every` "
                    f"and {', '.join(_PROBE_METHODS)}), but got {type(probe).__name__}"
                    + (f" without {', '.join(missing)}" if missing else "")
                )
                raise TypeError(msg)
            check_int(f"probes[{i}].every", getattr(probe, "every", None), 1)
            if name in names:
                msg = f"Argument `probes` must have unique names, but {name!r} is repeated"
                raise ValueError(msg)
            names.add(name)
        self._updates: Any = next(  # the probe whose measurer gives ΔW's alignment
            (p for p in self.probes if isinstance(getattr(p, "measurer", None), UpdateMeasurer)),
            None,
        )
        self._step = 0
        self._failures: list[Event] = []  # the probes' own events live in the probes
        self._seen = {p.name: len(_events_of(p)) for p in self.probes}
        self._handlers: list[tuple[Callable[[Event], Any], str | None, str | None]] = []
        self._hooks: list[Any] = []
        self._started = False
        self._warned_failure: set[str] = set()
        self.stop_requested: Event | None = None
        """The event a :class:`wcdfa.control.Stop` handler stopped the run on, or None."""

    def __getitem__(self, name: str) -> Probe:
        """Return the probe called ``name``."""
        for probe in self.probes:
            if probe.name == name:
                return probe
        msg = f"No probe named {name!r}; the probes are {[p.name for p in self.probes]}"
        raise KeyError(msg)

    @property
    def step_count(self) -> int:
        """Optimizer steps seen (by :meth:`attach` or :meth:`step`)."""
        return self._step

    @property
    def events(self) -> list[Event]:
        """Every event of every probe, and the probes' failures, oldest first.

        Each is ``(step, probe, kind, detail)``.
        """
        merged = list(self._failures)
        for probe in self.probes:
            merged += _events_of(probe)
        return sorted(merged, key=lambda e: e.step)

    # -------------------------------------------------------------- driving
    def attach(self, optimizer: Any) -> Any:
        """Drive every probe from ``optimizer``'s step post-hook: no call in the loop.

        The probes take their baselines now. Micro-batches of gradient accumulation
        and steps skipped by AMP's ``GradScaler`` call no ``step()``, so they count
        no step.

        Returns
        -------
        torch.utils.hooks.RemovableHandle
        """
        check_optimizer(optimizer)
        self.start(optimizer)

        def hook(opt: Any, args: Any, kwargs: Any) -> None:
            self.step(optimizer=opt)

        handle = optimizer.register_step_post_hook(hook)
        self._hooks.append(handle)
        return handle

    def detach(self) -> None:
        """Remove the optimizer hooks added by :meth:`attach`."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def start(self, optimizer: Any = None) -> None:
        """Let the probes take their baselines now, before the first step.

        :meth:`attach` does it; in a custom loop call it before training. Otherwise
        the first :meth:`step` takes the baselines and measures nothing.
        """
        self._started = True
        context = ProbeContext(
            self._step, self.model, optimizer, measures_updates=self._updates is not None
        )
        for probe in self.probes:
            self._run(probe, "start", context)

    def step(self, optimizer: Any = None) -> None:
        """Count one optimizer step and run the probes that are due (custom loops).

        Call it after ``optimizer.step()`` when the monitor is not attached.
        """
        if not self._started:
            self.start(optimizer)  # the baselines: nothing to compare with yet
            return
        self._step += 1
        due = [p for p in self.probes if self._step % p.every == 0]
        context = ProbeContext(self._step, self.model, optimizer, self._updates is not None)
        if any(p is self._updates for p in due):  # first: the others may read its alignment
            measurer = self._updates.measurer
            wanted = any(getattr(p, "wants_alignment", False) for p in due)
            if wanted:
                measurer.request_alignment()
            self._run(self._updates, "measure", context)
            if wanted:
                context = dataclasses.replace(context, alignment=measurer.take_alignment())
        for probe in due:
            if probe is not self._updates:
                self._run(probe, "measure", context)

    def mark(self, tag: str) -> None:
        """Tag the next step in every probe that takes tags (:meth:`WeightChangeDFA.mark`).

        Call it before ``optimizer.step()``; :class:`wcdfa.control.GapSchedule` does.
        """
        marks: list[Callable[[str], Any]] = [
            p.mark  # type: ignore[attr-defined]
            for p in self.probes
            if callable(getattr(p, "mark", None))
        ]
        if not marks:
            msg = f"No probe of {[p.name for p in self.probes]} takes tags (a mark(tag) method)"
            raise ValueError(msg)
        for mark in marks:
            mark(tag)

    def _run(self, probe: Probe, method: str, context: ProbeContext) -> None:
        try:
            getattr(probe, method)(context)
        except DivergenceError:
            self._dispatch(probe)
            raise  # the probe was asked to raise
        except Exception as exc:
            if self.raise_errors:
                raise
            self._failed(probe.name, f"{type(exc).__name__}: {exc}", context.step, method)
        self._dispatch(probe)

    def _dispatch(self, probe: Probe) -> None:
        """Hand the probe's new events to the handlers."""
        events = _events_of(probe)
        new, self._seen[probe.name] = events[self._seen[probe.name] :], len(events)
        for event in new:
            self._notify(event)

    def _notify(self, event: Event) -> None:
        for handler, probe, kind in list(self._handlers):
            if (probe is None or probe == event.probe) and (kind is None or kind == event.kind):
                try:
                    handler(event)
                except DivergenceError:
                    raise
                except Exception as exc:
                    if self.raise_errors:
                        raise
                    self._failed("handler", f"{type(exc).__name__}: {exc}", event.step, event.kind)

    def _failed(self, who: str, reason: str, step: int, during: str) -> None:
        """Record a failure as a ``"failed"`` event (warned once per ``who``); go on."""
        failure = Event(step, HOST, "failed", {"probe": who, "during": during, "reason": reason})
        self._failures.append(failure)
        if who != "handler":
            self._notify(failure)
        if who not in self._warned_failure:
            self._warned_failure.add(who)
            what = "An event handler" if who == "handler" else f"Probe {who!r}"
            warn(
                f"{what} failed at step {step} ({reason}); recorded as a 'failed' event, "
                "training goes on (warned once).",
                WCDFAWarning,
            )

    def request_stop(self, event: Event | None = None) -> None:
        """Ask the run to stop (:class:`wcdfa.control.Stop` calls it): :attr:`stop_requested`."""
        if self.stop_requested is None:
            self.stop_requested = event or Event(self._step, HOST, "stop", {})

    def on_event(
        self,
        handler: Callable[[Event], Any],
        *,
        probe: str | None = None,
        kind: str | None = None,
    ) -> Callable[[], None]:
        """Call ``handler(event)`` for every new event (of ``probe`` and ``kind`` if given).

        Handlers run after the monitor's step that found the event. A handler may
        act: log an alert, lower the learning rate, stop the run (the ready-made
        actions are in :mod:`wcdfa.control`). A handler that raises is recorded as a
        ``"failed"`` event and warned about once; training goes on (with
        ``raise_errors=True`` the exception propagates). Returns a function that
        removes the handler.
        """
        if not callable(handler):
            msg = f"Argument `handler` must be callable, but got {type(handler).__name__}"
            raise TypeError(msg)
        entry = (handler, probe, kind)
        self._handlers.append(entry)
        return lambda: self._handlers.remove(entry)

    # ---------------------------------------------------------------- output
    def metrics(self) -> dict[str, float]:
        """Return one flat dict: every probe's metrics (``"<name>/<metric>"``)."""
        out: dict[str, float] = {}
        for probe in self.probes:
            out.update(probe.metrics())
        return out

    def state_dict(self) -> dict[str, Any]:
        """Return the state of the monitor and every probe, as plain Python values.

        Safe for ``torch.save`` and ``torch.load(weights_only=True)``.
        """
        return {
            "format": STATE_FORMAT,
            "step": self._step,
            "failures": [e.as_dict() for e in self._failures],
            "probes": {p.name: p.state_dict() for p in self.probes},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; every probe must be present under its name."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            msg = f"Argument `state` must be a {STATE_FORMAT!r} state_dict, but got {got!r}"
            raise ValueError(msg)
        probes = state.get("probes")
        names = [p.name for p in self.probes]
        if not isinstance(probes, dict) or sorted(probes) != sorted(names):
            got = sorted(probes) if isinstance(probes, dict) else probes
            msg = f"Argument `state` must hold the probes {names}, but holds {got!r}"
            raise ValueError(msg)
        step = check_int("state['step']", state.get("step"), 0)
        failures = [Event.from_dict(e) for e in state.get("failures", [])]
        for probe in self.probes:
            probe.load_state_dict(probes[probe.name])
        self._step, self._failures = step, failures
        self._seen = {p.name: len(_events_of(p)) for p in self.probes}

    def log_wandb(self, step: int | None = None) -> None:
        """Log :meth:`metrics` to the active wandb run (rank zero only)."""
        from wcdfa.integrations.wandb import log_metrics  # noqa: PLC0415

        log_metrics(self.metrics(), self._step if step is None else step)

    def log_tensorboard(self, writer: Any, step: int | None = None) -> None:
        """Write :meth:`metrics` to a TensorBoard ``SummaryWriter`` (rank zero only)."""
        from wcdfa.integrations.tensorboard import write_scalars  # noqa: PLC0415

        write_scalars(writer, self.metrics(), self._step if step is None else step)

    def save(self, path: Any) -> Path:
        """Write the events as CSV or JSON Lines (``step, probe, kind, detail``).

        Each probe's own record has its own export (``monitor["wcdfa"].save(...)``).
        """
        check_path(path)
        rows = [
            {"step": e.step, "probe": e.probe, "kind": e.kind, "detail": str(e.detail)}
            for e in self.events
        ]
        return write_rows(path, rows, fields=["step", "probe", "kind", "detail"])

    def plot(self, save_path: Any = None, show: bool = True) -> tuple[Any, list[Any]]:
        """One panel per probe that can draw itself (a ``plot(ax=...)`` method).

        Returns ``(fig, axes)``; ``save_path`` and ``show`` as the monitors' plots.

        Raises
        ------
        ValueError
            If no probe can plot.
        """
        from wcdfa.plotting import plot_panels  # noqa: PLC0415 - matplotlib is optional

        drawable = [p for p in self.probes if callable(getattr(p, "plot", None))]
        if not drawable:
            msg = f"No probe of {[p.name for p in self.probes]} has a plot(ax=...) method"
            raise ValueError(msg)
        draws = [lambda ax, p=probe: p.plot(ax=ax, show=False) for probe in drawable]
        return plot_panels(draws, save_path=save_path, show=show)

    def __str__(self) -> str:
        lines = [f"TrainingMonitor at step {self._step}: {len(self.events)} event(s)"]
        for probe in self.probes:
            text = str(probe)
            lines.append(f"  {text}" if text.startswith(probe.name) else f"  {probe.name}: {text}")
            describe = getattr(probe, "describe", None)
            if callable(describe):
                lines.append(f"    {describe()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        names = ", ".join(f"{p.name}(every={p.every})" for p in self.probes)
        return f"TrainingMonitor(step={self._step}, probes=[{names}])"


def _events_of(probe: Any) -> list[Event]:
    """Return a probe's events (none for a probe that keeps none)."""
    return list(getattr(probe, "events", ()))
