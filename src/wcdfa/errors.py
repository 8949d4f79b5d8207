"""Warning and error categories of wcdfa, so that users can filter them precisely."""

from __future__ import annotations

__all__ = [
    "DFAFailedWarning",
    "DivergenceError",
    "DivergenceWarning",
    "LostSamplesWarning",
    "MisuseWarning",
    "NearConstantWarning",
    "NotANormWarning",
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


class NotANormWarning(WCDFAWarning):
    """A negative value was recorded: it is not a norm (warned once per monitor).

    DFA is defined on any real series, so the value is kept as given.
    """


class LostSamplesWarning(WCDFAWarning):
    """Measured values could not be recorded (a failed device fetch, ranks out of step).

    The steps concerned are listed in ``monitor.lost_steps``.
    """


class MisuseWarning(WCDFAWarning):
    """The monitor is used in a way that silently distorts the series (warned once)."""


class DivergenceError(FloatingPointError):
    """A non-finite ‖ΔW‖ was recorded with ``on_nonfinite="raise"``."""
