"""Warning categories of wcdfa, so that users can filter them precisely."""

from __future__ import annotations

__all__ = ["DFAFailedWarning", "NearConstantWarning", "WCDFAWarning"]


class WCDFAWarning(UserWarning):
    """Base class of every warning wcdfa emits."""


class NearConstantWarning(WCDFAWarning):
    """The window of ‖ΔW‖ is (near) constant: training converged or stopped learning."""


class DFAFailedWarning(WCDFAWarning):
    """DFA could not be computed on the current window; the last α is kept."""
