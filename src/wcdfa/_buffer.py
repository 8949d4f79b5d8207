"""The monitor's window: a ring buffer of samples, the step of each, and group columns."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class SeriesBuffer:
    """The last ``window`` samples, oldest first, each with the step it was taken at.

    Samples left out of the window (non-finite, lost) leave gaps in the steps, so the
    steps are stored, not derived from a count. ``groups`` columns hold the per-group
    values of the same samples (NaN where a sample has none).
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.values = np.empty(window)
        self.steps = np.zeros(window, dtype=np.int64)
        self.groups = np.full((window, 0), np.nan)
        self.head = 0  # next write position
        self.filled = 0  # valid samples

    def clear(self) -> None:
        """Forget every sample (the group columns keep their count)."""
        self.head = self.filled = 0

    def set_group_count(self, count: int) -> None:
        """Use ``count`` group columns (cleared when the count changes)."""
        if self.groups.shape[1] != count:
            self.groups = np.full((self.window, count), np.nan)

    def push(
        self,
        values: NDArray[np.float64],
        steps: NDArray[np.int64],
        group_values: NDArray[np.float64] | None = None,
    ) -> None:
        """Append samples (with their steps), overwriting the oldest."""
        values, steps = values[-self.window :], steps[-self.window :]
        k = values.size
        first = min(k, self.window - self.head)
        self.values[self.head : self.head + first] = values[:first]
        self.values[: k - first] = values[first:]
        self.steps[self.head : self.head + first] = steps[:first]
        self.steps[: k - first] = steps[first:]
        if self.groups.shape[1]:
            if group_values is None:
                group_values = np.full((k, self.groups.shape[1]), np.nan)
            group_values = group_values[-self.window :]
            self.groups[self.head : self.head + first] = group_values[:first]
            self.groups[: k - first] = group_values[first:]
        self.head = (self.head + k) % self.window
        self.filled = min(self.window, self.filled + k)

    def push_one(self, value: float, step: int) -> None:
        """Append one sample without building arrays (the float fast path)."""
        self.values[self.head] = value
        self.steps[self.head] = step
        if self.groups.shape[1]:
            self.groups[self.head] = np.nan
        self.head = (self.head + 1) % self.window
        if self.filled < self.window:
            self.filled += 1

    def _ordered(self, array: NDArray[np.generic]) -> NDArray[np.generic]:
        if self.filled < self.window:
            return array[: self.filled].copy()
        return np.concatenate((array[self.head :], array[: self.head]))

    def signal(self) -> NDArray[np.float64]:
        """Return the samples, oldest first (a new array)."""
        out: NDArray[np.float64] = self._ordered(self.values)  # type: ignore[assignment]
        return out

    def sample_steps(self) -> NDArray[np.int64]:
        """Return the step of each sample, oldest first (a new array)."""
        out: NDArray[np.int64] = self._ordered(self.steps)  # type: ignore[assignment]
        return out

    def group_rows(self) -> NDArray[np.float64]:
        """Return the group columns, oldest first: shape (samples, groups)."""
        out: NDArray[np.float64] = self._ordered(self.groups)  # type: ignore[assignment]
        return out
