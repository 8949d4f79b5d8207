"""The readings of a monitor: α history, fit, window, left-out steps, from its parts.

:class:`MonitorReadings` is mixed into :class:`wcdfa.WeightChangeDFA`. It reads the
monitor's three parts, public inside the package: ``recorder``
(:class:`~wcdfa.recorder.SeriesRecorder`, the window and the left-out steps),
``track`` (:class:`~wcdfa.alphas.AlphaTrack`, every α and the fit) and ``measurer``
(:class:`~wcdfa.measure.UpdateMeasurer`, snapshots, optimizer state and groups).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from wcdfa import regime as _regime

if TYPE_CHECKING:
    from wcdfa.alphas import AlphaTrack
    from wcdfa.analysis import DFAResult
    from wcdfa.measure import UpdateMeasurer
    from wcdfa.probes.base import Event
    from wcdfa.recorder import SeriesRecorder
    from wcdfa.settings import MonitorSettings

__all__ = ["MonitorReadings"]


class MonitorReadings:
    """Read-only views of a monitor's record (every one a copy or a plain value)."""

    recorder: SeriesRecorder
    track: AlphaTrack
    measurer: UpdateMeasurer
    settings: MonitorSettings
    ci: float | None

    if TYPE_CHECKING:

        @property
        def alpha(self) -> float | None:
            """The current α (the monitor's)."""

    @property
    def thresholds(self) -> tuple[float, float]:
        """``(ordered, disordered)`` regime boundaries."""
        return self.settings.thresholds

    @property
    def ordered_threshold(self) -> float:
        """α above this is *ordered*."""
        return float(self.settings.thresholds[0])

    @property
    def disordered_threshold(self) -> float:
        """α below this is *disordered*."""
        return float(self.settings.thresholds[1])

    @property
    def regime(self) -> str | None:
        """``'ordered'``, ``'critical'`` or ``'disordered'``; ``None`` before α exists."""
        alpha = self.alpha
        return None if alpha is None else _regime.classify(alpha, self.thresholds)

    @property
    def ready(self) -> bool:
        """Whether an α has been computed."""
        return self.alpha is not None

    @property
    def alpha_clean(self) -> float | None:
        """α of the last ``window`` untagged steps (see :meth:`mark`).

        The same as :attr:`alpha` while no step has been tagged; after the first tag,
        ``None`` until ``window`` untagged samples exist, then recomputed with α.
        """
        tags = self.recorder.tags
        if not tags.used:
            return self.alpha
        return tags.history[-1] if tags.history else None

    @property
    def alpha_clean_history(self) -> list[float]:
        """Every α of the clean steps, oldest first (empty while nothing is tagged)."""
        return self.recorder.tags.history.tolist()

    @property
    def alpha_clean_steps(self) -> list[int]:
        """The step at which each α of :attr:`alpha_clean_history` was computed."""
        return self.recorder.tags.history_steps.tolist()

    @property
    def tagged(self) -> bool:
        """Whether any step has been tagged (then :attr:`alpha_clean` has its own window)."""
        return self.recorder.tags.used

    @property
    def tagged_steps(self) -> dict[str, list[int]]:
        """Each tag with the steps it was given (:meth:`mark`, ``update(..., tag=)``)."""
        return self.recorder.tags.tagged_steps()

    @property
    def history(self) -> list[float]:
        """Every α computed so far, oldest first."""
        return self.track.history.tolist()

    @property
    def history_steps(self) -> list[int]:
        """The step at which each α of :attr:`history` was computed."""
        return self.track.steps.tolist()

    @property
    def group_alphas(self) -> dict[str, float | None]:
        """α per parameter group (``groups=``), from the same recomputation as α.

        ``None`` for a group whose window is constant (e.g. frozen) or incomplete.
        """
        return dict(self.track.group_alphas)

    @property
    def result(self) -> DFAResult | None:
        """The full :class:`~wcdfa.DFAResult` behind the current α (interval included).

        The interval is computed on first access after each recomputation, so it
        costs nothing to updates that do not read it.
        """
        return self.track.result

    @property
    def alpha_ci(self) -> tuple[float, float] | None:
        """``(low, high)`` confidence interval for α, or ``None``."""
        result = self.result
        if result is None or self.ci is None:
            return None
        return result.ci_low, result.ci_high

    @property
    def r_squared(self) -> float | None:
        """R² of the log-log fit behind the current α, or ``None``."""
        return None if self.track.fit is None else self.track.fit.r_squared

    @property
    def scales(self) -> NDArray[np.int64] | None:
        """Box sizes of the current fit, or ``None``."""
        return None if self.track.fit is None else self.track.fit.scales

    @property
    def fluctuations(self) -> NDArray[np.float64] | None:
        """F(s) of the current fit, or ``None``."""
        return None if self.track.fit is None else self.track.fit.fluctuations

    @property
    def n_samples(self) -> int:
        """Samples currently in the window (at most ``window``)."""
        return self.recorder.n_samples

    @property
    def step_count(self) -> int:
        """Steps recorded since construction or the last :meth:`reset`.

        Every update after the baseline counts, also one whose value is left out of
        the window (non-finite, lost, or skipped at lr = 0).
        """
        return self.recorder.step_count

    @property
    def diverged(self) -> bool:
        """Whether a non-finite ‖ΔW‖ has been recorded."""
        return bool(self.nonfinite_steps)

    @property
    def nonfinite_steps(self) -> list[int]:
        """Steps whose ‖ΔW‖ was NaN or infinite (left out of the window)."""
        self.recorder.flush()
        return self.recorder.nonfinite_steps.tolist()

    @property
    def lost_steps(self) -> list[int]:
        """Steps whose measured value could not be recorded (see LostSamplesWarning).

        A device value whose fetch to the host failed, or a step on which a rank took
        a new baseline of sharded parameters while the others did not (its sum over
        the ranks would miss that rank's part): every rank drops it alike.
        """
        self.recorder.flush()
        return self.recorder.lost_steps.tolist()

    @property
    def skipped_steps(self) -> list[int]:
        """Steps taken with a learning rate of 0 under ``normalize="lr"``: no sample.

        Such a step changes no weight, so ΔW / lr carries no information; it counts
        in :attr:`step_count` but adds nothing to the window (a warm-up from lr = 0).
        """
        return self.recorder.skipped_steps.tolist()

    @property
    def events(self) -> list[Event]:
        """Regime changes (confirmed over ``confirm`` recomputations) and divergence."""
        return list(self.recorder.events)  # in the order found (a host picks up new ones)

    @property
    def snapshot_bytes(self) -> int:
        """Bytes the monitor holds for parameter snapshots (0 without a model)."""
        return self.measurer.snapshot_bytes

    @property
    def method_reason(self) -> str | None:
        """Why ``method="auto"`` chose the method in use (see ``wcdfa.measure.auto_rule``)."""
        return self.measurer.auto_choice

    @property
    def method_in_use(self) -> str | None:
        """``"optimizer-state"``, ``"snapshot"``, both joined by ``+``, or ``None``."""
        return self.measurer.method_in_use

    def get_signal(self) -> NDArray[np.float64]:
        """Return the window's ‖ΔW‖ samples as a new float64 array, oldest first."""
        self.recorder.flush()
        return self.recorder.series.signal()

    def get_signal_steps(self) -> NDArray[np.int64]:
        """Return the step of each sample of :meth:`get_signal` (gaps where left out)."""
        self.recorder.flush()
        return self.recorder.series.sample_steps()

    def get_group_signals(self) -> dict[str, NDArray[np.float64]]:
        """Return the window's ‖ΔW‖ per parameter group, oldest first."""
        self.recorder.flush()
        names = self.measurer.group_names
        if names is None:
            return {}
        rows = self.recorder.series.group_rows()
        return {name: rows[:, i].copy() for i, name in enumerate(names)}

    def get_norm_record(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Return ``(steps, values)`` of every known ‖ΔW‖, non-finite ones included.

        The window's, or the whole run's with ``keep_norms=True``.
        """
        return self.recorder.norm_record()
