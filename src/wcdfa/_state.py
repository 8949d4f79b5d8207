"""Validation of a monitor's saved state, whole, before anything is restored."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from wcdfa.analysis import DFAResult

__all__ = ["STATE_FORMAT", "ParsedState", "parse_state"]

STATE_FORMAT = "wcdfa.monitor/2"
READABLE_FORMATS = ("wcdfa.monitor/1", STATE_FORMAT)
_OLDER_DEFAULTS = {
    "confirm": 1,
    "max_box": None,
    "num_scales": 20,
    "scales": None,
    "boxes": "both",
}
"""Settings that states saved by earlier versions lack, with the value they implied."""
_REGIMES = (None, "ordered", "critical", "disordered")
_MAX_STEP = 2**62
"""Steps are stored as int64; anything near that is not a real step count."""


@dataclasses.dataclass
class ParsedState:
    """A validated state: every field typed and consistent with the monitor."""

    signal: NDArray[np.float64]
    signal_steps: NDArray[np.int64]
    step_count: int
    alpha_history: list[float]
    alpha_steps: list[int]
    nonfinite_steps: list[int]
    nonfinite_values: list[float]
    lost_steps: list[int]
    skipped_steps: list[int]
    group_names: list[str] | None
    group_signals: NDArray[np.float64] | None
    group_alphas: dict[str, float | None]
    norms: list[float] | None
    norm_steps: list[int] | None
    result: dict[str, Any] | None
    events: list[dict[str, Any]]
    regime_run: tuple[str | None, str | None, int]


def _reject(field: str, rule: str, value: Any) -> NoReturn:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    msg = f"Argument `state` field {field!r} must be {rule}, but got {shown}"
    raise ValueError(msg)


def _floats(field: str, value: Any, *, finite: bool = False) -> list[float]:
    if not isinstance(value, (list, tuple, np.ndarray)):
        _reject(field, "a list of numbers", value)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            _reject(field, "a list of numbers", v)
        f = float(v)
        if finite and not math.isfinite(f):
            _reject(field, "a list of finite numbers", v)
        out.append(f)
    return out


def _steps(field: str, value: Any, top: int) -> list[int]:
    if not isinstance(value, (list, tuple, np.ndarray)):
        _reject(field, "a list of step numbers", value)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 < int(v) <= top:
            _reject(field, f"a list of steps from 1 to step_count={top}", v)
        out.append(int(v))
    return out


def _field(state: Mapping[str, Any], name: str, default: Any = ...) -> Any:
    if name in state:
        return state[name]
    if default is not ...:
        return default
    msg = f"Argument `state` is not a wcdfa monitor state_dict: field {name!r} is missing"
    raise ValueError(msg)


def parse_state(state: Any, settings: dict[str, Any], window: int) -> ParsedState:
    """Validate ``state`` against a monitor's ``settings``; raise ``ValueError`` naming a field.

    Nothing of the monitor is touched here, so a bad state changes nothing.
    """
    if not isinstance(state, Mapping):
        msg = f"Argument `state` must be a dict from state_dict(), but got {type(state).__name__}"
        raise ValueError(msg)
    fmt = _field(state, "format")
    if fmt not in READABLE_FORMATS:
        msg = f"Argument `state` has format {fmt!r}; this wcdfa reads {READABLE_FORMATS}"
        raise ValueError(msg)
    saved = _field(state, "settings")
    if not isinstance(saved, Mapping):
        _reject("settings", "a dict", saved)
    order = saved.get("order", 1)
    min_box = max(4, order + 2) if isinstance(order, int) else 4
    # settings added since a state was saved take the value they implied then
    saved = {**_OLDER_DEFAULTS, "min_box": min_box, **saved}
    if dict(saved) != settings:
        diff = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
        msg = f"Argument `state` was saved by a monitor with other settings (saved, here): {diff}"
        raise ValueError(msg)
    step_count = _field(state, "step_count")
    if (
        isinstance(step_count, bool)
        or not isinstance(step_count, numbers.Integral)
        or not 0 <= int(step_count) < _MAX_STEP
    ):
        _reject("step_count", f"an integer from 0 to {_MAX_STEP - 1}", step_count)
    step_count = int(step_count)
    signal = np.asarray(_floats("signal", _field(state, "signal"), finite=True))
    if signal.size > min(window, step_count):
        _reject(
            "signal",
            f"at most min(window, step_count)={min(window, step_count)} samples",
            f"{signal.size} samples",
        )
    if fmt == STATE_FORMAT:
        signal_steps = _steps("signal_steps", _field(state, "signal_steps"), step_count)
    else:  # format 1 had no gaps to record
        signal_steps = list(range(step_count - signal.size + 1, step_count + 1))
    if len(signal_steps) != signal.size or np.any(np.diff(signal_steps) <= 0):
        _reject("signal_steps", "increasing steps, one per sample", signal_steps)
    history = _floats("alpha_history", _field(state, "alpha_history"), finite=True)
    history_steps = _steps("alpha_steps", _field(state, "alpha_steps"), step_count)
    if len(history) != len(history_steps):
        _reject("alpha_steps", f"one step per α ({len(history)})", history_steps)
    nonfinite_steps = _steps("nonfinite_steps", _field(state, "nonfinite_steps"), step_count)
    nonfinite_values = _floats(
        "nonfinite_values", _field(state, "nonfinite_values", [math.nan] * len(nonfinite_steps))
    )
    if len(nonfinite_values) != len(nonfinite_steps):
        _reject("nonfinite_values", "one value per non-finite step", nonfinite_values)
    lost = _steps("lost_steps", _field(state, "lost_steps", []), step_count)
    skipped = _steps("skipped_steps", _field(state, "skipped_steps", []), step_count)
    group_names = _field(state, "group_names")
    group_signals = None
    if group_names is not None:
        if not isinstance(group_names, (list, tuple)) or not all(
            isinstance(n, str) for n in group_names
        ):
            _reject("group_names", "None or a list of names", group_names)
        signals = _field(state, "group_signals")
        if not isinstance(signals, Mapping) or set(signals) != set(group_names):
            _reject("group_signals", f"a dict with the keys {group_names}", signals)
        columns = [_floats(f"group_signals[{n!r}]", signals[n]) for n in group_names]
        if any(len(c) != signal.size for c in columns):
            _reject("group_signals", f"{signal.size} values per group", "other lengths")
        group_signals = np.array(columns, dtype=np.float64).T.reshape(signal.size, -1)
        group_names = list(group_names)
    alphas = _field(state, "group_alphas")
    if not isinstance(alphas, Mapping):
        _reject("group_alphas", "a dict name -> α or None", alphas)
    group_alphas: dict[str, float | None] = {}
    for name, a in alphas.items():
        if a is not None:
            (a,) = _floats(f"group_alphas[{name!r}]", [a], finite=True)
        group_alphas[str(name)] = a
    norms = _field(state, "norms")
    norm_steps = None
    if norms is not None:
        norms = _floats("norms", norms)
        default = list(range(step_count - len(norms) + 1, step_count + 1))
        norm_steps = _steps("norm_steps", _field(state, "norm_steps", default), step_count)
        if len(norm_steps) != len(norms):
            _reject("norm_steps", "one step per norm", norm_steps)
    result = _field(state, "result")
    if result is not None:
        result = _check_result(result, history)
    events = _field(state, "events", [])
    if not isinstance(events, list) or not all(
        isinstance(e, Mapping)
        and set(e) == {"step", "probe", "kind", "detail"}
        and isinstance(e["step"], int)
        and isinstance(e["detail"], Mapping)
        for e in events
    ):
        _reject("events", "a list of event dicts (step, probe, kind, detail)", events)
    run = _field(state, "regime_run", [None, None, 0])
    if (
        not isinstance(run, (list, tuple))
        or len(run) != 3
        or run[0] not in _REGIMES
        or run[1] not in _REGIMES
        or isinstance(run[2], bool)
        or not isinstance(run[2], int)
        or run[2] < 0
    ):
        _reject("regime_run", "[confirmed regime, latest regime, its run length]", run)
    return ParsedState(
        signal=signal,
        signal_steps=np.asarray(signal_steps, dtype=np.int64),
        step_count=step_count,
        alpha_history=history,
        alpha_steps=history_steps,
        nonfinite_steps=nonfinite_steps,
        nonfinite_values=nonfinite_values,
        lost_steps=lost,
        skipped_steps=skipped,
        group_names=group_names,
        group_signals=group_signals,
        group_alphas=group_alphas,
        norms=norms,
        norm_steps=norm_steps,
        result=result,
        events=[{**e, "detail": dict(e["detail"])} for e in events],
        regime_run=(run[0], run[1], int(run[2])),
    )


def _check_result(result: Any, history: list[float]) -> dict[str, Any]:
    """Return the fields of a saved DFAResult, typed; its α must be the last of history."""
    if not isinstance(result, Mapping):
        _reject("result", "None or a dict from DFAResult.as_dict()", result)
    names = {f.name for f in dataclasses.fields(DFAResult)}
    required = {"alpha", "intercept", "r_squared", "scales", "fluctuations", "n"}
    if not required <= set(result) or not set(result) <= names:
        _reject("result", f"a dict with the keys {sorted(required)}", sorted(result))
    fields = dict(result)
    try:
        scales = np.asarray(fields["scales"], dtype=np.int64)
        fluctuations = np.asarray(fields["fluctuations"], dtype=np.float64)
        alpha, intercept, r2 = (float(fields[k]) for k in ("alpha", "intercept", "r_squared"))
        n = int(fields["n"])
    except (TypeError, ValueError, OverflowError):
        _reject("result", "a DFAResult of numbers", result)
    if scales.ndim != 1 or scales.shape != fluctuations.shape or scales.size < 2:
        _reject("result", "scales and fluctuations of one length >= 2", result)
    if not (history and alpha == history[-1]) or not math.isfinite(intercept + r2):
        _reject("result", "the fit of the last α of alpha_history", alpha)
    fields.update(
        scales=scales,
        fluctuations=fluctuations,
        alpha=alpha,
        intercept=intercept,
        r_squared=r2,
        n=n,
        ci_low=math.nan,
        ci_high=math.nan,
        level=None,
        in_range=True,
    )
    if fields.get("box_sizes") is not None:
        fields["box_sizes"] = tuple(int(v) for v in fields["box_sizes"])
    return fields
