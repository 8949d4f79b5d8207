"""Warning categories of wcdfa, so that users can filter them precisely."""

from __future__ import annotations

__all__ = [
    "DFAFailedWarning",
    "DivergenceError",
    "DivergenceWarning",
    "NearConstantWarning",
    "WCDFAWarning",
]


class WCDFAWarning(UserWarning):
    """Base class of every warning wcdfa emits."""


class NearConstantWarning(WCDFAWarning):
    """The window of ‖ΔW‖ is (near) constant: training converged or stopped learning."""


class DFAFailedWarning(WCDFAWarning):
    """DFA could not be computed on the current window; the last α is kept."""


class DivergenceWarning(WCDFAWarning):
    """A non-finite ‖ΔW‖ was recorded: training diverged (warned once per monitor)."""


class DivergenceError(FloatingPointError):
    """A non-finite ‖ΔW‖ was recorded with ``on_nonfinite="raise"``."""
