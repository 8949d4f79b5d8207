"""Tagged steps (perturbations, "gaps") and the window of the clean steps (numpy).

A tag set by :meth:`StepTags.mark` belongs to the next recorded step. The clean window
holds the last ``window`` samples of untagged steps; it exists from the first tag on
(until then every sample is clean, and it is a copy of the monitor's window).
"""

from __future__ import annotations

import array
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from wcdfa._buffer import SeriesBuffer

__all__ = ["StepTags", "check_tag"]


def check_tag(tag: Any) -> str:
    """Return ``tag`` if it is a non-empty string."""
    if not isinstance(tag, str) or not tag:
        msg = f"Argument `tag` must be a non-empty str, but got {tag!r}"
        raise ValueError(msg)
    return tag


class StepTags:
    """The steps of each tag, the tags waiting for the next step, and the clean window."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget every tag and the clean window."""
        self.next: set[str] = set()
        self.steps: dict[str, array.array[int]] = {}
        self.clean: SeriesBuffer | None = None
        self.waiting: set[int] = set()  # tagged steps whose device values are not yet pushed
        self.history: array.array[float] = array.array("d")  # α of the clean window
        self.history_steps: array.array[int] = array.array("q")

    @property
    def used(self) -> bool:
        """Whether any step has been tagged."""
        return self.clean is not None

    def take(self, step: int, series: SeriesBuffer, pushed_later: bool) -> bool:
        """Give the waiting tags to ``step``; return whether it is tagged.

        ``series`` is the monitor's window before this step's sample: at the first
        tag it becomes the clean window. ``pushed_later``: the sample is a device value
        that reaches the window at the next fetch.
        """
        if not self.next:
            return False
        if self.clean is None:
            self.clean = SeriesBuffer(self.window)
            self.clean.push(series.signal(), series.sample_steps())
        for tag in sorted(self.next):
            self.steps.setdefault(tag, array.array("q")).append(step)
        self.next.clear()
        if pushed_later:
            self.waiting.add(step)
        return True

    def push(self, values: NDArray[np.float64], steps: NDArray[np.int64], last: int) -> None:
        """Add the untagged ones of fetched samples to the clean window.

        ``last`` is the newest step of the fetch: tagged steps up to it are settled
        (pushed, or left out as non-finite or lost).
        """
        if self.clean is None:
            return
        if self.waiting:
            tagged = np.isin(steps, np.fromiter(self.waiting, dtype=np.int64))
            values, steps = values[~tagged], steps[~tagged]
            self.waiting = {s for s in self.waiting if s > last}
        if values.size:
            self.clean.push(values, steps)

    def tagged_steps(self) -> dict[str, list[int]]:
        """Every tag with the steps it was given, in order."""
        return {tag: steps.tolist() for tag, steps in self.steps.items()}

    def state(self) -> dict[str, Any]:
        """Return the tags as plain Python values."""
        clean = self.clean
        return {
            "tag_next": sorted(self.next),
            "tagged_steps": self.tagged_steps(),
            "clean_signal": None if clean is None else clean.signal().tolist(),
            "clean_steps": None if clean is None else clean.sample_steps().tolist(),
            "alpha_clean_history": self.history.tolist(),
            "alpha_clean_steps": self.history_steps.tolist(),
        }

    def restore(self, parsed: dict[str, Any]) -> None:
        """Restore the fields :func:`parse` validated (missing ones mean no tags)."""
        self.reset()
        self.next = set(parsed["tag_next"])
        self.steps = {k: array.array("q", v) for k, v in parsed["tagged_steps"].items()}
        if parsed["clean_signal"] is not None:
            self.clean = SeriesBuffer(self.window)
            self.clean.push(
                np.asarray(parsed["clean_signal"], dtype=np.float64),
                np.asarray(parsed["clean_steps"], dtype=np.int64),
            )
        self.history = array.array("d", parsed["alpha_clean_history"])
        self.history_steps = array.array("q", parsed["alpha_clean_steps"])


def parse(state: dict[str, Any], step_count: int, window: int) -> dict[str, Any]:
    """Validate the tag fields of a monitor state; raise ``ValueError`` naming the field."""

    def fail(field: str, rule: str) -> NoReturn:
        shown = repr(state.get(field))[:80]
        msg = f"Argument `state` field {field!r} must be {rule}, but got {shown}"
        raise ValueError(msg)

    def steps_of(field: str, value: Any) -> list[int]:
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= step_count for v in value
        ):
            fail(field, f"a list of steps from 1 to step_count={step_count}")
        return [int(v) for v in value]

    out: dict[str, Any] = {}
    tags = state.get("tag_next", [])
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) and t for t in tags):
        fail("tag_next", "a list of tags")
    out["tag_next"] = list(tags)
    tagged = state.get("tagged_steps", {})
    if not isinstance(tagged, dict) or not all(isinstance(t, str) and t for t in tagged):
        fail("tagged_steps", "a dict tag -> steps")
    out["tagged_steps"] = {t: steps_of("tagged_steps", v) for t, v in tagged.items()}
    signal, steps = state.get("clean_signal"), state.get("clean_steps")
    if signal is None:
        out["clean_signal"] = out["clean_steps"] = None
    else:
        if not isinstance(signal, (list, tuple)) or len(signal) > window:
            fail("clean_signal", f"None or a list of at most window={window} numbers")
        values = np.asarray(signal, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            fail("clean_signal", "a list of finite numbers")
        clean_steps = steps_of("clean_steps", steps)
        if len(clean_steps) != values.size or np.any(np.diff(clean_steps) <= 0):
            fail("clean_steps", "increasing steps, one per clean sample")
        out["clean_signal"], out["clean_steps"] = values, clean_steps
    history = state.get("alpha_clean_history", [])
    if not isinstance(history, (list, tuple)) or not all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in history
    ):
        fail("alpha_clean_history", "a list of numbers")
    out["alpha_clean_history"] = [float(a) for a in history]
    out["alpha_clean_steps"] = steps_of("alpha_clean_steps", state.get("alpha_clean_steps", []))
    if len(out["alpha_clean_steps"]) != len(history):
        fail("alpha_clean_steps", "one step per clean α")
    return out
