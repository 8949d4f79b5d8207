"""‖ΔW‖ of a torch model between two calls, from one snapshot of its parameters.

torch is imported only by this module, and this module only when a model or an
optimizer is handed to a monitor. The result stays on the parameters' device as a
float64 vector of squared norms, one per group of parameters (one group unless the
caller groups them, e.g. by optimizer param group): no host synchronisation here.

Three kernels keep the snapshot up to date while measuring the change:

- accelerator parameters, snapshot beside them: three foreach kernels over all
  tensors (``snap -= p``, per-tensor norms, ``snap <- p``); the launch count does not
  grow with the number of tensors;
- CPU parameters: the same three steps, but chunk by chunk (1 MiB of float32), so
  that each chunk is still in cache for the second and third step; this reads the
  snapshot and the parameters once from memory, close to the cost of a plain copy;
- ``snapshot="cpu"`` with accelerator parameters: host-memory snapshot (pinned),
  streamed through the device one tensor at a time.

bf16/fp16 differences and their squares are formed in float32.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch

from wcdfa._checks import SNAPSHOT_MODES, check_choice
from wcdfa._dist import all_reduce
from wcdfa._imports import first_module
from wcdfa._warn import warn
from wcdfa.errors import WCDFAWarning

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DeltaTracker", "local_part", "reduce_key"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_LOW_PRECISION_BATCH = 1 << 26
"""Elements of float32 temporaries at a time for bf16/fp16 differences on a device."""
_CHUNK = 1 << 18
"""Elements per chunk of the CPU kernel: 1 MiB of float32, so that a chunk of the
snapshot and of the parameters stay in a core's L2 cache between the three steps."""


