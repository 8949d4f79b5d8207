"""``wcdfa analyze FILE``: DFA of a recorded ‖ΔW‖ series from the command line.

Reads CSV, JSON Lines, ``.npy`` or plain text; prints α, R², the regime and the
confidence interval (``--json`` for a machine-readable line). Any problem with the
input is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wcdfa import __version__
from wcdfa.analysis import dfa
from wcdfa.monitor import WeightChangeDFA

__all__ = ["main"]

_DEFAULT_COLUMN = "delta_norm"


class InputError(Exception):
    """A problem with the user's input, reported as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="wcdfa", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"wcdfa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    analyze = sub.add_parser("analyze", help="DFA of a series stored in a file")
    analyze.add_argument("file", type=Path, help="CSV, JSON Lines (.jsonl), .npy or text")
    analyze.add_argument(
        "--column", help=f"column or key to read (default: {_DEFAULT_COLUMN!r}, else the first)"
    )
    analyze.add_argument(
        "--window", type=int, help="run the monitor with this window; report its last α"
    )
    analyze.add_argument("--plot", type=Path, metavar="OUT.png", help="save a figure there")
    analyze.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        series = read_series(args.file, args.column)
        report = _analyze(series, args.window, args.plot)
    except (InputError, OSError, ValueError, TypeError, ImportError) as exc:
        sys.stderr.write(f"wcdfa: error: {exc}\n")
        return 2
    sys.stdout.write((json.dumps(report) if args.json else _format(report)) + "\n")
    return 0


def read_series(path: Path, column: str | None = None) -> NDArray[np.float64]:
    """Read a 1-D numeric series from ``path`` (format from the suffix)."""
    if not path.is_file():
        msg = f"no such file: {path}"
        raise InputError(msg)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        data = np.load(path, allow_pickle=False)
        if data.ndim != 1 or data.dtype.kind not in "iuf":
            msg = f"{path}: expected a 1-D numeric array, got {data.dtype} of shape {data.shape}"
            raise InputError(msg)
        out: NDArray[np.float64] = data.astype(np.float64)
        return out
    if suffix == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return _column(rows, column, path)
    if suffix in (".jsonl", ".ndjson"):
        records = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    msg = f"{path}:{number}: not JSON ({exc.msg})"
                    raise InputError(msg) from None
        if records and not isinstance(records[0], dict):
            return _numbers(records, path)
        return _column(records, column, path)
    return _numbers(path.read_text().split(), path)


def _column(rows: list[Any], column: str | None, path: Path) -> NDArray[np.float64]:
    if not rows or not isinstance(rows[0], dict):
        msg = f"{path}: no rows with named columns"
        raise InputError(msg)
    names = list(rows[0])
    if column is None:
        column = _DEFAULT_COLUMN if _DEFAULT_COLUMN in names else names[0]
    elif column not in names:
        msg = f"{path}: no column {column!r} (columns: {', '.join(names)})"
        raise InputError(msg)
    values = [row.get(column) for row in rows]
    return _numbers([v for v in values if v not in (None, "")], path, column)


def _numbers(values: list[Any], path: Path, column: str | None = None) -> NDArray[np.float64]:
    out = np.empty(len(values))
    where = f" column {column!r}" if column else ""
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            msg = f"{path}{where}: value {i + 1} is not a number: {v!r}"
            raise InputError(msg) from None
    return out


def _analyze(series: NDArray[np.float64], window: int | None, plot: Path | None) -> dict[str, Any]:
    if window is None:
        result = dfa(series)
        report = {"n": result.n, "alpha": result.alpha, "r_squared": result.r_squared,
                  "ci_low": result.ci_low, "ci_high": result.ci_high,
                  "regime": WeightChangeDFA.classify_alpha(result.alpha)}
        if plot is not None:
            from wcdfa.plotting import plot_fluctuations  # noqa: PLC0415

            plot_fluctuations(result, save_path=plot)
        return report
    monitor = WeightChangeDFA(window=window)
    finite = np.isfinite(series)
    if not finite.all():
        msg = f"the series has {np.count_nonzero(~finite)} NaN or Inf values"
        raise InputError(msg)
    for value in series.tolist():
        monitor.update(value)
    if monitor.alpha is None:
        msg = f"series of {series.size} samples is shorter than the window of {window}"
        raise InputError(msg)
    low, high = monitor.alpha_ci or (math.nan, math.nan)
    if plot is not None:
        monitor.plot(save_path=plot, show=False)
    history = np.array(monitor.history)
    return {
        "n": int(series.size), "window": window, "alpha": monitor.alpha,
        "r_squared": monitor.r_squared, "ci_low": low, "ci_high": high,
        "regime": monitor.regime, "alphas_computed": int(history.size),
        "share_ordered": float(np.mean(history > monitor.ordered_threshold)),
        "share_disordered": float(np.mean(history < monitor.disordered_threshold)),
    }


def _format(report: dict[str, Any]) -> str:
    head = f"n={report['n']}" + (f" window={report['window']}" if "window" in report else "")
    lines = [
        head,
        f"alpha      {report['alpha']:.4f}  "
        f"95% CI [{report['ci_low']:.3f}, {report['ci_high']:.3f}]",
        f"R^2        {report['r_squared']:.4f}",
        f"regime     {report['regime']}",
    ]
    if "alphas_computed" in report:
        lines.append(
            f"history    {report['alphas_computed']} alphas, "
            f"{report['share_ordered']:.0%} ordered, {report['share_disordered']:.0%} disordered"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
