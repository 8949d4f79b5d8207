"""‖ΔW‖ of a torch model between two calls, from one snapshot of its parameters.

torch is imported only by this module, and this module only when a model is handed
to a monitor. The norm is returned as a 0-d tensor on the parameters' device: no host
synchronisation happens here.

Three kernels keep the snapshot up to date while measuring the change:

- accelerator parameters, snapshot beside them: three foreach kernels over all
  tensors (``snap -= p``, per-tensor norms, ``snap <- p``); launch count does not grow
  with the number of tensors;
- CPU parameters: the same three steps, but chunk by chunk (1 MiB of float32), so
  that each chunk is still in cache for the second and third step; this reads the
  snapshot and the parameters once from memory, close to the cost of a plain copy;
- ``snapshot="cpu"`` with accelerator parameters: host-memory snapshot (pinned),
  streamed through the device one tensor at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from wcdfa._checks import SNAPSHOT_MODES, check_choice

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DeltaTracker", "trainable_parameters"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_LOW_PRECISION_BATCH = 1 << 26
"""Elements of float32 temporaries at a time for bf16/fp16 differences on a device."""
_CHUNK = 1 << 18
"""Elements per chunk of the CPU kernel: 1 MiB of float32, so that a chunk of the
snapshot and of the parameters stay in a core's L2 cache between the three steps."""


def trainable_parameters(model: torch.nn.Module) -> list[Tensor]:
    """Return the parameters of ``model`` that currently require a gradient, in order."""
    return [p for p in model.parameters() if p.requires_grad]


class DeltaTracker:
    """Frobenius norm of the change of a set of parameters since the last call.

    Parameters
    ----------
    snapshot : {"device", "cpu"}, default "device"
        Where the one copy of the previous parameters lives: beside the parameters,
        or in host memory (pinned for accelerator parameters).

    Notes
    -----
    The set of tracked tensors may change between calls: a tensor that joins (a
    layer unfrozen) is snapshotted and contributes from its next change on, so it
    causes no spurious jump; a tensor that leaves (frozen) is forgotten.
    """

    def __init__(self, snapshot: str = "device") -> None:
        self.snapshot = check_choice("snapshot", snapshot, SNAPSHOT_MODES)
        self.reset()

    @property
    def snapshot_bytes(self) -> int:
        """Bytes held: the snapshot and the kernels' per-chunk slots."""
        held = sum(s.numel() * s.element_size() for s in self._snaps)
        return held + sum(g.extra_bytes() for g in self._groups)

    def reset(self) -> None:
        """Forget the snapshot: the next call records a new baseline."""
        self._params: list[Tensor] = []
        self._snaps: list[Tensor] = []
        self._groups: list[_Group] = []

    @torch.no_grad()
    def step(self, params: Sequence[Tensor]) -> Tensor | None:
        """Return ‖params − previous params‖ and make ``params`` the new snapshot.

        Returns ``None`` when there is nothing to compare with: on the first call,
        and when none of ``params`` was tracked before.
        """
        if len(params) == len(self._params) and all(
            a is b for a, b in zip(params, self._params, strict=True)
        ):
            return _total([g.measure_and_refresh() for g in self._groups], params[0].device)
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
            else:
                s = self._new_snapshot(p)
            snaps.append(s)
        norm = None
        if kept_p:
            norm = _total([g.measure_and_refresh() for g in self._make_groups(kept_p, kept_s)],
                          kept_p[0].device)
        self._params, self._snaps = list(params), snaps
        self._groups = self._make_groups(self._params, self._snaps)
        return norm

    def _new_snapshot(self, p: Tensor) -> Tensor:
        if self.snapshot == "cpu" and p.device.type != "cpu":
            out = torch.empty(p.shape, dtype=p.dtype, pin_memory=True)
            out.copy_(p.detach(), non_blocking=True)
            return out
        return p.detach().clone(memory_format=torch.contiguous_format)

    def _make_groups(self, params: list[Tensor], snaps: list[Tensor]) -> list[_Group]:
        by_device: dict[torch.device, tuple[list[Tensor], list[Tensor]]] = {}
        for p, s in zip(params, snaps, strict=True):
            ps, ss = by_device.setdefault(p.device, ([], []))
            ps.append(p)
            ss.append(s)
        groups: list[_Group] = []
        for device, (ps, ss) in by_device.items():
            if device.type == "cpu":
                groups.append(_CpuGroup(ps, ss))
            elif self.snapshot == "cpu":
                groups.append(_OffloadGroup(ps, ss))
            else:
                groups.append(_ForeachGroup(ps, ss))
        return groups


class _Group:
    """Parameters on one device with their snapshots."""

    def __init__(self, params: list[Tensor], snaps: list[Tensor]) -> None:
        self.params = params
        self.snaps = snaps

    def measure_and_refresh(self) -> Tensor:
        """Return the float64 squared norm of the change and refresh the snapshot."""
        raise NotImplementedError

    def extra_bytes(self) -> int:
        """Bytes held beyond the snapshot itself."""
        return 0


