"""The α record of a monitor: recomputation, history, fit, per-group α, regime events."""

from __future__ import annotations

import array
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa import regime as _regime
from wcdfa._warn import warn
from wcdfa.analysis import DFAResult, dfa, with_interval
from wcdfa.errors import DFAFailedWarning, NearConstantWarning
from wcdfa.fluctuation import constant_reason
from wcdfa.probes.base import Event

if TYPE_CHECKING:
    from wcdfa.settings import MonitorSettings

__all__ = ["AlphaTrack"]


class AlphaTrack:
    """Every α of a window, the fit behind the latest, and the confirmed regime.

    ``events`` is the list the regime changes are appended to (the monitor's).
    """

    def __init__(self, settings: MonitorSettings, name: str) -> None:
        self.settings, self.name = settings, name
        self.reset()

    def reset(self) -> None:
        """Forget every α."""
        self.fit: DFAResult | None = None
        # compact: 8 bytes per recomputation, whatever the length of the run
        self.history: array.array[float] = array.array("d")
        self.steps: array.array[int] = array.array("q")
        self.group_alphas: dict[str, float | None] = {}
        # (regime of the last regime_change event, regime of the latest α, its run)
        self.regime_run: tuple[str | None, str | None, int] = (None, None, 0)

    @property
    def result(self) -> DFAResult | None:
        """The fit behind the latest α, its interval computed on first access."""
        ci = self.settings.ci
        if self.fit is not None and ci is not None and self.fit.level is None:
            self.fit = with_interval(self.fit, ci)
        return self.fit

    def recompute(
        self,
        signal: NDArray[np.float64],
        group_rows: NDArray[np.float64],
        group_names: list[str] | None,
        step: int,
        events: list[Event],
    ) -> float | None:
        """Run DFA on ``signal``; return the new α, or None (warned) if there is none."""
        reason = constant_reason(signal)
        if reason is not None:
            warn(
                f"Weight-update magnitudes are near-constant ({reason}): the model may "
                "have converged or stopped learning; keeping the last α.",
                NearConstantWarning,
            )
            return None
        try:
            fit = self._dfa(signal)
        except ValueError as exc:
            warn(f"DFA computation failed: {exc}", DFAFailedWarning)
            return None
        self.fit = fit
        self.group_alphas = {}
        for name, column in zip(group_names or [], group_rows.T, strict=True):
            self.group_alphas[name] = self.plain_alpha(column)
        self.history.append(fit.alpha)
        self.steps.append(step)
        self._regime_events(fit.alpha, step, events)
        return fit.alpha

    def plain_alpha(self, column: NDArray[np.float64]) -> float | None:
        """α of another series of the monitor (a group's, the clean steps'), or None.

        None, without a warning, for a series that is incomplete, near-constant or
        has no fit: the monitor's own α already warns about its window.
        """
        if not np.all(np.isfinite(column)) or constant_reason(column) is not None:
            return None
        try:
            return self._dfa(column).alpha
        except ValueError:
            return None

    def _dfa(self, signal: NDArray[np.float64]) -> DFAResult:
        s = self.settings
        return dfa(signal, order=s.order, aggregate=s.aggregate, ci=None, **s.box_options)

    def _regime_events(self, alpha: float, step: int, events: list[Event]) -> None:
        """Fire ``regime_change`` once a new regime holds for ``confirm`` recomputations."""
        regime = _regime.classify(alpha, self.settings.thresholds)
        confirmed, candidate, count = self.regime_run
        count = count + 1 if regime == candidate else 1
        if count >= self.settings.confirm and regime != confirmed:
            details = {"from": confirmed, "to": regime, "alpha": alpha}
            events.append(Event(step, self.name, "regime_change", details))
            confirmed = regime
        self.regime_run = (confirmed, regime, count)

    def state(self) -> dict[str, Any]:
        """Return the record as plain Python values (the interval is recomputed)."""
        fit = None
        if self.fit is not None:
            fit = self.fit.as_dict()
            fit.update(ci_low=None, ci_high=None, level=None)
        return {
            "alpha_history": self.history.tolist(),
            "alpha_steps": self.steps.tolist(),
            "group_alphas": dict(self.group_alphas),
            "result": fit,
            "regime_run": list(self.regime_run),
        }

    def restore(
        self,
        history: list[float],
        steps: list[int],
        group_alphas: dict[str, float | None],
        result: dict[str, Any] | None,
        regime_run: tuple[str | None, str | None, int],
    ) -> None:
        """Restore validated fields of :meth:`state`."""
        self.history = array.array("d", history)
        self.steps = array.array("q", steps)
        self.group_alphas = group_alphas
        self.fit = None if result is None else DFAResult(**result)
        self.regime_run = regime_run
