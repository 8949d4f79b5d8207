"""AttentionProbe: every head's normalised attention entropy on a fixed probe batch, live.

Every ``every`` optimizer steps the probe runs its batch through the model in eval mode
under no_grad with the random number generators forked (``probe_forward``: training is
bit-identical with and without it) and reduces each attention head's probabilities to
its normalised entropy inside the forward (:mod:`wcdfa.attention.capture`); one host
transfer per reading. It watches the spread of the heads' entropies for
crystallisation (:mod:`wcdfa.attention.crystal`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from wcdfa._checks import check_int, check_real
from wcdfa.attention.crystal import Crystallisation, convergence_steps, spread
from wcdfa.probes.base import Event, ModelProbe, check_name, load_history, probe_forward

__all__ = ["AttentionProbe", "run_batch"]

STATE_FORMAT = "wcdfa.attention/1"


def run_batch(model: Any, batch: Any, forward: Callable[[Any, Any], Any] | None = None) -> Any:
    """Call the model on a probe batch.

    ``forward(model, batch)`` if given, else ``model(**batch)`` for a dict,
    ``model(*batch)`` for a tuple or list, ``model(batch)`` otherwise.
    """
    if forward is not None:
        return forward(model, batch)
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


class AttentionProbe(ModelProbe):
    """Per-head attention entropy every ``every`` steps, with crystallisation events.

    Parameters
    ----------
    batch : tensor, dict or tuple
        The fixed probe batch (``model(batch)``, ``model(**batch)`` or ``model(*batch)``).
    every : int, default 100
        Optimizer steps between readings.
    forward : callable, optional
        ``forward(model, batch)`` when the model is called otherwise.
    capture : callable, optional
        For models with neither ``nn.MultiheadAttention`` nor Hugging Face attention:
        ``capture(model, batch) -> {layer: probs}`` or ``{layer: (probs, valid_keys)}``
        (called in place of the forward, inside ``probe_forward``).
    start, end : float, default 1e-3, 1e-4
        Crystallisation thresholds on the spread of the heads' entropies.
    relative : bool, default False
        Use the spread relative to the mean entropy (see :mod:`wcdfa.attention.crystal`).
    confirm : int, default 3
        Readings a crossing must hold for.
    tol : float, default 1e-3
        Per-head convergence tolerance (:meth:`convergence_steps`).
    name : str, default "attention"
        The metrics prefix.

    Notes
    -----
    Metrics: ``<name>/entropy`` (mean over heads), ``<name>/spread`` (the crystallisation
    criterion), ``<name>/entropy/<layer>/h<i>`` per head, ``<name>/entropy_mean/<layer>``
    and ``<name>/entropy_std/<layer>`` per layer. Events: ``crystallisation_start``,
    ``crystallisation_end`` (at the first reading of the confirming run) and
    ``decrystallised``.
    """

    def __init__(
        self,
        batch: Any,
        every: int = 100,
        *,
        forward: Callable[[Any, Any], Any] | None = None,
        capture: Callable[[Any, Any], dict[str, Any]] | None = None,
        start: float = 1e-3,
        end: float = 1e-4,
        relative: bool = False,
        confirm: int = 3,
        tol: float = 1e-3,
        name: str = "attention",
    ) -> None:
        self.batch = batch
        self.every = check_int("every", every, 1)
        for label, fn in (("forward", forward), ("capture", capture)):
            if fn is not None and not callable(fn):
                msg = f"Argument `{label}` must be callable, but got {type(fn).__name__}"
                raise TypeError(msg)
        self.forward, self.capture = forward, capture
        start, end = check_real("start", start), check_real("end", end)
        if not 0 < end <= start:
            msg = (
                "Arguments `start`, `end` must satisfy 0 < end <= start, "
                f"but got {start!r}, {end!r}"
            )
            raise ValueError(msg)
        self.relative = bool(relative)
        self.confirm = check_int("confirm", confirm, 1)
        self.tol = check_real("tol", tol)
        self.name = check_name(name)
        self._watch = Crystallisation(start, end, self.confirm, self.relative)
        self._history: list[tuple[int, dict[str, list[float]]]] = []
        self._events: list[Event] = []

    # ------------------------------------------------------------------ probe
    @property
    def history(self) -> list[tuple[int, dict[str, list[float]]]]:
        """``(step, {layer: [entropy of each head]})`` per reading, oldest first."""
        return self._history

    def read(self, model: Any) -> dict[str, list[float]]:
        """Return ``{layer: [entropy per head]}`` of ``model`` on the probe batch now."""
        from wcdfa.attention.capture import (  # noqa: PLC0415 - torch only here
            EntropySink,
            attention_modules,
            capturing,
        )

        sink = EntropySink(attention_modules(model))
        with probe_forward(model):
            if self.capture is not None:
                for layer, value in self.capture(model, self.batch).items():
                    probs, valid = value if isinstance(value, tuple) else (value, None)
                    sink.add(str(layer), probs, valid)
            else:
                with capturing(model, sink):
                    run_batch(model, self.batch, self.forward)
        entropies = sink.entropies()
        if not entropies:
            msg = (
                "AttentionProbe found no attention to read: the model has no "
                "nn.MultiheadAttention and no Hugging Face attention; pass capture="
            )
            raise ValueError(msg)
        return entropies

    def observe(self, model: Any, step: int) -> dict[str, list[float]]:
        """Read ``model`` now as the reading of ``step`` (outside a TrainingMonitor)."""
        reading = self.read(model)
        self._history.append((int(step), reading))
        value = spread(_all_heads(reading), relative=self.relative)
        for kind, at, detail in self._watch.update(int(step), value):
            self._events.append(Event(at, self.name, kind, {"spread": value, **detail}))
        return reading

    def metrics(self) -> dict[str, float]:
        """Return the latest reading's metrics (see the class notes); NaN left out."""
        if not self._history:
            return {}
        reading = self._history[-1][1]
        heads = _all_heads(reading)
        out = {
            f"{self.name}/entropy": float(np.nanmean(heads))
            if np.isfinite(heads).any()
            else math.nan,
            f"{self.name}/spread": spread(heads, relative=self.relative),
        }
        for layer, values in reading.items():
            for i, value in enumerate(values):
                out[f"{self.name}/entropy/{layer}/h{i}"] = value
            column = np.asarray(values, dtype=float)
            column = column[np.isfinite(column)]
            if column.size:
                out[f"{self.name}/entropy_mean/{layer}"] = float(column.mean())
                out[f"{self.name}/entropy_std/{layer}"] = float(column.std())
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}

    def head_history(self) -> tuple[list[int], list[str], np.ndarray]:
        """Return ``(steps, heads, entropies)``: ``entropies[j, i]`` of head ``i`` at reading ``j``.

        Heads are named ``"<layer>/h<i>"``.
        """
        steps = [s for s, _ in self._history]
        heads: list[str] = []
        for _, reading in self._history:
            for layer, values in reading.items():
                heads += [
                    f"{layer}/h{i}" for i in range(len(values)) if f"{layer}/h{i}" not in heads
                ]
        table = np.full((len(steps), len(heads)), np.nan)
        for j, (_, reading) in enumerate(self._history):
            for layer, values in reading.items():
                for i, value in enumerate(values):
                    table[j, heads.index(f"{layer}/h{i}")] = value
        return steps, heads, table

    def convergence_steps(self) -> dict[str, int | None]:
        """Each head's convergence step (see :func:`wcdfa.attention.convergence_steps`)."""
        steps, heads, table = self.head_history()
        found = convergence_steps(steps, table, tol=self.tol, confirm=self.confirm)
        return dict(zip(heads, found, strict=True))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Return the readings, events and the crystallisation watch as plain values."""
        return {
            "format": STATE_FORMAT,
            "history": [[step, reading] for step, reading in self._history],
            "events": [e.as_dict() for e in self._events],
            "watch": self._watch.as_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (all of it is checked before anything changes)."""
        history = load_history(
            state, STATE_FORMAT, lambda r: all(isinstance(v, list) for v in r.values())
        )
        events = [Event.from_dict(e) for e in state.get("events", [])]
        watch = state.get("watch")
        try:
            restored = Crystallisation(**watch) if isinstance(watch, dict) else None
        except TypeError:
            restored = None
        if restored is None:
            msg = f"Argument `state` field 'watch' is not a crystallisation watch: {watch!r:.80}"
            raise ValueError(msg)
        self._history, self._events, self._watch = history, events, restored

    # ------------------------------------------------------------------ output
    def plot(self, ax: Any = None, save_path: Any = None, show: bool = False) -> tuple[Any, Any]:
        """Each head's entropy over the readings; ``(fig, ax)``."""
        from wcdfa.plotting import finish, new_figure  # noqa: PLC0415 - matplotlib

        if not self._history:
            msg = f"AttentionProbe {self.name!r} has no reading to plot yet"
            raise ValueError(msg)
        steps, heads, table = self.head_history()
        if ax is None:
            ax = new_figure(show, (10.0, 4.0)).add_subplot()
        for i, head in enumerate(heads):
            ax.plot(steps, table[:, i], linewidth=1.0, label=head)
        for event in self._events:
            ax.axvline(event.step, color="#888888", linestyle=":", linewidth=1)
        ax.set_xlabel("step")
        ax.set_ylabel("normalised attention entropy")
        ax.legend(fontsize=7, frameon=False, ncol=4)
        return finish(ax.figure, save_path, show), ax

    def describe(self) -> str:
        """One sentence on the latest reading."""
        if not self._history:
            return "No attention reading yet."
        step, reading = self._history[-1]
        heads = _all_heads(reading)
        return (
            f"At step {step}, {heads.size} head(s): mean entropy {np.nanmean(heads):.4f}, "
            f"spread {spread(heads, relative=self.relative):.2e} ({self._watch.phase})."
        )

    def __repr__(self) -> str:
        return f"AttentionProbe(every={self.every}, name={self.name!r})"


def _all_heads(reading: dict[str, list[float]]) -> np.ndarray:
    return np.array([v for values in reading.values() for v in values], dtype=float)
