"""‖ΔW‖ of a torch model between two calls, from one snapshot of its parameters.

torch is imported only by this module, and this module only when a model is handed
to a monitor. The norm is returned as a 0-d tensor on the parameters' device: no host
synchronisation happens here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch

from wcdfa._checks import SNAPSHOT_MODES, check_choice

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DeltaTracker", "trainable_parameters"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def trainable_parameters(model: torch.nn.Module) -> list[Tensor]:
    """Return the parameters of ``model`` that currently require a gradient, in order."""
    return [p for p in model.parameters() if p.requires_grad]


class DeltaTracker:
    """Frobenius norm of the change of a set of parameters since the last call.

    Parameters
    ----------
    snapshot : {"device", "cpu"}, default "device"
        Where the one copy of the previous parameters lives. ``"device"`` keeps it
        beside the parameters and updates it in place with foreach kernels;
        ``"cpu"`` keeps it in host memory (pinned for accelerator parameters) and
        streams one tensor at a time through the device.

    Notes
    -----
    The set of tracked tensors may change between calls: a tensor that joins (a
    layer unfrozen) is snapshotted and contributes from its next change on, so it
    causes no spurious jump; a tensor that leaves (frozen) is forgotten.
    """

    def __init__(self, snapshot: str = "device") -> None:
        self.snapshot = check_choice("snapshot", snapshot, SNAPSHOT_MODES)
        self._params: list[Tensor] = []
        self._snaps: list[Tensor] = []

    @property
    def snapshot_bytes(self) -> int:
        """Bytes held by the snapshot."""
        return sum(s.numel() * s.element_size() for s in self._snaps)

    def reset(self) -> None:
        """Forget the snapshot: the next call records a new baseline."""
        self._params, self._snaps = [], []

    @torch.no_grad()
    def step(self, params: Sequence[Tensor]) -> Tensor | None:
        """Return ‖params − previous params‖ and make ``params`` the new snapshot.

        Returns ``None`` when there is nothing to compare with: on the first call,
        and when none of ``params`` was tracked before.
        """
        if len(params) == len(self._params) and all(
            a is b for a, b in zip(params, self._params, strict=True)
        ):
            return self._diff_and_refresh(self._params, self._snaps)
        return self._regroup(params)

    def _regroup(self, params: Sequence[Tensor]) -> Tensor | None:
        previous = {id(p): s for p, s in zip(self._params, self._snaps, strict=True)}
        kept_p: list[Tensor] = []
        kept_s: list[Tensor] = []
        snaps: list[Tensor] = []
        for p in params:
            s = previous.get(id(p))
            if s is not None and s.shape == p.shape and s.dtype == p.dtype:
                kept_p.append(p)
                kept_s.append(s)
                snaps.append(s)
            else:
                snaps.append(self._new_snapshot(p))
        norm = self._diff_and_refresh(kept_p, kept_s) if kept_p else None
        self._params, self._snaps = list(params), snaps
        return norm

    def _new_snapshot(self, p: Tensor) -> Tensor:
        if self.snapshot == "cpu":
            out = torch.empty(
                p.shape, dtype=p.dtype, device="cpu", pin_memory=p.device.type == "cuda"
            )
            out.copy_(p.detach(), non_blocking=True)
            return out
        return p.detach().clone()

    def _diff_and_refresh(self, params: list[Tensor], snaps: list[Tensor]) -> Tensor:
        if self.snapshot == "cpu":
            norms = list(_offloaded_norms(params, snaps))
        else:
            # snaps := W_prev - W_now, its norms, then snaps := W_now: three foreach
            # kernels, no temporary of the parameters' size.
            torch._foreach_sub_(snaps, params)
            norms = _foreach_norms(snaps)
            torch._foreach_copy_(snaps, params)
        return _total_norm(norms, params[0].device)


def _foreach_norms(tensors: list[Tensor]) -> list[Tensor]:
    """Per-tensor 2-norms, accumulated in float32 at least (bf16/fp16 upcast)."""
    if not any(t.dtype in _LOW_PRECISION for t in tensors):
        return list(torch._foreach_norm(tensors, 2))
    low = [t for t in tensors if t.dtype in _LOW_PRECISION]
    full = [t for t in tensors if t.dtype not in _LOW_PRECISION]
    out = list(torch._foreach_norm(low, 2, dtype=torch.float32))
    if full:
        out += torch._foreach_norm(full, 2)
    return out


def _offloaded_norms(params: list[Tensor], snaps: list[Tensor]) -> Iterable[Tensor]:
    """Norms against a host-memory snapshot, one tensor on the device at a time."""
    for p, s in zip(params, snaps, strict=True):
        prev = s.to(p.device, non_blocking=True)
        prev = prev.float() if prev.dtype in _LOW_PRECISION else prev
        yield torch.linalg.vector_norm(prev.sub_(p))
        s.copy_(p.detach(), non_blocking=True)


def _total_norm(norms: list[Tensor], device: torch.device) -> Tensor:
    """Combine per-tensor norms into one float64 0-d tensor on ``device``."""
    stacked = torch.stack([n.to(device, non_blocking=True) for n in norms])
    total: Tensor = torch.linalg.vector_norm(stacked.to(torch.float64))
    return total
