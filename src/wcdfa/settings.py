"""The settings of a monitor: validated once, frozen, and the one source of its state's settings."""

from __future__ import annotations

import dataclasses
from typing import Any

from wcdfa import regime as _regime
from wcdfa._checks import (
    NONFINITE_MODES,
    NORMALIZE_MODES,
    SNAPSHOT_MODES,
    check_choice,
    check_int,
    check_sample,
)
from wcdfa.analysis import box_options, check_options
from wcdfa.layouts import LAYOUTS
from wcdfa.measure import METHODS

__all__ = ["MonitorSettings"]

_NOT_SAVED = ("snapshot",)
"""Settings that change where memory lives, not what is computed: not in a state."""


@dataclasses.dataclass(frozen=True)
class MonitorSettings:
    """Everything that fixes what a :class:`~wcdfa.WeightChangeDFA` computes.

    Built from the monitor's arguments, each validated here (a bad one raises with
    its name, the rule and the value); the box settings are those of
    :func:`wcdfa.dfa`. :meth:`as_state` is what a state_dict saves and compares.
    """

    window: int = 500
    stride: int | None = None
    thresholds: tuple[float, float] = _regime.DEFAULT_THRESHOLDS
    order: int = 1
    aggregate: str = "mean"
    ci: float | None = 0.95
    normalize: str | None = None
    keep_norms: bool = False
    on_nonfinite: str = "warn"
    sample: float | int | None = None
    method: str = "auto"
    confirm: int = 1
    min_box: int | None = None
    max_box: int | None = None
    num_scales: int | None = None
    scales: tuple[int, ...] | None = None
    boxes: str = "both"
    snapshot: str = "device"

    def __post_init__(self) -> None:
        window = check_int("window", self.window, 50)
        stride = max(1, window // 5) if self.stride is None else check_int("stride", self.stride, 1)
        order, aggregate, ci = check_options(self.order, self.aggregate, self.ci)
        min_box, max_box, num_scales, scales = box_options(
            self.min_box, self.max_box, self.num_scales, self.scales, order
        )
        if scales is not None and scales[-1] >= window:
            msg = (
                f"Argument `scales` must hold box sizes smaller than `window` ({window}), "
                f"but got {scales[-1]}"
            )
            raise ValueError(msg)
        values = {
            "window": window,
            "stride": stride,
            "thresholds": _regime.check_thresholds(self.thresholds),
            "order": order,
            "aggregate": aggregate,
            "ci": ci,
            "normalize": None
            if self.normalize is None
            else check_choice("normalize", self.normalize, NORMALIZE_MODES),
            "keep_norms": bool(self.keep_norms),
            "on_nonfinite": check_choice("on_nonfinite", self.on_nonfinite, NONFINITE_MODES),
            "sample": check_sample(self.sample),
            "method": check_choice("method", self.method, METHODS),
            "confirm": check_int("confirm", self.confirm, 1),
            "min_box": check_int("min_box", min_box, order + 2),
            "max_box": None if max_box is None else check_int("max_box", max_box, 1),
            "num_scales": check_int("num_scales", num_scales, 2),
            "scales": scales,
            "boxes": check_choice("boxes", self.boxes, LAYOUTS),
            "snapshot": check_choice("snapshot", self.snapshot, SNAPSHOT_MODES),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def box_options(self) -> dict[str, Any]:
        """The box settings, as :func:`wcdfa.dfa` takes them."""
        if self.scales is not None:
            return {"scales": self.scales, "boxes": self.boxes}
        return {
            "min_box": self.min_box,
            "max_box": self.max_box,
            "num_scales": self.num_scales,
            "boxes": self.boxes,
        }

    def as_state(self) -> dict[str, Any]:
        """Return the settings a state_dict saves (plain values; not where memory lives)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["thresholds"] = list(self.thresholds)
        out["scales"] = None if self.scales is None else list(self.scales)
        for name in _NOT_SAVED:
            del out[name]
        return out
