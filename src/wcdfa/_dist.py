"""torch.distributed helpers, without importing torch when it is not already loaded."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

JOIN_TIMEOUT = float(os.environ.get("WCDFA_JOIN_TIMEOUT", "300"))
"""Seconds a rank waits, after a new baseline, for the other ranks to join wcdfa's
all-reduce before it fails with a clear error (environment: ``WCDFA_JOIN_TIMEOUT``)."""


def rank() -> int:
    """Return the torch.distributed rank, or 0 when not running distributed."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


def all_reduce(tensor: Any, group: Any, *, check: bool = False) -> None:
    """Sum ``tensor`` over ``group`` in place.

    With ``check``, wait at most :data:`JOIN_TIMEOUT` seconds for the other ranks and
    raise ``RuntimeError`` saying what to do if they never join (a monitor called on
    one rank only): a clear error instead of a hang.
    """
    dist = sys.modules["torch"].distributed
    if not check:
        dist.all_reduce(tensor, group=group)
        return
    work = dist.all_reduce(tensor, group=group, async_op=True)
    deadline = time.monotonic() + JOIN_TIMEOUT
    while not work.is_completed():
        if time.monotonic() > deadline:
            msg = (
                f"wcdfa: rank {rank()} waited {JOIN_TIMEOUT:g} s for the other ranks to "
                "sum the squared norms of sharded (FSDP2/DTensor) parameters, and they "
                "did not join. With sharded parameters every rank must measure: call "
                "monitor.update(model), or attach(optimizer), on every rank, not under "
                "`if rank == 0` (the sinks already log from rank 0 only)."
            )
            raise RuntimeError(msg)
        time.sleep(0.001)
    work.wait()
