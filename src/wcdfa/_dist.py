"""torch.distributed helpers, without importing torch when it is not already loaded."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

JOIN_TIMEOUT = float(os.environ.get("WCDFA_JOIN_TIMEOUT", "300"))
"""Seconds a rank waits for the other ranks before a measurer's first collective,
then fails with a clear error (environment: ``WCDFA_JOIN_TIMEOUT``)."""

_joins: dict[tuple[int, ...], int] = {}  # group ranks -> join checks so far


def rank() -> int:
    """Return the torch.distributed rank, or 0 when not running distributed."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


def world_size() -> int:
    """Return the torch.distributed world size, or 1 when not running distributed."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 1
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def all_reduce(tensor: Any, group: Any, *, check: bool = False) -> None:
    """Sum ``tensor`` over ``group`` in place.

    With ``check`` (a measurer's first collective), first make sure that every rank
    of ``group`` is here, through the process group's store rather than a
    collective, so that a rank calling alone never pairs with another collective
    (FSDP's all-gathers) and fails after :data:`JOIN_TIMEOUT` seconds with an error
    that says what to do, instead of hanging.
    """
    dist = sys.modules["torch"].distributed
    if check:
        join(group)
    dist.all_reduce(tensor, group=group)


def join(group: Any, what: str = "measure ‖ΔW‖ of sharded (FSDP2/DTensor) parameters") -> None:
    """Wait until every rank of ``group`` is here (through the store), or fail clearly.

    ``what`` completes the error's "waited for ranks ... to <what>".
    """
    dist = sys.modules["torch"].distributed
    store = dist.distributed_c10d._get_default_store()
    ranks = tuple(dist.get_process_group_ranks(group))
    count = _joins[ranks] = _joins.get(ranks, 0) + 1
    key = f"wcdfa/join/{'-'.join(map(str, ranks))}/{count}"
    store.add(key, 1)
    deadline = time.monotonic() + JOIN_TIMEOUT
    while store.add(key, 0) < len(ranks):
        if time.monotonic() > deadline:
            msg = (
                f"wcdfa: rank {rank()} waited {JOIN_TIMEOUT:g} s for ranks {list(ranks)} to "
                f"{what}, and not all came. With sharded parameters every rank must measure: call "
                "monitor.update(model), attach(optimizer) or the probe on every rank, not "
                "under `if rank == 0` (the sinks already log from rank 0 only)."
            )
            raise RuntimeError(msg)
        time.sleep(0.005)
