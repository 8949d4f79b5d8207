"""The step's update against the gradient it was given, per tensor, from the ‖ΔW‖ measurer.

A probe that compares the applied update ΔW with the negative gradient −∇L (the
credit alignment of :class:`wcdfa.probes.FlowProbe`) asks the host's ‖ΔW‖ measurer
for it on the steps it samples: the measurer then forms, per trainable tensor, the
three sums ⟨ΔW, −g⟩, ‖ΔW‖² and ‖g‖² from what it holds anyway, with no copy of its
own: its snapshot of the previous parameters (``snapshot − p = −ΔW``) or the
optimizer's state (ΔW recomputed as :mod:`wcdfa.derived` does). Each tensor's
difference is a transient temporary, one tensor at a time, on the sampled steps only.
With ``sample=`` the sums are those of the sampled coordinates scaled by ``n / k``
(unbiased estimates of the three sums). Sharded tensors (FSDP2, DTensor) are summed
over their ranks; every rank enters the same collectives.

torch is imported only by this module, and this module only when a probe asks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from wcdfa._dist import all_reduce
from wcdfa.tracking import local_part, reduce_key

if TYPE_CHECKING:
    from torch import Tensor

    from wcdfa.derived import DerivedUpdate
    from wcdfa.tracking import DeltaTracker

__all__ = ["UpdateAlignment", "from_optimizer", "from_snapshot"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class UpdateAlignment:
    """Per tensor: ⟨ΔW, −g⟩, ‖ΔW‖², ‖g‖² of one step (float64, on the device).

    A tensor without a gradient, or without a previous value to compare with, has
    three zeros: it counts in no block.
    """

    def __init__(self, params: Sequence[Tensor], values: Tensor) -> None:
        self.values = values
        self.index = {id(p): i for i, p in enumerate(params)}

    def cosines(self, groups: Sequence[Sequence[Tensor]]) -> list[float]:
        """cos(ΔW, −∇L) over each group of tensors (NaN where it has none): one transfer."""
        rows = [[self.index[id(p)] for p in group if id(p) in self.index] for group in groups]
        zero = self.values.new_zeros(3)
        sums = torch.stack([self.values[r].sum(0) if r else zero for r in rows])
        cos = sums[:, 0] / (sums[:, 1] * sums[:, 2]).sqrt()
        return [c if math.isfinite(c) else math.nan for c in cos.cpu().tolist()]


@torch.no_grad()
def from_snapshot(tracker: DeltaTracker, params: Sequence[Tensor], check: bool) -> UpdateAlignment:
    """Form the sums from ``tracker``'s snapshot, before the measurement refreshes it."""
    previous = tracker.previous()
    rows = []
    for p in params:
        kept, grad = previous.get(id(p)), p.grad
        lp = local_part(p)
        if kept is None or grad is None:
            rows.append(_zeros(lp))
            continue
        snap, sample = kept
        g = local_part(grad)
        if sample is None:
            if snap.shape != lp.shape:  # `.data` replaced: a new baseline at this step
                rows.append(_zeros(lp))
                continue
            current, scale = lp, 1.0
        else:
            index, scale = sample
            current, g = lp.reshape(-1).index_select(0, index), g.reshape(-1).index_select(0, index)
        minus_delta = _wide(snap.to(lp.device, non_blocking=True)) - _wide(current)
        rows.append(_sums(minus_delta, _wide(g), scale))
    return UpdateAlignment(params, _reduce(rows, params, check))


@torch.no_grad()
def from_optimizer(
    derived: DerivedUpdate, params: Sequence[Tensor], check: bool
) -> UpdateAlignment:
    """Form the sums with ΔW recomputed from the optimizer's state (:mod:`wcdfa.derived`)."""
    rows = []
    for p, delta in zip(params, derived.deltas(params), strict=True):
        if delta is None or p.grad is None:
            rows.append(_zeros(local_part(p)))
            continue
        rows.append(_sums(-delta, _wide(local_part(p.grad)), 1.0))  # ⟨−ΔW, g⟩ = ⟨ΔW, −g⟩
    return UpdateAlignment(params, _reduce(rows, params, check))


def _wide(t: Tensor) -> Tensor:
    """bf16/fp16 in float32; other dtypes as they are."""
    return t.float() if t.dtype in _LOW_PRECISION else t


def _sums(minus_delta: Tensor, g: Tensor, scale: float) -> Tensor:
    """⟨−ΔW, g⟩, ‖ΔW‖², ‖g‖² (times ``scale``) as a float64 row."""
    a, b = minus_delta.reshape(-1), g.reshape(-1).to(minus_delta.dtype)
    return torch.stack((torch.dot(a, b), torch.dot(a, a), torch.dot(b, b))).double() * scale


def _zeros(like: Tensor) -> Tensor:
    return torch.zeros(3, dtype=torch.float64, device=like.device)


def _reduce(rows: list[Tensor], params: Sequence[Tensor], check: bool) -> Tensor:
    """Stack the rows; sum those of sharded tensors over their ranks (all ranks alike)."""
    if not rows:
        return torch.zeros((0, 3), dtype=torch.float64)
    device = rows[0].device
    values = torch.stack([r.to(device) for r in rows])
    keys = [reduce_key(p) for p in params]
    for key in dict.fromkeys(k for k in keys if k):
        mask = torch.tensor([k == key for k in keys], device=device)
        part = torch.where(mask[:, None], values, 0.0)
        for group in key:
            all_reduce(part, group, check=check)
        values = torch.where(mask[:, None], part, values)
    return values
