"""The DFA peers compared in the benchmarks and the validation report.

Each is ``fn(x, scales) -> alpha`` on wcdfa's box sizes (antropy: its own), present
only if its package imports: nolds (``overlap=False, order=1, fit_exp="poly"``),
fathon (``revSeg=True, polOrd=1``), MFDFA (``q=2, order=1``), antropy.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np


def _slope(scales, fluct):
    return float(np.polyfit(np.log10(scales), np.log10(fluct), 1)[0])


def peer_estimators(include_antropy=True):
    """name -> fn(x, scales) -> alpha, for the peers importable here."""
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            nolds = importlib.import_module("nolds")
            found["nolds"] = lambda x, s: nolds.dfa(
                x, nvals=s, overlap=False, order=1, fit_exp="poly"
            )
        except ImportError:
            pass
    try:
        fathon = importlib.import_module("fathon")
        to_aggregated = importlib.import_module("fathon.fathonUtils").toAggregated

        def run_fathon(x, s):
            f = fathon.DFA(to_aggregated(x))
            n, fl = f.computeFlucVec(s.astype(np.int64), revSeg=True, polOrd=1)
            return _slope(n, fl)

        found["fathon"] = run_fathon
    except ImportError:
        pass
    try:
        mfdfa = importlib.import_module("MFDFA")

        def run_mfdfa(x, s):
            lag, fl = mfdfa.MFDFA(x, lag=s, q=2, order=1)
            return _slope(lag, fl[:, 0])

        found["MFDFA"] = run_mfdfa
    except ImportError:
        pass
    if include_antropy:
        try:
            antropy = importlib.import_module("antropy")
            found["antropy"] = lambda x, s: antropy.detrended_fluctuation(x)
        except ImportError:
            pass
    return found
