r"""Which weight matrices of a PyTorch model are analysed, and how (torch; weightwatcher's rules).

A module is read by the type weightwatcher 0.7.7 gives it: by class or by its lower-case
type name (module path included) containing ``linear``, ``conv1d``, ``conv2d`` or
``embedding``, in that order of precedence; a ``norm`` type is never read. So
``nn.Linear`` (also MultiheadAttention's ``out_proj``), Hugging Face's ``Conv1D``,
``nn.Conv2d`` and ``nn.Embedding`` are read; anything else is not.

- Linear, 2-D Conv1D, Embedding: the weight itself, :math:`N \times M` with
  :math:`N \ge M` its larger and smaller dimension; :math:`M` eigenvalues.
- Conv2d ``(out, in, kh, kw)``: one ``out x in`` matrix per kernel position (``rf = kh*kw``
  of them), each scaled by :math:`\sqrt{1/2}` (weightwatcher's ``conv2d_norm``), their
  eigenvalues pooled: :math:`rf \cdot M`. (If ``out + in < kh + kw``, weightwatcher
  takes the ``kh x kw`` matrices of each channel pair instead; so do we.)
- ``nn.Conv1d`` ``(out, in, k)`` (weightwatcher cannot read its 3-D weight): one
  ``out x in`` matrix per kernel position, pooled, not scaled.
- Beyond weightwatcher: ``nn.MultiheadAttention``'s packed ``in_proj_weight`` as its
  query, key and value blocks (``<name>.in_proj_q``, ``_k``, ``_v``), or its separate
  ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` (``<name>.q_proj``, ...).

A matrix is skipped, as by weightwatcher's defaults, when it would give fewer than
``min_evals`` or more than ``max_evals`` eigenvalues, or when :math:`N` exceeds
``max_N`` (a 50,257-token embedding, say).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from wcdfa.tracking import dtensor_type

__all__ = ["LayerMatrix", "eigenvalues", "find_layers", "full_weight", "matrices"]

CONV2D_SCALE = 0.5
"""Eigenvalues of a Conv2d are those of sqrt(1/2)·W (weightwatcher's conv2d_norm)."""

_KINDS = ("linear", "conv1d", "conv2d", "embedding")
_NDIMS = {"linear": (2,), "conv1d": (2, 3), "conv2d": (2, 4), "embedding": (2,)}


@dataclasses.dataclass(frozen=True)
class LayerMatrix:
    """One analysed weight: where it lives and how its matrices are laid out.

    Attributes
    ----------
    name : str
        The module's qualified name (``.in_proj_q`` etc. for attention blocks).
    kind : str
        ``"linear"``, ``"conv1d"``, ``"conv2d"``, ``"embedding"`` or ``"attention"``.
    shape : tuple of int
        The shape of what is analysed (the block, for attention).
    N, M, rf : int
        Larger and smaller matrix dimension, and the number of matrices pooled.
    scale : float
        Factor applied to the eigenvalues.
    param : torch.Tensor
        The parameter (a DTensor when sharded).
    rows : tuple of int or None
        ``(start, stop)`` rows of ``param`` for an attention block.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    N: int
    M: int
    rf: int
    scale: float
    param: Tensor = dataclasses.field(repr=False, compare=False)
    rows: tuple[int, int] | None = None

    @property
    def num_evals(self) -> int:
        """Eigenvalues this layer yields."""
        return self.M * self.rf


def _kind(module: nn.Module) -> str | None:
    typename = str(type(module)).lower()
    for kind, cls in zip(_KINDS, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding), strict=True):
        if isinstance(module, cls) or kind in typename:
            return kind
    return None


def _entry(name: str, kind: str, param: Tensor, rows: tuple[int, int] | None = None) -> LayerMatrix:
    shape = tuple(param.shape)
    if rows is not None:
        shape = (rows[1] - rows[0], *shape[1:])
    if len(shape) == 4:  # conv2d
        out, inp, kh, kw = shape
        if out + inp >= kh + kw:
            n, m, rf = max(out, inp), min(out, inp), kh * kw
        else:
            n, m, rf = max(kh, kw), min(kh, kw), out * inp
        scale = CONV2D_SCALE if kind == "conv2d" else 1.0
        return LayerMatrix(name, kind, shape, n, m, rf, scale, param, rows)
    if len(shape) == 3:  # nn.Conv1d
        out, inp, k = shape
        return LayerMatrix(name, kind, shape, max(out, inp), min(out, inp), k, 1.0, param, rows)
    return LayerMatrix(name, kind, shape, max(shape), min(shape), 1, 1.0, param, rows)


def _attention_entries(name: str, module: nn.MultiheadAttention) -> list[LayerMatrix]:
    prefix = f"{name}." if name else ""
    packed = module.in_proj_weight
    if packed is not None:
        e = module.embed_dim
        return [
            _entry(f"{prefix}in_proj_{part}", "attention", packed, (i * e, (i + 1) * e))
            for i, part in enumerate("qkv")
        ]
    out = []
    for part in "qkv":
        weight = getattr(module, f"{part}_proj_weight", None)
        if isinstance(weight, Tensor):
            out.append(_entry(f"{prefix}{part}_proj", "attention", weight))
    return out


def find_layers(
    model: nn.Module,
    layers: Sequence[str | type] | None = None,
    *,
    min_evals: int = 8,
    max_evals: int = 15000,
    max_N: int = 50000,
    attention: bool = True,
) -> list[LayerMatrix]:
    """Return the model's analysable weight matrices, in ``named_modules`` order.

    ``layers`` keeps only the modules of these qualified names (an attention module's
    name selects its three blocks; a block's own name selects it) or of these module
    types. A name that selects nothing analysable raises ``ValueError`` listing the
    analysable names.
    """
    found: list[tuple[str, nn.Module, LayerMatrix]] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            if attention:
                found += [(name, module, e) for e in _attention_entries(name, module)]
            continue
        kind = _kind(module)
        weight = getattr(module, "weight", None)
        if kind is None or not isinstance(weight, Tensor) or weight.ndim not in _NDIMS[kind]:
            continue
        found.append((name, module, _entry(name, kind, weight)))
    if layers is not None:
        found = _select(found, layers)
    return [e for _, _, e in found if min_evals <= e.num_evals <= max_evals and e.N <= max_N]


def _select(
    found: list[tuple[str, nn.Module, LayerMatrix]], layers: Sequence[str | type]
) -> list[tuple[str, nn.Module, LayerMatrix]]:
    if isinstance(layers, (str, type)):
        layers = [layers]
    names = {x for x in layers if isinstance(x, str)}
    types = tuple(x for x in layers if isinstance(x, type))
    others = [x for x in layers if not isinstance(x, (str, type))]
    if others:
        msg = f"Argument `layers` must hold module names or module types, but got {others[0]!r}"
        raise TypeError(msg)
    kept = [
        f
        for f in found
        if f[0] in names or f[2].name in names or (types and isinstance(f[1], types))
    ]
    missing = sorted(names - {f[0] for f in kept} - {f[2].name for f in kept})
    if missing:
        msg = (
            f"Argument `layers` names {missing}, which the model has no analysable weight "
            f"for; the analysable layers are {[f[2].name for f in found]}"
        )
        raise ValueError(msg)
    return kept


def full_weight(param: Tensor) -> Tensor:
    """Return the whole parameter: a sharded DTensor is gathered (a collective)."""
    dtensor = dtensor_type()
    if dtensor is not None and isinstance(param, dtensor):
        full: Tensor = param.full_tensor()  # type: ignore[attr-defined]
        return full.detach()
    return param.detach()


def matrices(layer: LayerMatrix, weight: Tensor) -> Tensor:
    """Return the layer's matrices as one ``(rf, a, b)`` stack from its full ``weight``."""
    if layer.rows is not None:
        weight = weight[layer.rows[0] : layer.rows[1]]
    if weight.ndim == 2:
        return weight.unsqueeze(0)
    if weight.ndim == 3:  # (out, in, k): one matrix per position
        return weight.permute(2, 0, 1)
    out, inp, kh, kw = weight.shape
    if out + inp >= kh + kw:  # one out x in matrix per kernel position
        return weight.permute(2, 3, 0, 1).reshape(kh * kw, out, inp)
    return weight.reshape(out * inp, kh, kw)  # one kh x kw matrix per channel pair


def eigenvalues(stack: Tensor, *, dtype: torch.dtype, method: str = "gram") -> Tensor:
    """Return every eigenvalue λ = σ² of the ``(k, a, b)`` stack, flattened.

    ``"gram"``: ``eigvalsh`` of the smaller Gram matrix (the fast route); ``"svd"``:
    ``svdvals`` squared. On the CPU in float64 numpy does the work (its ``AᵀA`` is a
    symmetric rank-k update, half a product: 1.3-2x faster than torch's product here)
    and the result is a CPU tensor; elsewhere torch does, on the stack's device.
    (Mixing the two libraries in one call is slower than either: their BLAS thread
    pools spin against each other.)
    """
    if method == "gram" and stack.device.type == "cpu" and dtype == torch.float64:
        a = stack.detach().to(torch.float64).numpy()  # bf16/fp16 have no numpy dtype
        a = a[0] if a.shape[0] == 1 else a  # 2-D: numpy's AᵀA is then a rank-k update
        tall = a.shape[-2] >= a.shape[-1]
        at = np.swapaxes(a, -1, -2)
        gram = at @ a if tall else a @ at
        return torch.from_numpy(np.linalg.eigvalsh(gram).ravel())
    x = stack.to(dtype)
    if method == "svd":
        out: Tensor = (torch.linalg.svdvals(x) ** 2).flatten()
        return out
    gram = x.mT @ x if x.shape[-2] >= x.shape[-1] else x @ x.mT
    out = torch.linalg.eigvalsh(gram).flatten()
    return out