class DeltaTracker:
    """Squared Frobenius norms of the change of parameters since the last call.

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

    def __init__(self, snapshot: str = "device", sample: float | None = None) -> None:
        self.snapshot = check_choice("snapshot", snapshot, SNAPSHOT_MODES)
        self.sample = sample  # validated by the monitor: a fraction or a count
        self._fraction: float | None = None
        self._generator = torch.Generator().manual_seed(0)
        self._warned_changed = False
        self._joined = False  # the first collective checks that every rank is here
        self.reset()

    @property
    def snapshot_bytes(self) -> int:
        """Bytes held: the snapshot and the kernels' small per-chunk buffers."""
        held = sum(s.numel() * s.element_size() for s in self._snaps)
        held += sum(i.numel() * i.element_size() for i, _ in self._samples.values())
        return held + sum(k.extra_bytes() for k in self._kernels)

    def reset(self) -> None:
        """Forget the snapshot: the next call records a new baseline."""
        self._params: list[Tensor] = []
        self._snaps: list[Tensor] = []
        self._sigs: list[tuple[Any, ...]] = []
        self._storages: list[int] | None = None
        self._ids: list[int] = []
        self._n_groups = 1
        self._kernels: list[_Kernel] = []
        self._samples: dict[int, tuple[Tensor, float]] = {}  # id -> (index, n/k)

    def previous(self) -> dict[int, tuple[Tensor, tuple[Tensor, float] | None]]:
        """``id(param) -> (snapshot, sample)`` of the tracked tensors (read, do not modify).

        The snapshot is this rank's part of the parameter at the last call (all of it,
        or with ``sample`` the values at ``sample``'s index, which scale by its factor).
        """
        return {
            id(p): (s, self._samples.get(id(p)))
            for p, s in zip(self._params, self._snaps, strict=True)
        }

    @torch.no_grad()
    def step(
        self, params: Sequence[Tensor], groups: Sequence[int] | None = None, n_groups: int = 1
    ) -> Tensor | None:
        """Return the squared norms of ``params − previous params`` per group.

        Parameters
        ----------
        params : sequence of Tensor
            The tensors to track, in a stable order.
        groups : sequence of int, optional
            Group index of each tensor (default: all in group 0).
        n_groups : int
            Number of groups.

        Returns
        -------
        Tensor or None
            float64 vector of ``n_groups`` squared norms on the first tensor's device,
            followed by one count: the sharded tensors that some rank had no baseline
            for (a sample to drop when it is not 0); the snapshot refreshed to
            ``params``. ``None`` when there is nothing to compare with (no tensors,
            the first call, or none of ``params`` tracked before).

        Notes
        -----
        With sharded tensors every rank enters the same all-reduces on every call,
        the baseline included, whatever its own snapshot holds: a rank that reset
        alone cannot hang the others, and the count tells every rank alike to drop
        that step.
        """
        if not params:  # everything frozen: nothing to measure, nothing to keep
            self.reset()
            return None
        ids = [0] * len(params) if groups is None else list(groups)
        if (
            n_groups == self._n_groups
            and ids == self._ids
            and len(params) == len(self._params)
            and all(a is b for a, b in zip(params, self._params, strict=True))
            and (self._storages is None or self._storages == [p.data_ptr() for p in params])
        ):
            return self._combine()
        return self._regroup(params, ids, n_groups)

    def _regroup(self, params: Sequence[Tensor], ids: list[int], n_groups: int) -> Tensor | None:
        """Rebuild the kernels for a new set or layout of tensors.

        A tensor seen before with the same shape, dtype and device keeps its snapshot;
        any other (new, or whose ``.data`` was replaced by another shape, dtype or
        device) gets a fresh one and contributes from its next change on.
        """
        previous = {
            id(p): (s, sig) for p, s, sig in zip(self._params, self._snaps, self._sigs, strict=True)
        }
        if self.sample is not None and self._fraction is None:
            total = sum(p.numel() for p in params)
            sample = self.sample
            self._fraction = sample if isinstance(sample, float) else min(1.0, sample / total)
        samples = {}
        local = [local_part(p) for p in params]  # DTensor: this rank's shard
        keys = [reduce_key(p) for p in params]
        sigs = [(lp.shape, lp.dtype, lp.device) for lp in local]
        snaps: list[Tensor] = []
        new: list[bool] = []
        changed = 0
        for p, lp, sig in zip(params, local, sigs, strict=True):
            kept = previous.get(id(p))
            if kept is not None and kept[1] == sig:
                snaps.append(kept[0])
                if self.sample is not None:
                    samples[id(p)] = self._samples[id(p)]
            else:
                changed += kept is not None
                snaps.append(self._new_snapshot(lp, samples, id(p)))
            new.append(kept is None or kept[1] != sig)
        if changed and not self._warned_changed:
            self._warned_changed = True
            warn(
                f"{changed} tracked parameter(s) changed shape, dtype or device (their "
                "`.data` was replaced, or the model moved): they take a new baseline and "
                "count from their next change on (warned once).",
                WCDFAWarning,
            )
        self._samples = samples
        self._params, self._snaps, self._ids, self._n_groups = list(params), snaps, ids, n_groups
        self._sigs = sigs
        self._storages = None if any(keys) else [p.data_ptr() for p in params]
        self._kernels = self._make_kernels(
            local, snaps, ids, n_groups, keys, [id(p) for p in params], new
        )
        self._zero = torch.zeros(1, dtype=torch.float64, device=params[0].device)
        sharded = any(k.reduce_groups for k in self._kernels)
        if all(new) and not sharded:
            return None  # a baseline: nothing to compare with, no collective to enter
        squares = self._combine()
        return None if all(new) else squares

    def _combine(self) -> Tensor:
        """Run the kernels; their per-group squared norms summed, then the count.

        Sharded tensors (DTensor with a Shard placement) hold a part of the parameter
        on each rank: their squares are summed over the ranks of the sharded mesh
        dims with one all-reduce per bucket. Replicated tensors (DDP, Replicate) are
        the same on every rank and are not summed, so none is counted twice. Every
        rank runs the same kernels in the same order, so every rank enters the same
        collectives. Before this tracker's first collective, a rank waits at most
        :data:`wcdfa._dist.JOIN_TIMEOUT` seconds for the others and otherwise fails
        with a clear error (a monitor called on one rank only).
        """
        check, self._joined = not self._joined, True
        squares = []
        counts = []
        for kernel in self._kernels:
            sq = kernel.measure_and_refresh()
            if kernel.reduce_groups:
                sq = torch.cat((sq, kernel.take_new_count()))
                for group in kernel.reduce_groups:
                    all_reduce(sq, group, check=check)
                counts.append(sq[-1:])
                sq = sq[:-1]
            squares.append(sq)
        device = self._zero.device
        total = (
            squares[0]
            if len(squares) == 1
            else torch.stack([s.to(device, non_blocking=True) for s in squares]).sum(dim=0)
        )
        count = (
            self._zero
            if not counts
            else torch.stack([c.to(device, non_blocking=True) for c in counts]).sum(dim=0)
        )
        return torch.cat((total, count))

    def _new_snapshot(
        self, p: Tensor, samples: dict[int, tuple[Tensor, float]], key: int
    ) -> Tensor:
        if self.sample is not None:  # a fixed random subset of the coordinates
            n = p.numel()
            k = max(1, round((self._fraction or 1.0) * n)) if n else 0
            index = torch.randint(max(n, 1), (k,), generator=self._generator)
            index = index.to(device=p.device, dtype=torch.int32 if n < 2**31 else torch.long)
            samples[key] = (index, n / k if k else 0.0)
            return p.detach().reshape(-1).index_select(0, index)
        if self.snapshot == "cpu" and p.device.type != "cpu":
            out = torch.empty(p.shape, dtype=p.dtype, pin_memory=True)
            out.copy_(p.detach(), non_blocking=True)
            return out
        return p.detach().clone(memory_format=torch.contiguous_format)

    def _make_kernels(
        self,
        params: list[Tensor],
        snaps: list[Tensor],
        ids: list[int],
        n_groups: int,
        keys: list[tuple[Any, ...]],
        owners: list[int],
        new: list[bool],
    ) -> list[_Kernel]:
        """One kernel per (device, process groups to sum over) bucket of tensors."""
        buckets: dict[tuple[torch.device, tuple[Any, ...]], list[int]] = {}
        for i, (p, key) in enumerate(zip(params, keys, strict=True)):
            buckets.setdefault((p.device, key), []).append(i)
        kernels: list[_Kernel] = []
        for (device, key), idx in buckets.items():
            args = ([params[i] for i in idx], [snaps[i] for i in idx], [ids[i] for i in idx])
            kernel: _Kernel
            if self.sample is not None:
                kernel = _SampledKernel(*args, n_groups, [self._samples[owners[i]] for i in idx])
            elif device.type == "cpu":
                kernel = _CpuKernel(*args, n_groups)
            elif self.snapshot == "cpu":
                kernel = _OffloadKernel(*args, n_groups)
            else:
                kernel = _ForeachKernel(*args, n_groups)
            kernel.reduce_groups = key
            if key:
                kernel.new_count = torch.tensor(
                    [float(sum(new[i] for i in idx))], dtype=torch.float64, device=device
                )
                kernel.no_new = torch.zeros(1, dtype=torch.float64, device=device)
            kernels.append(kernel)
        return kernels


