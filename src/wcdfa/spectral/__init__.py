"""Heavy-tailed spectral analysis of weight matrices (numpy core).

So far: the power-law fit of an empirical spectral density (:func:`fit_power_law`),
the estimator of weightwatcher's default, and the detX tail size (:func:`detx_count`).
The per-layer analysis and the live ``SpectralProbe`` will build on them.
"""

from wcdfa.spectral.fit import PowerLawFit, detx_count, fit_power_law

__all__ = ["PowerLawFit", "detx_count", "fit_power_law"]
