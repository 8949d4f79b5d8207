"""Exports of a monitor's record: rows per step, written atomically as CSV or JSON Lines."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ROW_FIELDS", "atomic_write", "build_rows", "write_rows"]

ROW_FIELDS = ["step", "delta_norm", "alpha", "alpha_ci_low", "alpha_ci_high", "regime"]
SUFFIXES = (".csv", ".jsonl", ".ndjson")


def build_rows(
    norms: Iterable[tuple[int, float]],
    alphas: Sequence[tuple[int, float, str]],
    intervals: Sequence[tuple[float, float] | None],
    norm_field: str = "delta_norm",
) -> list[dict[str, Any]]:
    """One row per step with a norm or an α, in step order.

    ``norms`` are ``(step, value)`` pairs (non-finite values become the strings
    ``"nan"``/``"inf"``), ``alphas`` ``(step, alpha, regime)`` with the interval of
    each α in ``intervals`` (``None`` where it is unknown).
    """
    fields = [norm_field if f == "delta_norm" else f for f in ROW_FIELDS]
    rows: dict[int, dict[str, Any]] = {}
    for step, value in norms:
        rows[step] = {"step": step, norm_field: value if math.isfinite(value) else str(value)}
    for (step, alpha, regime), interval in zip(alphas, intervals, strict=True):
        row = rows.setdefault(step, {"step": step})
        row.update(alpha=alpha, regime=regime)
        if interval is not None:
            row["alpha_ci_low"], row["alpha_ci_high"] = interval
    out = []
    for step in sorted(rows):
        row = dict.fromkeys(fields)
        row.update(rows[step])
        out.append(row)
    return out


def add_tags(
    rows: list[dict[str, Any]],
    tagged: dict[str, list[int]],
    clean_steps: Sequence[int],
    clean_alphas: Sequence[float],
) -> None:
    """Add the columns ``tag`` (a step's tags, ``+``-joined) and ``alpha_clean`` in place.

    Rows are added for tagged or clean-α steps that have none (a skipped step).
    """
    by_step = {row["step"]: row for row in rows}
    tags: dict[int, list[str]] = {}
    for tag, steps in tagged.items():
        for step in steps:
            tags.setdefault(step, []).append(tag)
    fields = list(rows[0]) if rows else [*ROW_FIELDS]
    for step in set(tags) | set(clean_steps):
        by_step.setdefault(step, dict.fromkeys(fields) | {"step": step})
    for row in by_step.values():
        row["tag"] = "+".join(tags.get(row["step"], [])) or None
        row["alpha_clean"] = None
    for step, alpha in zip(clean_steps, clean_alphas, strict=True):
        by_step[step]["alpha_clean"] = alpha
    rows[:] = [by_step[k] for k in sorted(by_step)]


def write_rows(path: Any, rows: list[dict[str, Any]], fields: list[str] | None = None) -> Path:
    """Write ``rows`` to ``path`` (``.csv``, ``.jsonl`` or ``.ndjson``) atomically."""
    out = check_path(path)
    if fields is None:
        fields = list(rows[0]) if rows else ROW_FIELDS

    def write(f: Any) -> None:
        if out.suffix.lower() == ".csv":
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            for row in rows:
                f.write(json.dumps(row) + "\n")

    atomic_write(out, write)
    return out


def check_path(path: Any) -> Path:
    """Validate an export path's suffix."""
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        msg = f"Argument `path` must end in .csv, .jsonl or .ndjson, but got {str(out)!r}"
        raise ValueError(msg)
    return out


def atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    """Write ``path`` through ``write(file)`` so that it is replaced whole or not at all.

    The data goes to a temporary file in the same folder (created if missing), is
    flushed to disk, and replaces ``path`` in one rename; on any failure the temporary
    file is removed, the previous ``path`` is left as it was, and an ``OSError``
    naming the path says why.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    permissions = path.stat().st_mode & 0o777 if path.is_file() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, permissions)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            msg = f"Could not write {str(path)!r} ({exc}); the previous file is unchanged"
            raise OSError(exc.errno, msg) from exc
        raise
