"""wcdfa: weight-change detrended fluctuation analysis for neural-network training.

Every optimizer step adds ‖ΔW‖ to a rolling window; the DFA exponent α of that window
names the regime of training: ordered (α > 1.2), critical (0.8-1.2) or disordered
(α < 0.8). ``import wcdfa`` loads numpy only.
"""

from __future__ import annotations

from wcdfa.analysis import DFAResult, dfa
from wcdfa.fluctuation import compute_dfa
from wcdfa.monitor import WeightChangeDFA
from wcdfa.rolling import RollingWeightChangeDFA
from wcdfa.training import TrainingMonitor

__version__ = "0.2.0"

__all__ = [
    "DFAResult",
    "RollingWeightChangeDFA",
    "TrainingMonitor",
    "WeightChangeDFA",
    "__version__",
    "compute_dfa",
    "dfa",
]
