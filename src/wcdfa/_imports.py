"""The one place where optional dependencies are imported, with install hints."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA = {"matplotlib": "plot", "wandb": "wandb", "torch": "torch"}


def require(module: str) -> ModuleType:
    """Import an optional dependency or raise ``ImportError`` with the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        msg = (
            f"{top} is required for this feature but is not installed; "
            f'install it with: pip install "wcdfa[{_EXTRA.get(top, "all")}]"'
        )
        raise ImportError(msg) from exc


def first_module(*names: str) -> ModuleType | None:
    """Import and return the first importable of ``names`` (``None`` if none is)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None
