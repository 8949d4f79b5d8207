"""``analyze(model)``: every layer's spectral reading, on the parameters' device (torch).

The route (measured in ``benchmarks/bench_spectral.py``): the eigenvalues of the
smaller Gram matrix :math:`W^T W` (``torch.linalg.eigvalsh``, batched over a
convolution's kernel positions) rather than an SVD of :math:`W`; in float64 on the CPU,
where it matches weightwatcher's SciPy SVD to about :math:`10^{-14}` of the largest
eigenvalue, and in float32 on an accelerator. All eigenvalues leave the device in one
transfer; the fits are numpy.

Distributed: sharded (FSDP2/DTensor) weights are gathered one at a time, every rank
entering the same gathers in the same order, so with sharded weights call it on every
rank. ``SpectralProbe`` also shares the work out: layer ``i`` is decomposed by rank
``i % world_size`` only, and one all-reduce gives every rank every eigenvalue, so every
rank ends with the same readings. ``analyze`` on an unsharded model (DDP) may run on
one rank alone.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from wcdfa._checks import check_choice, check_int
from wcdfa._dist import all_reduce, join, world_size
from wcdfa.spectral.esd import (
    OVER_TRAINED,
    UNDER_TRAINED,
    LayerSpectrum,
    SpectralAnalysis,
    layer_spectrum,
)

__all__ = ["METHODS", "analyze", "measure_layers"]

METHODS = ("gram", "svd")
"""How eigenvalues are computed: ``eigvalsh`` of the smaller Gram matrix, or ``svdvals``."""


def analyze(
    model: Any,
    layers: Sequence[Any] | None = None,
    *,
    min_evals: int = 8,
    max_evals: int = 15000,
    max_N: int = 50000,
    detx: bool = True,
    attention: bool = True,
    bounds: tuple[float, float] = (OVER_TRAINED, UNDER_TRAINED),
    dtype: Any = None,
    method: str = "gram",
) -> SpectralAnalysis:
    """Read the eigenvalue spectrum of every weight matrix of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The model (its layers are found as :mod:`wcdfa.spectral.layers` describes).
    layers : sequence of str or type, optional
        Only these module names or module types.
    min_evals, max_evals, max_N : int
        Skip matrices with fewer or more eigenvalues, or a larger dimension above
        ``max_N`` (weightwatcher's defaults: 8, 15000, 50000).
    detx : bool, default True
        Also the detX tail size (cheap here).
    attention : bool, default True
        Also MultiheadAttention's query, key and value projections.
    bounds : (float, float), default (2.0, 6.0)
        The over-/under-trained bounds of α for the ``warning`` field.
    dtype : torch.dtype, optional
        Precision of the decomposition: float64 on the CPU, float32 elsewhere.
    method : {"gram", "svd"}, default "gram"
        ``eigvalsh`` of the smaller Gram matrix, or ``svdvals`` squared.

    Returns
    -------
    SpectralAnalysis
        One :class:`LayerSpectrum` per layer; ``print`` it for a table.

    Examples
    --------
    >>> import torch
    >>> from wcdfa.spectral import analyze
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Linear(128, 10))
    >>> result = analyze(model)
    >>> result.names, result["0"].num_evals, result["1"].warning
    (['0', '1'], 64, 'few eigenvalues')
    """
    from wcdfa.spectral.layers import find_layers  # noqa: PLC0415 - torch only here

    check_choice("method", method, METHODS)
    found = find_layers(
        model,
        layers,
        min_evals=check_int("min_evals", min_evals, 1),
        max_evals=check_int("max_evals", max_evals, 1),
        max_N=check_int("max_N", max_N, 1),
        attention=bool(attention),
    )
    return SpectralAnalysis(
        tuple(measure_layers(found, detx=detx, bounds=bounds, dtype=dtype, method=method))
    )


def measure_layers(
    found: Sequence[Any],
    *,
    detx: bool = True,
    bounds: tuple[float, float] = (OVER_TRAINED, UNDER_TRAINED),
    dtype: Any = None,
    method: str = "gram",
    spread: bool = False,
) -> list[LayerSpectrum]:
    """Decompose the found layers and read each spectrum.

    With ``spread`` (the probe's way) and more than one rank, the layers are shared
    out over the ranks and combined with one all-reduce (see the module); without it
    each rank decomposes every layer itself (sharded weights are still gathered, by
    every rank). A layer whose decomposition fails gets NaN eigenvalues, hence a
    record whose ``warning`` says why; the others are unaffected.
    """
    from wcdfa.spectral.layers import eigenvalues, full_weight, matrices  # noqa: PLC0415

    torch = sys.modules["torch"]
    if not found:
        return []
    dist = torch.distributed
    world = world_size() if spread else 1
    me = dist.get_rank() if world > 1 else 0
    if world > 1:
        join(dist.group.WORLD, "read the layers' spectra")  # a lone rank fails clearly
    counts = [layer.num_evals for layer in found]
    device = found[0].param.device
    parts: list[Any] = []
    reasons: dict[int, str] = {}
    weight: Any = None
    source: Any = None
    for i, layer in enumerate(found):
        if layer.param is not source:  # attention blocks share one parameter: gather once
            weight, source = full_weight(layer.param), layer.param  # every rank, same order
        if i % world != me:
            parts.append(None)
            continue
        try:
            precision = dtype or (torch.float64 if weight.device.type == "cpu" else torch.float32)
            values = eigenvalues(matrices(layer, weight), dtype=precision, method=method)
            parts.append(values.to(device=device, dtype=torch.float64) * layer.scale)
        except Exception as exc:  # a layer that cannot be read is a record, not a crash
            reasons[i] = f"{type(exc).__name__}: {exc}"
            parts.append(torch.full((counts[i],), float("nan"), dtype=torch.float64, device=device))
    del weight
    if world > 1:
        flat = torch.zeros(sum(counts), dtype=torch.float64, device=device)
        for part, segment in zip(parts, flat.split(counts), strict=True):
            if part is not None:
                segment.copy_(part)
        all_reduce(flat, dist.group.WORLD)  # every rank, whatever it computed
    else:
        flat = torch.cat(parts)
    host = flat.cpu().numpy()  # the one transfer
    records = []
    for i, (layer, evals) in enumerate(
        zip(found, np.split(host, np.cumsum(counts)[:-1]), strict=True)
    ):
        record = layer_spectrum(
            evals,
            name=layer.name,
            kind=layer.kind,
            shape=layer.shape,
            N=layer.N,
            M=layer.M,
            rf=layer.rf,
            detx=detx,
            bounds=bounds,
        )
        if i in reasons:
            record = _with_warning(record, f"decomposition failed: {reasons[i]}")
        records.append(record)
    return records


def _with_warning(record: LayerSpectrum, text: str) -> LayerSpectrum:
    return dataclasses.replace(record, warning=f"{text}; {record.warning}".rstrip("; "))
