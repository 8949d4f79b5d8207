"""Argument checks shared by the public entry points.

Every message names the argument, the rule it broke and the value received.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

SNAPSHOT_MODES = ("device", "cpu")
"""Where a monitor keeps its one copy of the trainable parameters."""
NORMALIZE_MODES = ("lr",)
"""What a monitor may divide each update by."""
NONFINITE_MODES = ("warn", "raise", "ignore")
"""What a monitor does on a NaN or infinite ‖ΔW‖ (it always records it)."""


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``.

    Integral floats (``4.0``) are accepted; other real numbers (``2.5``) raise
    ``ValueError``. Booleans and non-numbers raise ``TypeError``: ``True`` as a box
    size or a window is always a mistake.
    """
    if type(value) is int and value >= minimum:  # the common case, without the ABC checks
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"Argument `{name}` must be an integer >= {minimum}, but got {value!r}"
        raise TypeError(msg)
    if not isinstance(value, numbers.Integral) and not float(value).is_integer():
        msg = f"Argument `{name}` must be an integer >= {minimum}, but got {value!r}"
        raise ValueError(msg)
    if value < minimum:
        msg = f"Argument `{name}` must be an integer >= {minimum}, but got {value!r}"
        raise ValueError(msg)
    return int(float(value)) if not isinstance(value, numbers.Integral) else int(value)


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"Argument `{name}` must be a real number, but got {value!r}"
        raise TypeError(msg)
    out = float(value)
    if out != out or out in (float("inf"), float("-inf")):
        msg = f"Argument `{name}` must be finite, but got {value!r}"
        raise ValueError(msg)
    return out


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        msg = f"Argument `{name}` must be one of {choices}, but got {value!r}"
        raise ValueError(msg)
    return str(value)


def check_sample(sample: Any) -> float | int | None:
    """Validate ``sample=``: a fraction in (0, 1), a count >= 1, or None."""
    if sample is None:
        return None
    if isinstance(sample, bool) or not isinstance(sample, (int, float, np.integer, np.floating)):
        msg = f"Argument `sample` must be a fraction in (0, 1) or a count >= 1, but got {sample!r}"
        raise TypeError(msg)
    if isinstance(sample, (float, np.floating)) and 0.0 < sample < 1.0:
        return float(sample)
    if isinstance(sample, (int, np.integer)) and sample >= 1:
        return int(sample)
    msg = f"Argument `sample` must be a fraction in (0, 1) or a count >= 1, but got {sample!r}"
    raise ValueError(msg)


def to_float(value: Any) -> float:
    """``float(value)``; an integer beyond float64 overflows to ±inf, as arithmetic would."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def size_one_float(value: Any) -> float:
    """Return the number in a size-1 numeric array (``model_or_norm``)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size != 1:
        msg = (
            "Argument `model_or_norm` must be a number or a size-1 numeric array, but got "
            f"an array of dtype {arr.dtype} and shape {arr.shape}"
        )
        raise TypeError(msg)
    return float(arr.reshape(()))
