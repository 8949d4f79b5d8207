r"""WW-PGD: project each layer's spectral tail toward a power law of exponent ≈ 2 (torch).

The published method (CalculatedContent/WW_PGD, ``ww_pgd/project.py``) rebuilt from
its description, with our own power-law fit in place of weightwatcher. Per layer, at
hardness :math:`h \in [0, 1]`:

1. :math:`W` is reshaped to ``(out, -1)`` and decomposed, :math:`W = U S V^T`
   (singular values clamped at 1e-8), :math:`\lambda = S^2` in decreasing order.
2. The tail threshold is the power-law fit's ``xmin``; with detX, it is raised to
   :math:`\lambda_{k^*}`, :math:`k^* = \lfloor (n_{tail} + n_{detX}) / 2 \rfloor`, where
   :math:`n_{tail}` counts :math:`\lambda \ge x_{min}` (to a relative 1e-6: ``xmin`` is
   an eigenvalue, kept in the tail whatever precision it came in). A tail of fewer
   than ``min_tail`` values leaves the layer alone.
3. The template :math:`\mu_r = A r^{-q}` (:math:`r = 1..k`; :math:`q = 1` is α ≈ 2) with
   :math:`A` such that :math:`\sum \log \mu = \sum \log \lambda_{tail}`.
4. A Cayley step in log space: :math:`g = \log(\lambda + \epsilon) - \log(\mu + \epsilon)`,
   :math:`\lambda \leftarrow \lambda (1 - \eta g) / (1 + \eta g)`, the ratio clamped to
   [0.1, 10], :math:`\eta = 0.25 h`; then one factor restores the tail's
   :math:`\sum \log \lambda` (with :math:`\epsilon` inside the log, as the reference).
5. :math:`W' = U\,\mathrm{diag}(\sqrt{\lambda'})\,V^T` and
   :math:`W \leftarrow (1 - \beta) W + \beta W'`, :math:`\beta = 0.5 h`.

The SVD, the step and the rebuild run on the weight's device (in float32, or float64
for a float64 weight); the fit reads the singular values once on the host. Where the
reference reads ``xmin`` from weightwatcher's fit of its own layer matrix (for a
Conv2d: the pooled, scaled per-position matrices), we fit the spectrum of the
``(out, -1)`` matrix that is projected; for Linear and Embedding weights the two are
the same matrix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wcdfa._checks import check_choice, check_int, check_real
from wcdfa._dist import world_size
from wcdfa.probes.base import Event, check_name
from wcdfa.spectral.fit import detx_count, fit_power_law
from wcdfa.spectral.layers import find_layers, full_weight
from wcdfa.tracking import dtensor_type

__all__ = ["LayerProjection", "SpectralProjection", "hardness", "project_weight"]

STATE_FORMAT = "wcdfa.projection/1"
MOMENTS = ("keep", "reset", "rescale")
EPS = 1e-8
"""ε of the log-space step and the floor of the singular values (the reference's)."""
MIN_RATIO, MAX_RATIO = 0.1, 10.0
TIE = 1.0 - 1e-6
"""The tail is λ >= xmin·TIE: xmin is itself an eigenvalue, which stays in the tail when
it was computed in another precision (a float64 fit of a float32 spectrum)."""
_FIRST_MOMENTS = ("exp_avg", "momentum_buffer")
_SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")


@dataclasses.dataclass(frozen=True)
class LayerProjection:
    """What one projection did to one layer.

    ``skipped`` says why a layer was left alone (tail too short, no fit, non-finite
    weights), else ``None``. ``alpha`` is the layer's power-law exponent before the
    step; ``change`` is ``‖W_new − W‖ / ‖W‖``.
    """

    name: str
    hardness: float
    alpha: float
    xmin: float
    detx_num: int
    tail: int
    change: float
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the record as plain Python values."""
        return dataclasses.asdict(self)


def hardness(epoch: int, warmup_epochs: int = 0, ramp_epochs: int = 5) -> float:
    """Return the projection's strength at ``epoch`` (0-based): 0 in warm-up, then up to 1.

    After ``warmup_epochs``, epoch ``warmup_epochs + i`` has ``(i + 1) / ramp_epochs``
    (the reference's schedule: the first projected epoch already has ``1 / ramp``).
    """
    if epoch < warmup_epochs:
        return 0.0
    return min(1.0, (epoch - warmup_epochs + 1) / max(ramp_epochs, 1))


def project_weight(
    weight: Tensor,
    strength: float,
    *,
    q: float = 1.0,
    min_tail: int = 5,
    blend: float = 0.5,
    cayley_eta: float = 0.25,
    use_detx: bool = True,
    xmin: float | None = None,
    detx_num: int | None = None,
    name: str = "",
) -> tuple[Tensor | None, LayerProjection]:
    """Return the projected ``weight`` (same shape and dtype) and what was done.

    ``xmin`` and ``detx_num`` default to our fit of the ``(out, -1)`` matrix's
    eigenvalues; pass them to use another fit's. The weight is returned as ``None``
    when the layer is left alone (see :attr:`LayerProjection.skipped`).
    """
    work = torch.float64 if weight.dtype == torch.float64 else torch.float32
    w2 = weight.detach().reshape(weight.shape[0], -1).to(work)
    if not bool(torch.isfinite(w2).all()):
        return None, LayerProjection(name, strength, math.nan, math.nan, 0, 0, 0.0, "non-finite")
    u, s, vh = torch.linalg.svd(w2, full_matrices=False)
    s = s.clamp_min(EPS)
    lam = s * s
    host = lam.to("cpu", torch.float64).numpy()  # the one transfer: the spectrum
    fit = fit_power_law(host)
    if xmin is None:
        xmin = fit.xmin
    if detx_num is None:
        detx_num = detx_count(host) if use_detx else 0
    threshold = float(xmin)
    if not (math.isfinite(threshold) and threshold > 0.0):
        return None, LayerProjection(
            name, strength, fit.alpha, threshold, detx_num, 0, 0.0, "no fit"
        )
    in_tail = int(np.count_nonzero(host >= threshold * TIE))
    if use_detx and detx_num > 0 and in_tail > 0:
        k_star = max(1, (min(in_tail, host.size) + min(max(detx_num, 1), host.size)) // 2)
        threshold = max(threshold, float(host[k_star - 1]))
    tail = int(np.count_nonzero(host >= threshold * TIE))  # the leading `tail` values
    record = LayerProjection(name, strength, fit.alpha, float(xmin), int(detx_num), tail, 0.0)
    if tail < min_tail:
        return None, dataclasses.replace(record, skipped=f"tail of {tail} < min_tail={min_tail}")
    if strength <= 0.0:
        return None, dataclasses.replace(record, skipped="hardness 0")
    current = lam[:tail]
    log_sum = torch.log(current).sum()
    ranks = torch.arange(1, tail + 1, device=lam.device, dtype=lam.dtype)
    log_mu = -q * torch.log(ranks)
    target = torch.exp(log_mu + (log_sum - log_mu.sum()) / tail)
    eta = strength * cayley_eta
    g = torch.log(current + EPS) - torch.log(target + EPS)
    stepped = current * ((1.0 - eta * g) / (1.0 + eta * g)).clamp(MIN_RATIO, MAX_RATIO)
    stepped = stepped * torch.exp((log_sum - torch.log(stepped + EPS).sum()) / tail)
    s_new = s.clone()
    s_new[:tail] = torch.sqrt(stepped.clamp_min(EPS))
    beta = strength * blend
    mixed = (1.0 - beta) * w2 + beta * ((u * s_new) @ vh)
    change = float(torch.linalg.norm(mixed - w2) / torch.linalg.norm(w2).clamp_min(1e-300))
    out = mixed.reshape(weight.shape).to(weight.dtype)
    return out, dataclasses.replace(record, change=change)


class SpectralProjection:
    """WW-PGD as an add-on to any optimizer: each layer's spectral tail pulled toward α ≈ 2.

    Call :meth:`project` at the end of each epoch (``epoch=`` sets the hardness), or
    put it in a :class:`~wcdfa.TrainingMonitor`'s probes with ``every=K`` steps: each
    call is then the next "epoch" of the ramp.

    Parameters
    ----------
    model : torch.nn.Module, optional
        The model whose layers are projected (else the monitor's, or ``project(model)``).
    every : int, default 1000
        Keyword-only. Steps between projections when hosted by a TrainingMonitor.
    layers : sequence of str or type, optional
        Keyword-only. Only these modules (qualified names or types); by default every
        Linear, Conv1d, Conv2d and Embedding weight that :func:`wcdfa.spectral.analyze`
        reads (MultiheadAttention's packed ``in_proj`` is not projected).
    q, min_tail, blend, cayley_eta, use_detx, warmup_epochs, ramp_epochs
        Keyword-only. The method's settings, defaults as the reference: template
        exponent ``q`` = 1 (α ≈ 2), tails of at least 5, β = 0.5 h, η = 0.25 h, detX on,
        no warm-up, a ramp over 5 epochs.
    optimizer : torch.optim.Optimizer, optional
        Keyword-only. Whose moment estimates ``moments`` acts on.
    moments : {"keep", "reset", "rescale"}, default "keep"
        Keyword-only. For each projected weight: ``"keep"`` leaves the optimizer state
        as it is (the reference: Adam's moments stay stale); ``"reset"`` zeroes its
        moments (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``) and Adam's ``step``;
        ``"rescale"`` multiplies the first moments by ``1 - β``, the share of the
        weight the projection kept.
    broadcast : bool, default True
        Keyword-only. Under ``torch.distributed``, rank 0's projected weight is
        broadcast (plain, replicated tensors: DDP) so the replicas stay bit-identical;
        a sharded (DTensor) weight is gathered, projected, and each rank keeps its
        shard of rank 0's result. Every rank must call :meth:`project`.
    name : str, default "projection"
        Keyword-only. Prefix of the metrics.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        every: int = 1000,
        layers: Sequence[str | type] | None = None,
        q: float = 1.0,
        min_tail: int = 5,
        blend: float = 0.5,
        cayley_eta: float = 0.25,
        use_detx: bool = True,
        warmup_epochs: int = 0,
        ramp_epochs: int = 5,
        optimizer: Any = None,
        moments: str = "keep",
        broadcast: bool = True,
        name: str = "projection",
    ) -> None:
        self.model = model
        self.every = check_int("every", every, 1)
        self.layers = layers
        self.q = check_real("q", q)
        if self.q <= 0:
            msg = f"Argument `q` must be > 0 (q = 1 / (α - 1)), but got {q!r}"
            raise ValueError(msg)
        self.min_tail = check_int("min_tail", min_tail, 1)
        self.blend, self.cayley_eta = _unit("blend", blend), _unit("cayley_eta", cayley_eta)
        self.use_detx = bool(use_detx)
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
        self.ramp_epochs = check_int("ramp_epochs", ramp_epochs, 1)
        self.optimizer = optimizer
        self.moments = check_choice("moments", moments, MOMENTS)
        if self.moments != "keep" and optimizer is None:
            msg = f"Argument `moments`={moments!r} needs the optimizer: pass optimizer="
            raise ValueError(msg)
        self.broadcast = bool(broadcast)
        self.name = check_name(name)
        self.calls = 0
        self.history: list[tuple[int, list[LayerProjection]]] = []
        self._events: list[Event] = []

    @property
    def events(self) -> list[Event]:
        """One ``"projected"`` event per projection (the layers it changed)."""
        return self._events

    @property
    def last(self) -> list[LayerProjection]:
        """The records of the latest projection (empty before the first)."""
        return self.history[-1][1] if self.history else []

    def project(
        self, model: nn.Module | None = None, *, epoch: int | None = None, step: int | None = None
    ) -> list[LayerProjection]:
        """Project every selected layer now; return one record per layer.

        ``epoch`` (0-based) sets the hardness; by default the number of earlier calls.
        ``step`` labels the record (default: the call count).
        """
        model = model if model is not None else self.model
        if model is None:
            msg = "SpectralProjection needs the model: SpectralProjection(model) or project(model)"
            raise ValueError(msg)
        epoch = self.calls if epoch is None else check_int("epoch", epoch, 0)
        strength = hardness(epoch, self.warmup_epochs, self.ramp_epochs)
        records = []
        with torch.no_grad():
            for layer in find_layers(model, self.layers, attention=False):
                records.append(self._project_layer(layer.name, layer.param, strength))
        self.calls += 1
        label = self.calls if step is None else step
        self.history.append((label, records))
        done = [r.name for r in records if r.skipped is None]
        self._events.append(
            Event(label, self.name, "projected", {"layers": done, "hardness": strength})
        )
        return records

    def _project_layer(self, name: str, param: Tensor, strength: float) -> LayerProjection:
        weight = full_weight(param)  # a collective for a sharded weight: every rank
        new, record = project_weight(
            weight,
            strength,
            q=self.q,
            min_tail=self.min_tail,
            blend=self.blend,
            cayley_eta=self.cayley_eta,
            use_detx=self.use_detx,
            name=name,
        )
        dist = torch.distributed
        if self.broadcast and world_size() > 1:
            # whether rank 0 projected decides for all: one flag, then the weight
            flag = torch.tensor([new is not None], dtype=torch.int32, device=weight.device)
            dist.broadcast(flag, src=0)
            if not bool(flag.item()):
                return record
            if new is None:
                new = weight.clone()
            dist.broadcast(new, src=0)
        if new is None:
            return record
        dtensor = dtensor_type()
        if dtensor is not None and isinstance(param, dtensor):
            from torch.distributed.tensor import distribute_tensor  # noqa: PLC0415

            sharded: Any = param
            local = distribute_tensor(
                new, sharded.device_mesh, sharded.placements, src_data_rank=None
            )
            sharded.to_local().copy_(local.to_local())
        else:
            param.copy_(new)
        self._adjust_moments(param, strength * self.blend)
        return record

    def _adjust_moments(self, param: Tensor, beta: float) -> None:
        if self.moments == "keep" or self.optimizer is None:
            return
        state = self.optimizer.state.get(param)
        if not state:
            return
        for key, value in state.items():
            if not isinstance(value, Tensor):
                continue
            if self.moments == "reset" and (
                key in _FIRST_MOMENTS + _SECOND_MOMENTS or key == "step"
            ):
                value.zero_()
            elif self.moments == "rescale" and key in _FIRST_MOMENTS:
                value.mul_(1.0 - beta)

    # ------------------------------------------------------- as a probe
    def start(self, context: Any) -> None:
        """Nothing to take before the first step."""

    def measure(self, context: Any) -> None:
        """Project now (a TrainingMonitor calls it every ``every`` steps)."""
        self.project(context.model if context.model is not None else self.model, step=context.step)

    def metrics(self) -> dict[str, float]:
        """``<name>/hardness``, ``<name>/layers`` and per layer ``alpha``/``change``."""
        if not self.history:
            return {}
        records = self.last
        out = {
            f"{self.name}/hardness": records[0].hardness if records else 0.0,
            f"{self.name}/layers": float(sum(r.skipped is None for r in records)),
        }
        for r in records:
            if math.isfinite(r.alpha):
                out[f"{self.name}/alpha/{r.name}"] = r.alpha
            out[f"{self.name}/change/{r.name}"] = r.change
        return out

    def state_dict(self) -> dict[str, Any]:
        """Return the call count and every record, as plain Python values."""
        return {
            "format": STATE_FORMAT,
            "calls": self.calls,
            "history": [[step, [r.as_dict() for r in records]] for step, records in self.history],
            "events": [e.as_dict() for e in self._events],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the ramp goes on where it was)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            msg = f"Argument `state` must be a {STATE_FORMAT!r} state_dict, but got {got!r}"
            raise ValueError(msg)
        calls = check_int("state['calls']", state.get("calls"), 0)
        try:
            history = [
                (int(step), [LayerProjection(**r) for r in records])
                for step, records in state.get("history", [])
            ]
            events = [Event.from_dict(e) for e in state.get("events", [])]
        except (TypeError, ValueError) as exc:
            msg = f"Argument `state` field 'history' is not a projection history ({exc})"
            raise ValueError(msg) from exc
        self.calls, self.history, self._events = calls, history, events

    def describe(self) -> str:
        """One sentence on the latest projection."""
        if not self.history:
            return "no projection yet"
        records = self.last
        done = [r for r in records if r.skipped is None]
        return (
            f"{len(done)} of {len(records)} layers projected at hardness "
            f"{records[0].hardness if records else 0.0:.2f} (call {self.calls})"
        )

    def __str__(self) -> str:
        return f"{self.name}: {self.describe()}"


def _unit(name: str, value: Any) -> float:
    out = check_real(name, value)
    if not 0.0 < out <= 1.0:
        msg = f"Argument `{name}` must be in (0, 1], but got {value!r}"
        raise ValueError(msg)
    return out