class _ForeachGroup(_Group):
    def __init__(self, params: list[Tensor], snaps: list[Tensor]) -> None:
        super().__init__(params, snaps)
        full = [i for i, p in enumerate(params) if p.dtype not in _LOW_PRECISION]
        low = [i for i, p in enumerate(params) if p.dtype in _LOW_PRECISION]
        self.full = ([params[i] for i in full], [snaps[i] for i in full])
        # bf16/fp16: the difference is formed in float32, in batches of at most
        # _LOW_PRECISION_BATCH elements of temporaries.
        self.low_batches: list[tuple[list[Tensor], list[Tensor]]] = []
        size = _LOW_PRECISION_BATCH
        for i in low:
            if size + params[i].numel() > _LOW_PRECISION_BATCH:
                self.low_batches.append(([], []))
                size = 0
            self.low_batches[-1][0].append(params[i])
            self.low_batches[-1][1].append(snaps[i])
            size += params[i].numel()

    def measure_and_refresh(self) -> Tensor:
        norms: list[Tensor] = []
        params, snaps = self.full
        if params:
            torch._foreach_sub_(snaps, params)
            norms += torch._foreach_norm(snaps, 2)
            torch._foreach_copy_(snaps, params)
        for params, snaps in self.low_batches:
            diffs = [torch.empty_like(s, dtype=torch.float32) for s in snaps]
            torch._foreach_copy_(diffs, snaps)
            torch._foreach_sub_(diffs, params)
            norms += torch._foreach_norm(diffs, 2)
            torch._foreach_copy_(snaps, params)
        return _sum_of_squares(norms)


class _OffloadGroup(_Group):
    def measure_and_refresh(self) -> Tensor:
        norms = []
        for p, s in zip(self.params, self.snaps, strict=True):
            prev = s.to(p.device, non_blocking=True)
            prev = prev.float() if prev.dtype in _LOW_PRECISION else prev
            norms.append(torch.linalg.vector_norm(prev.sub_(p)))
            s.copy_(p.detach(), non_blocking=True)
        return _sum_of_squares(norms)


class _CpuGroup(_Group):
    """Cache-blocked kernel: large tensors chunk by chunk, small ones by foreach."""

    def __init__(self, params: list[Tensor], snaps: list[Tensor]) -> None:
        super().__init__(params, snaps)
        self.small = [i for i, p in enumerate(params) if p.numel() < _CHUNK]
        self.large = [i for i, p in enumerate(params) if p.numel() >= _CHUNK]
        self.chunks = [torch.split(snaps[i].view(-1), _CHUNK) for i in self.large]
        # One slot per chunk for its sum of squares, in the dtype torch.dot returns.
        self.slots: dict[torch.dtype, Tensor] = {}
        self.slot_of: list[list[Tensor]] = []
        counts: dict[torch.dtype, int] = {}
        for i, chunks in zip(self.large, self.chunks, strict=True):
            dtype = _slot_dtype(params[i].dtype)
            counts[dtype] = counts.get(dtype, 0) + len(chunks)
        for dtype, count in counts.items():
            self.slots[dtype] = torch.zeros(count, dtype=dtype)
        used = dict.fromkeys(counts, 0)
        for i, chunks in zip(self.large, self.chunks, strict=True):
            dtype = _slot_dtype(params[i].dtype)
            start = used[dtype]
            used[dtype] += len(chunks)
            self.slot_of.append(list(self.slots[dtype][start : used[dtype]].unbind()))

    def measure_and_refresh(self) -> Tensor:
        parts: list[Tensor] = []
        if self.small:
            ps = [self.params[i] for i in self.small]
            ss = [self.snaps[i] for i in self.small]
            parts.append(_ForeachGroup(ps, ss).measure_and_refresh())
        for i, chunks, slots in zip(self.large, self.chunks, self.slot_of, strict=True):
            flat = self.params[i].detach().reshape(-1)
            for pc, sc, slot in zip(torch.split(flat, _CHUNK), chunks, slots, strict=True):
                if sc.dtype in _LOW_PRECISION:
                    diff = sc.float().sub_(pc)
                    torch.dot(diff, diff, out=slot)
                else:
                    sc.sub_(pc)
                    torch.dot(sc, sc, out=slot)
                sc.copy_(pc)
        parts += [buf.sum(dtype=torch.float64) for buf in self.slots.values()]
        return torch.stack(parts).sum()

    def extra_bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self.slots.values())


def _slot_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _sum_of_squares(norms: list[Tensor]) -> Tensor:
    # stack promotes mixed float32/float64 norms; one kernel, not one per tensor
    return torch.stack(norms).to(torch.float64).square().sum()


def _total(squares: list[Tensor], device: torch.device) -> Tensor:
    """Combine the groups' squared norms into one float64 0-d tensor on ``device``."""
    if len(squares) == 1:
        return squares[0].sqrt()
    return torch.stack([s.to(device, non_blocking=True) for s in squares]).sum().sqrt()
