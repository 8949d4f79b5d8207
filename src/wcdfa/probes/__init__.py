"""Training-dynamics probes and their protocol (hosted by :class:`wcdfa.TrainingMonitor`)."""

from __future__ import annotations

from wcdfa.probes.attention import AttentionProbe
from wcdfa.probes.base import Event, Probe, ProbeContext, event_counts, probe_forward
from wcdfa.probes.flow import FlowProbe
from wcdfa.probes.spectral import SpectralProbe

__all__ = [
    "AttentionProbe",
    "Event",
    "FlowProbe",
    "Probe",
    "ProbeContext",
    "SpectralProbe",
    "event_counts",
    "probe_forward",
]
