"""Heavy-tailed spectral analysis of weight matrices.

The numpy core: the power-law fit of an eigenvalue spectrum (:func:`fit_power_law`,
weightwatcher's default estimator), the detX tail size (:func:`detx_count`) and the
per-layer reading (:func:`layer_spectrum`, :class:`LayerSpectrum`). For a PyTorch model,
:func:`analyze` reads every layer (torch is imported then, not before); the live
probe is :class:`wcdfa.probes.SpectralProbe`.
"""

from __future__ import annotations

from typing import Any

from wcdfa.spectral.esd import (
    OVER_TRAINED,
    UNDER_TRAINED,
    LayerSpectrum,
    SpectralAnalysis,
    format_table,
    layer_spectrum,
)
from wcdfa.spectral.fit import PowerLawFit, detx_count, fit_power_law

__all__ = [
    "OVER_TRAINED",
    "UNDER_TRAINED",
    "LayerSpectrum",
    "PowerLawFit",
    "SpectralAnalysis",
    "analyze",
    "detx_count",
    "fit_power_law",
    "format_table",
    "layer_spectrum",
]


def analyze(model: Any, *args: Any, **kwargs: Any) -> SpectralAnalysis:
    """Read every layer's spectrum: see :func:`wcdfa.spectral.analysis.analyze`."""
    from wcdfa.spectral.analysis import analyze as _analyze  # noqa: PLC0415 - numpy-only import

    return _analyze(model, *args, **kwargs)
