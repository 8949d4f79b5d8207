"""The record of one series: its window, the steps, and what was left out and why.

Host values are recorded at once; device values wait, without a host
synchronisation, until the next fetch (one transfer per ``stride`` steps). Nothing
measured is dropped silently: non-finite values, values whose fetch failed and steps
skipped at lr = 0 are each listed with their steps.
"""

from __future__ import annotations

import array
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._buffer import SeriesBuffer
from wcdfa._warn import warn
from wcdfa.errors import (
    DivergenceError,
    DivergenceWarning,
    LostSamplesWarning,
    MisuseWarning,
    NotANormWarning,
)
from wcdfa.probes.base import Event
from wcdfa.tags import StepTags

if TYPE_CHECKING:
    from torch import Tensor

    from wcdfa._state import ParsedState

__all__ = ["SeriesRecorder"]

OUT_OF_STEP = (
    "a rank took a new baseline of sharded parameters while others did not (reset or "
    "load_state_dict on one rank): the sum over the ranks misses its part"
)


class SeriesRecorder:
    """Samples of one monitor, each with its step; device values fetched per stride.

    ``record``, ``record_tensor`` and ``skip`` return whether the step closed a
    stride (the monitor then flushes, recomputes and calls :meth:`raise_if_due`).
    """

    def __init__(
        self, window: int, stride: int, on_nonfinite: str, keep_norms: bool, name: str
    ) -> None:
        self.window, self.stride, self.name = window, stride, name
        self.on_nonfinite, self.keep_norms = on_nonfinite, keep_norms
        self.series = SeriesBuffer(window)
        self.tags = StepTags(window)
        self.warned: set[str] = set()  # one warning of each kind per monitor
        self.reset()

    def reset(self) -> None:
        """Forget every sample and every record of left-out steps."""
        self.series.clear()
        self.tags.reset()
        # Device values not yet fetched: (value, weights, step) each. A value holds
        # squared norms per group and a validity count (kind "squares") or a plain
        # number (kind "norm"); the weights (1 / lr**2 per group, or 1 / lr) scale it.
        self.pending: list[tuple[Tensor, NDArray[np.float64] | None, int]] = []
        self.pending_kind: tuple[Any, ...] | None = None
        self.step_count = 0
        self.last_value = math.nan  # the newest finite sample: runs of zeros
        self.divergence_due: str | None = None  # raised at the next stride boundary
        # compact: 8 bytes per entry, whatever the length of the run
        self.nonfinite_steps: array.array[int] = array.array("q")
        self.nonfinite_values: array.array[float] = array.array("d")
        self.lost_steps: array.array[int] = array.array("q")
        self.skipped_steps: array.array[int] = array.array("q")
        self.norm_log: array.array[float] | None = array.array("d") if self.keep_norms else None
        self.norm_log_steps: array.array[int] = array.array("q")
        self.events: list[Event] = []

    def warn_once(self, key: str, message: str, category: type[Warning]) -> None:
        """Warn with ``message`` the first time ``key`` comes up, and never again."""
        if key not in self.warned:
            self.warned.add(key)
            warn(message, category)

    # ------------------------------------------------------------- recording
    def record(self, value: float) -> bool:
        """Record one host value as the next step (the float fast path)."""
        if self.pending:
            self.flush()
        step = self.step_count = self.step_count + 1
        tagged = bool(self.tags.next) and self.tags.take(step, self.series, pushed_later=False)
        if self.norm_log is not None:
            self.norm_log.append(value)
            self.norm_log_steps.append(step)
        if math.isfinite(value):
            if value <= 0.0:
                self._check_sign_and_zeros(value)
            self.series.push_one(value, step)
            if self.tags.clean is not None and not tagged:
                self.tags.clean.push_one(value, step)
            self.last_value = value
        else:
            self._nonfinite(step, value)
        return step % self.stride == 0

    def record_tensor(
        self, value: Tensor, kind: tuple[Any, ...], weights: NDArray[np.float64] | None
    ) -> bool:
        """Keep a device value for the next fetch (no host synchronisation)."""
        if self.pending_kind != kind:
            self.flush()
            self.pending_kind = kind
        self.step_count += 1
        if self.tags.next:
            self.tags.take(self.step_count, self.series, pushed_later=True)
        self.pending.append((value, weights, self.step_count))
        return self.step_count % self.stride == 0

    def skip(self) -> bool:
        """Count a step that carries no sample (lr = 0 under normalize="lr")."""
        self.step_count += 1
        if self.tags.next:
            self.tags.take(self.step_count, self.series, pushed_later=False)
        self.skipped_steps.append(self.step_count)
        return self.step_count % self.stride == 0

    def raise_if_due(self) -> None:
        """Raise the DivergenceError that ``on_nonfinite="raise"`` asked for, once."""
        if self.divergence_due is not None:
            msg, self.divergence_due = self.divergence_due, None
            raise DivergenceError(msg)

    @property
    def n_samples(self) -> int:
        """Samples in the window, pending ones included (at most ``window``)."""
        return min(self.window, self.series.filled + len(self.pending))

    # --------------------------------------------------------------- fetching
    def flush(self) -> None:
        """Fetch pending device values to the host: one transfer for the batch.

        Never raises: a value that cannot be fetched is recorded in ``lost_steps``
        with a warning that names the steps and the reason.
        """
        if not self.pending:
            return
        pending, kind = self.pending, self.pending_kind
        self.pending, self.pending_kind = [], None
        rows, lost, reason = _fetch([t for t, _, _ in pending])
        weights = [w for (_, w, _), bad in zip(pending, lost, strict=True) if not bad]
        all_steps = np.array([k for _, _, k in pending], dtype=np.int64)
        good = all_steps[~np.asarray(lost, dtype=bool)]
        if any(lost):
            self._lose(all_steps[np.asarray(lost, dtype=bool)], reason)
        per_group = None
        if kind is not None and kind[0] == "squares" and rows.size:
            out_of_step = rows[:, -1] > 0  # tensors some rank had no baseline for
            if out_of_step.any():
                self._lose(good[out_of_step], OUT_OF_STEP)
                rows, good = rows[~out_of_step], good[~out_of_step]
                weights = [w for w, bad in zip(weights, out_of_step, strict=True) if not bad]
            rows = rows[:, :-1]
            if weights and weights[0] is not None:
                rows = rows * np.stack(weights)  # type: ignore[arg-type]
            norms = np.sqrt(rows.sum(axis=1))
            if kind[3]:  # per layer group: (steps, layers), summed over lr groups
                per_group = np.sqrt(rows.reshape(rows.shape[0], -1, kind[2]).sum(axis=2))
        else:
            norms = rows[:, 0] if rows.size else np.empty(0)
            if weights and weights[0] is not None:
                norms = norms * np.concatenate(weights)  # type: ignore[arg-type]
        self._push(norms, good, per_group)

    def _lose(self, steps: NDArray[np.int64], reason: str) -> None:
        self.lost_steps.extend(steps.tolist())
        shown = ", ".join(map(str, steps[:5].tolist())) + (", ..." if steps.size > 5 else "")
        warn(
            f"{steps.size} measured value(s) could not be recorded (steps {shown}): "
            f"{reason}. They are listed in `lost_steps` and left out of α.",
            LostSamplesWarning,
        )

    def _push(
        self,
        values: NDArray[np.float64],
        steps: NDArray[np.int64],
        group_values: NDArray[np.float64] | None = None,
    ) -> None:
        """Record fetched samples: non-finite ones are logged and left out of the window."""
        if not values.size:
            return
        last = int(steps[-1])
        if self.norm_log is not None:
            self.norm_log.extend(values.tolist())
            self.norm_log_steps.extend(steps.tolist())
        finite = np.isfinite(values)
        if not finite.all():
            for step, value in zip(steps[~finite].tolist(), values[~finite].tolist(), strict=True):
                self._nonfinite(step, value)
            values, steps = values[finite], steps[finite]
            group_values = None if group_values is None else group_values[finite]
        self.tags.push(values, steps, last)
        if not values.size:
            return
        if values.min() <= 0.0:
            self._check_sign_and_zeros(values)
        self.series.push(values, steps, group_values)
        self.last_value = float(values[-1])

    def _check_sign_and_zeros(self, values: float | NDArray[np.float64]) -> None:
        """Warn once for negative values and once for runs of exact zeros."""
        arr = np.atleast_1d(values)
        if (arr < 0).any():
            self.warn_once(
                "negative",
                f"A negative value ({float(arr[arr < 0][0])!r}) was recorded: it is not a "
                "weight-update norm. It is kept as given (DFA is defined on any real "
                "series); warned once.",
                NotANormWarning,
            )
        zero = np.concatenate(([self.last_value == 0.0], arr == 0.0))
        if (zero[1:] & zero[:-1]).any():
            self.warn_once(
                "zeros",
                "Runs of exact zeros in ‖ΔW‖: the weights did not change between "
                "updates. Is update() called between the micro-batches of gradient "
                "accumulation? Call it after optimizer.step() only (or use attach()).",
                MisuseWarning,
            )

    def _nonfinite(self, step: int, value: float) -> None:
        """Record (and report) a non-finite sample; a DivergenceError becomes due."""
        if not self.nonfinite_steps:
            self.events.append(Event(step, self.name, "diverged", {"value": str(value)}))
        self.nonfinite_steps.append(step)
        self.nonfinite_values.append(value)
        if self.on_nonfinite == "warn":
            self.warn_once(
                "nonfinite",
                f"Non-finite weight-update norm at step {step}: training has "
                "diverged. The sample is recorded in `nonfinite_steps` and left out of α; "
                "`diverged` is now True (warned once).",
                DivergenceWarning,
            )
        elif self.on_nonfinite == "raise" and self.divergence_due is None:
            self.divergence_due = (
                f"Non-finite weight-update norm at step {step}: training diverged "
                "(on_nonfinite='raise'); every sample is recorded"
            )

    def state(self) -> dict[str, Any]:
        """Return the record's fields of a monitor state (after a :meth:`flush`)."""
        return {
            "signal": self.series.signal().tolist(),
            "signal_steps": self.series.sample_steps().tolist(),
            "step_count": self.step_count,
            "nonfinite_steps": self.nonfinite_steps.tolist(),
            "nonfinite_values": self.nonfinite_values.tolist(),
            "lost_steps": self.lost_steps.tolist(),
            "skipped_steps": self.skipped_steps.tolist(),
            "norms": None if self.norm_log is None else self.norm_log.tolist(),
            "norm_steps": None if self.norm_log is None else self.norm_log_steps.tolist(),
            "events": [e.as_dict() for e in self.events],
            **self.tags.state(),
        }

    def restore(self, parsed: ParsedState) -> None:
        """Restore a validated state into this (reset) record."""
        self.series.push(parsed.signal, parsed.signal_steps, parsed.group_signals)
        if self.norm_log is not None and parsed.norms is not None:
            self.norm_log = array.array("d", parsed.norms)
            self.norm_log_steps = array.array("q", parsed.norm_steps or [])
        self.step_count = parsed.step_count
        if parsed.signal.size:
            self.last_value = float(parsed.signal[-1])
        self.nonfinite_steps = array.array("q", parsed.nonfinite_steps)
        self.nonfinite_values = array.array("d", parsed.nonfinite_values)
        self.lost_steps = array.array("q", parsed.lost_steps)
        self.skipped_steps = array.array("q", parsed.skipped_steps)
        self.events = [Event(**e) for e in parsed.events]

    def norm_record(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Return the steps and values of every known norm, non-finite ones included."""
        self.flush()
        if self.norm_log is not None:
            return (
                np.frombuffer(self.norm_log_steps, dtype=np.int64).copy(),
                np.frombuffer(self.norm_log, dtype=np.float64).copy(),
            )
        steps, values = self.series.sample_steps(), self.series.signal()
        if steps.size and self.nonfinite_steps:
            bad = np.frombuffer(self.nonfinite_steps, dtype=np.int64)
            inside = bad >= steps[0]
            steps = np.concatenate((steps, bad[inside]))
            values = np.concatenate((values, np.frombuffer(self.nonfinite_values)[inside]))
            order = np.argsort(steps, kind="stable")
            steps, values = steps[order], values[order]
        return steps, values


def _fetch(tensors: list[Tensor]) -> tuple[NDArray[np.float64], list[bool], str]:
    """Rows of the fetched values, which tensors were lost, and why (one transfer).

    If the batch cannot be fetched (a device error), each tensor is tried alone and
    whatever can be read is kept.
    """
    import torch  # noqa: PLC0415 - pending tensors mean torch is loaded

    try:
        if len({t.device for t in tensors}) > 1:
            tensors = [t.cpu() for t in tensors]
        rows = torch.stack(tensors).to("cpu", torch.float64).numpy()
        return rows.reshape(len(tensors), -1), [False] * len(tensors), ""
    except Exception as exc:  # a fetch failure must not end training
        reason = f"fetching them failed ({type(exc).__name__}: {exc})"
    good: list[NDArray[np.float64]] = []
    lost: list[bool] = []
    for t in tensors:
        try:
            good.append(t.to("cpu", torch.float64).numpy().reshape(-1))
            lost.append(False)
        except Exception:
            lost.append(True)
    rows = np.stack(good) if good else np.empty((0, tensors[0].numel()))
    return rows, lost, reason
