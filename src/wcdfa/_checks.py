"""Argument checks shared by the public entry points.

Every message names the argument, the rule it broke and the value received.
"""

from __future__ import annotations

import numbers
from typing import Any

SNAPSHOT_MODES = ("device", "cpu")
"""Where a monitor keeps its one copy of the trainable parameters."""


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``.

    Integral floats (``4.0``) are accepted; other real numbers (``2.5``) raise
    ``ValueError``. Booleans and non-numbers raise ``TypeError``: ``True`` as a box
    size or a window is always a mistake.
    """
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