class _Kernel:
    """Parameters on one device with their snapshots and group indices."""

    def __init__(
        self, params: list[Tensor], snaps: list[Tensor], ids: list[int], n_groups: int
    ) -> None:
        self.params = params
        self.snaps = snaps
        self.n_groups = n_groups
        self.reduce_groups: tuple[Any, ...] = ()  # sharded tensors: sum over these
        self.ids = torch.tensor(ids, dtype=torch.long, device=params[0].device)
        self.new_count: Tensor | None = None  # sharded: tensors just given a baseline
        self.no_new: Tensor | None = None

    def take_new_count(self) -> Tensor:
        """Return the count of freshly baselined tensors for this call (then 0)."""
        count, self.new_count = self.new_count, self.no_new
        return cast("Tensor", count)  # both are set for every sharded kernel

    def measure_and_refresh(self) -> Tensor:
        """Return float64 squared norms of the change per group; refresh the snapshot."""
        raise NotImplementedError

    def extra_bytes(self) -> int:
        """Bytes held beyond the snapshot itself."""
        return 0

    def _per_group(self, norms: list[Tensor], ids: Tensor) -> Tensor:
        squares = torch.stack(norms).to(torch.float64).square()
        if self.n_groups == 1:
            return squares.sum().reshape(1)
        out = torch.zeros(self.n_groups, dtype=torch.float64, device=squares.device)
        return out.index_add_(0, ids, squares)


class _ForeachKernel(_Kernel):
    def __init__(
        self, params: list[Tensor], snaps: list[Tensor], ids: list[int], n_groups: int
    ) -> None:
        super().__init__(params, snaps, ids, n_groups)
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
        self.order_ids = self.ids[torch.tensor(full + low, dtype=torch.long)]

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
        return self._per_group(norms, self.order_ids)


class _OffloadKernel(_Kernel):
    def measure_and_refresh(self) -> Tensor:
        norms = []
        for p, s in zip(self.params, self.snaps, strict=True):
            prev = s.to(p.device, non_blocking=True)
            prev = prev.float() if prev.dtype in _LOW_PRECISION else prev
            norms.append(torch.linalg.vector_norm(prev.sub_(p)))
            s.copy_(p.detach(), non_blocking=True)
        return self._per_group(norms, self.ids)


