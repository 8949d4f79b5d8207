"""Warnings that point at the user's line, whatever the depth of the call inside wcdfa."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGES = ("wcdfa", "torch", "lightning", "pytorch_lightning", "transformers", "accelerate")
"""Frames inside these packages are skipped: a warning raised from an optimizer hook
or a trainer callback names the user's ``optimizer.step()`` or ``trainer.fit()``."""


def _internal_dirs() -> tuple[str, ...]:
    dirs = []
    for name in _PACKAGES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` with the stack level of the first frame outside wcdfa and torch."""
    internal = _internal_dirs()
    level = 1
    frame = sys._getframe(0)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(internal):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, category, stacklevel=level)
