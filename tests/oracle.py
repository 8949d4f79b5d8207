"""Slow, direct DFA implementations used as test oracles and benchmark baselines.

``dfa_loop`` is the wcdfa 0.1.0 algorithm as published: a Python loop over boxes
with one ``np.polyfit`` per box. ``dfa_lstsq`` is the same definition solved by
LAPACK least squares, all boxes of one scale as right-hand sides of one call (each
column is an independent per-box fit): fast enough to check n = 10^6.
"""

from __future__ import annotations

import numpy as np


def box_scales(n, min_box=4, max_box=None, num_scales=20):
    if max_box is None:
        max_box = n // 4
    max_box = min(max_box, n // 4)
    if max_box < min_box:
        max_box = min_box + 1
    scales = np.unique(
        np.logspace(np.log10(min_box), np.log10(max_box), num=num_scales).astype(int)
    )
    return scales[scales >= min_box]


def _fit(scales, fluctuations):
    valid = np.isfinite(fluctuations) & (fluctuations > 0)
    scales, fluctuations = scales[valid], fluctuations[valid]
    log_s, log_f = np.log10(scales), np.log10(fluctuations)
    alpha, intercept = np.polyfit(log_s, log_f, 1)
    predicted = alpha * log_s + intercept
    ss_res = np.sum((log_f - predicted) ** 2)
    ss_tot = np.sum((log_f - np.mean(log_f)) ** 2)
    r_squared = 1 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return float(alpha), scales, fluctuations, float(r_squared)


def dfa_loop(signal, min_box=4, max_box=None, num_scales=20, order=1, aggregate="mean"):
    """The 0.1.0 estimator, box by box: (alpha, scales, fluctuations, r_squared).

    ``order`` is the degree of the polynomial fitted per box (1 in 0.1.0);
    ``aggregate="rms"`` takes sqrt(mean of per-box variances) instead of the mean of
    per-box RMS values.
    """
    x = np.asarray(signal, dtype=np.float64)
    n = len(x)
    y = np.cumsum(x - np.mean(x))
    scales = box_scales(n, min_box, max_box, num_scales)
    fluctuations = np.zeros(len(scales))
    for i, s in enumerate(scales):
        rms = []
        t = np.arange(s)
        for start in [j * s for j in range(n // s)] + [n - (j + 1) * s for j in range(n // s)]:
            segment = y[start : start + s]
            trend = np.polyval(np.polyfit(t, segment, order), t)
            rms.append(np.sqrt(np.mean((segment - trend) ** 2)))
        if aggregate == "mean":
            fluctuations[i] = np.mean(rms)
        else:
            fluctuations[i] = np.sqrt(np.mean(np.square(rms)))
    return _fit(scales, fluctuations)


def dfa_lstsq(signal, min_box=4, max_box=None, num_scales=20):
    """Same definition, per-box least squares batched per scale through LAPACK."""
    x = np.asarray(signal, dtype=np.float64)
    n = len(x)
    y = np.cumsum(x - np.mean(x))
    scales = box_scales(n, min_box, max_box, num_scales)
    fluctuations = np.zeros(len(scales))
    for i, s in enumerate(scales):
        m = n // s
        design = np.column_stack([np.arange(s, dtype=float), np.ones(s)])
        boxes = np.concatenate([y[: m * s].reshape(m, s), y[n - m * s :].reshape(m, s)]).T
        coef = np.linalg.lstsq(design, boxes, rcond=None)[0]
        resid = boxes - design @ coef
        fluctuations[i] = np.mean(np.sqrt(np.mean(resid**2, axis=0)))
    return _fit(scales, fluctuations)
