"""Rank of this process, without importing torch when it is not already loaded."""

from __future__ import annotations

import sys


def rank() -> int:
    """Return the torch.distributed rank, or 0 when not running distributed."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0