class _SampledKernel(_Kernel):
    """Estimate from a fixed random subset of each tensor's coordinates (O(k) memory).

    With ``k`` of a tensor's ``n`` coordinates drawn uniformly (with replacement),
    ``n / k`` times the sampled sum of squares is an unbiased estimate of the
    tensor's squared norm.
    """

    def __init__(
        self,
        params: list[Tensor],
        snaps: list[Tensor],
        ids: list[int],
        n_groups: int,
        samples: list[tuple[Tensor, float]],
    ) -> None:
        super().__init__(params, snaps, ids, n_groups)
        self.samples = samples

    def measure_and_refresh(self) -> Tensor:
        squares = []
        for p, s, (index, scale) in zip(self.params, self.snaps, self.samples, strict=True):
            current = p.detach().reshape(-1).index_select(0, index)
            diff = s.float() - current if s.dtype in _LOW_PRECISION else s - current
            squares.append(diff.square().sum(dtype=torch.float64) * scale)
            s.copy_(current)
        stacked = torch.stack(squares)
        if self.n_groups == 1:
            return stacked.sum().reshape(1)
        out = torch.zeros(self.n_groups, dtype=torch.float64, device=stacked.device)
        return out.index_add_(0, self.ids, stacked)


class _CpuKernel(_Kernel):
    """Cache-blocked kernel: large tensors chunk by chunk, small ones by foreach."""

    def __init__(
        self, params: list[Tensor], snaps: list[Tensor], ids: list[int], n_groups: int
    ) -> None:
        super().__init__(params, snaps, ids, n_groups)
        small = [i for i, p in enumerate(params) if p.numel() < _CHUNK]
        self.large = [i for i, p in enumerate(params) if p.numel() >= _CHUNK]
        self.small = (
            _ForeachKernel(
                [params[i] for i in small],
                [snaps[i] for i in small],
                [ids[i] for i in small],
                n_groups,
            )
            if small
            else None
        )
        self.chunks = [torch.split(snaps[i].view(-1), _CHUNK) for i in self.large]
        # One slot per chunk for its sum of squares, in the dtype torch.dot returns
        # (float32 for bf16/fp16 chunks, whose difference is formed in float32).
        n_chunks = sum(len(c) for c in self.chunks)
        dtypes = {
            torch.float32 if params[i].dtype in _LOW_PRECISION else params[i].dtype
            for i in self.large
        }
        self.slots = {dt: torch.zeros(n_chunks, dtype=dt) for dt in dtypes}
        self.slot_of: list[list[Tensor]] = []
        chunk_ids: list[int] = []
        start = 0
        for i, chunks in zip(self.large, self.chunks, strict=True):
            dt = torch.float32 if params[i].dtype in _LOW_PRECISION else params[i].dtype
            self.slot_of.append(list(self.slots[dt][start : start + len(chunks)].unbind()))
            chunk_ids += [ids[i]] * len(chunks)
            start += len(chunks)
        self.chunk_ids = torch.tensor(chunk_ids, dtype=torch.long)

    def measure_and_refresh(self) -> Tensor:
        out = torch.zeros(self.n_groups, dtype=torch.float64)
        if self.small is not None:
            out += self.small.measure_and_refresh()
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
        for buf in self.slots.values():
            squares = buf.to(torch.float64)
            if self.n_groups == 1:
                out += squares.sum()
            else:
                out.index_add_(0, self.chunk_ids, squares)
        return out

    def extra_bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self.slots.values())


@functools.cache
def dtensor_type() -> type | None:
    """Return the DTensor class, looked up once (None where torch.distributed lacks it)."""
    if not torch.distributed.is_available():
        return None
    module = first_module("torch.distributed.tensor", "torch.distributed._tensor")
    dtensor: type | None = None if module is None else module.DTensor
    return dtensor


def local_part(p: Tensor) -> Tensor:
    """Return this rank's part of ``p``: a DTensor's local shard, else ``p`` itself."""
    dtensor = dtensor_type()
    if dtensor is not None and isinstance(p, dtensor):
        local: Tensor = p.to_local()  # type: ignore[attr-defined]
        return local
    return p


def reduce_key(p: Tensor) -> tuple[Any, ...]:
    """Process groups over which ``p``'s squared norm must be summed (sharded dims)."""
    dtensor = dtensor_type()
    if dtensor is None or not isinstance(p, dtensor):
        return ()
    mesh: Any = p.device_mesh  # type: ignore[attr-defined]
    placements: Any = p.placements  # type: ignore[attr-defined]
    return tuple(
        mesh.get_group(dim) for dim, placement in enumerate(placements) if placement.is_shard()
    )
