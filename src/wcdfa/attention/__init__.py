"""Attention-head entropy: the numpy core (entropies from arrays, crystallisation).

:func:`head_entropies` is the direct definition (and the tests' oracle);
:class:`Crystallisation` and :func:`convergence_steps` read a series of readings. The
live probe is :class:`wcdfa.probes.AttentionProbe`; the offline compensation test is
:func:`wcdfa.attention.compensation.compensation_test` (torch).
"""

from __future__ import annotations

from wcdfa.attention.crystal import Crystallisation, convergence_steps, spread
from wcdfa.attention.entropy import head_entropies

__all__ = ["Crystallisation", "convergence_steps", "head_entropies", "spread"]
