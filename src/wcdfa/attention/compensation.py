r"""The compensation test: scale one head's output, watch the other heads' entropies (torch).

For a perturbed head :math:`h` and each :math:`\omega` of a grid (default 0.5 to 1.5),
head :math:`h`'s output is multiplied by :math:`\omega` (for ``nn.MultiheadAttention``
its slice of the input to ``out_proj``; for Hugging Face attention its slice of the
attention output, before the output projection) and every head's normalised entropy
:math:`H_j(\omega)` is read on the probe batch, in eval mode under no_grad. Per pair the
*slope* :math:`s_{hj}` is the least-squares slope of :math:`H_j` against
:math:`\omega`.

Only heads of later layers can respond (a head's own layer computes its attention
before the scaling): those are head :math:`h`'s *responders*. Our compensation score
(the published account gives no formula) is

.. math:: \kappa_h = \frac{1}{|R_h|} \sum_{j \in R_h} |s_{hj}| ,

the mean entropy change of the responders per unit of perturbation: 0 when no later
head reacts, larger the more they do; ``net`` is the signed mean of the same slopes
(negative: the responders sharpen when head :math:`h` is amplified). A head of the
last layer has no responders: its score is NaN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wcdfa.attention.capture import EntropySink, attention_modules, capturing
from wcdfa.probes.attention import run_batch
from wcdfa.probes.base import probe_forward

__all__ = ["CompensationResult", "compensation_test"]


@dataclasses.dataclass(frozen=True)
class CompensationResult:
    """What :func:`compensation_test` measured.

    Attributes
    ----------
    omegas : numpy.ndarray
        The scale grid.
    heads : list of str
        Every head, ``"<layer>/h<i>"``, in forward order.
    perturbed : list of str
        The heads that were scaled.
    entropies : numpy.ndarray
        ``(perturbed, omegas, heads)``: every head's entropy under each perturbation.
    slopes : numpy.ndarray
        ``(perturbed, heads)``: dH_j/dω (NaN where j is not a responder).
    score, net : dict of str to float
        κ_h and the signed mean slope, per perturbed head (see the module).
    """

    omegas: np.ndarray
    heads: list[str]
    perturbed: list[str]
    entropies: np.ndarray
    slopes: np.ndarray
    score: dict[str, float]
    net: dict[str, float]


def _read(model: Any, batch: Any, forward: Any, scale: dict[str, tuple[int, float]]) -> Any:
    sink = EntropySink(attention_modules(model))
    sink.scale = scale
    with probe_forward(model), capturing(model, sink):
        run_batch(model, batch, forward)
    return sink.entropies()


def compensation_test(
    model: Any,
    batch: Any,
    *,
    heads: Sequence[str] | None = None,
    omegas: Sequence[float] = tuple(np.linspace(0.5, 1.5, 11)),
    forward: Callable[[Any, Any], Any] | None = None,
) -> CompensationResult:
    """Scale each head's output over ``omegas`` and fit every later head's entropy response.

    Parameters
    ----------
    model : torch.nn.Module
        With ``nn.MultiheadAttention`` or Hugging Face attention.
    batch : tensor, dict or tuple
        The probe batch (called as by :class:`wcdfa.probes.AttentionProbe`).
    heads : sequence of str, optional
        The heads to perturb, ``"<layer>/h<i>"`` (default: every head).
    omegas : sequence of float
        The scales (at least 2 distinct values).
    forward : callable, optional
        ``forward(model, batch)`` when the model is called otherwise.

    Returns
    -------
    CompensationResult
    """
    grid = np.asarray(omegas, dtype=np.float64)
    if grid.ndim != 1 or np.unique(grid).size < 2:
        msg = f"Argument `omegas` must hold at least 2 distinct scales, but got {list(omegas)!r}"
        raise ValueError(msg)
    base = _read(model, batch, forward, {})
    layers = list(base)
    names = [f"{layer}/h{i}" for layer in layers for i in range(len(base[layer]))]
    chosen = names if heads is None else list(heads)
    unknown = [h for h in chosen if h not in names]
    if unknown:
        msg = f"Argument `heads` names {unknown}, which are not heads of the model: {names}"
        raise ValueError(msg)
    table = np.full((len(chosen), grid.size, len(names)), np.nan)
    slopes = np.full((len(chosen), len(names)), np.nan)
    score, net = {}, {}
    for p, head in enumerate(chosen):
        layer, index = head.rsplit("/h", 1)
        for k, omega in enumerate(grid):
            reading = _read(model, batch, forward, {layer: (int(index), float(omega))})
            table[p, k] = [v for name in layers for v in reading[name]]
        later = [
            j
            for j, n in enumerate(names)
            if layers.index(n.rsplit("/h", 1)[0]) > layers.index(layer)
        ]
        for j in later:
            slopes[p, j] = np.polyfit(grid, table[p, :, j], 1)[0]
        picked = slopes[p, later] if later else np.array([])
        score[head] = float(np.mean(np.abs(picked))) if picked.size else float("nan")
        net[head] = float(np.mean(picked)) if picked.size else float("nan")
    return CompensationResult(grid, names, chosen, table, slopes, score, net)
