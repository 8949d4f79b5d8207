"""``wcdfa analyze FILE``: DFA of a recorded ‖ΔW‖ series from the command line.

Reads CSV, JSON Lines, ``.npy`` or plain text; prints α, R², the regime and the
confidence interval (``--json`` for a machine-readable line). Any problem with the
input is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import array
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
from wcdfa.layouts import LAYOUTS
from wcdfa.monitor import WeightChangeDFA
from wcdfa.regime import classify

__all__ = ["main"]


class InputError(Exception):
    """A problem with the user's input, reported as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="wcdfa",
        description="DFA of a recorded ‖ΔW‖ series: α, R², the regime and its interval.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wcdfa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    analyze = sub.add_parser(
        "analyze",
        help="DFA of a series stored in a file",
        description="Read a series from FILE and print α, R², the regime and the 95 % interval.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    analyze.add_argument("file", type=Path, help="CSV, JSON Lines (.jsonl), .npy or text")
    analyze.add_argument(
        "--column",
        help=f"column or key to read (default: {' or '.join(NORM_COLUMNS)}, or "
        "the only column; anything else must be named)",
    )
    analyze.add_argument(
        "--window", type=int, help="run the monitor with this window; report its last α"
    )
    analyze.add_argument(
        "--scales",
        type=int,
        nargs="+",
        metavar="S",
        help="explicit box sizes (default: 20 log-spaced from 4 to n/4)",
    )
    analyze.add_argument(
        "--boxes", choices=LAYOUTS, default="both", help="box layout (see docs/validation.md)"
    )
    analyze.add_argument("--plot", type=Path, metavar="OUT.png", help="save a figure there")
    analyze.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        series, column = read_series(args.file, args.column)
        boxes = {"scales": args.scales, "boxes": args.boxes}
        report = _analyze(series, args.window, args.plot, boxes)
    except (InputError, OSError, ValueError, TypeError, ImportError, MemoryError) as exc:
        sys.stderr.write(f"wcdfa: error: {exc}\n")
        return 2
    if column is not None:
        report = {"column": column, **report}
    if args.json:  # strict JSON: a bound beyond the calibrated range is null, not NaN
        nulls = {
            k: None if isinstance(v, float) and math.isnan(v) else v for k, v in report.items()
        }
        sys.stdout.write(json.dumps(nulls) + "\n")
    else:
        sys.stdout.write(_format(report) + "\n")
    return 0


def read_series(path: Path, column: str | None = None) -> tuple[NDArray[np.float64], str | None]:
    """Read a 1-D numeric series from ``path`` (format from the suffix), streaming.

    Returns the series and the column it came from (``None`` for .npy and text).
    Every problem with the file is an :class:`InputError` naming the file and where.
    """
    if not path.is_file():
        msg = f"no such file: {path}"
        raise InputError(msg)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return _read_npy(path), None
        if suffix == ".csv":
            return _read_csv(path, column)
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path, column)
        return _read_text(path), None
    except UnicodeDecodeError:
        msg = f"{path}: not a text file (expected {suffix or 'text'} data)"
        raise InputError(msg) from None


def _read_npy(path: Path) -> NDArray[np.float64]:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)  # the header is checked
    except (ValueError, EOFError, OSError) as exc:  # against the file size, not trusted
        msg = f"{path}: not a readable .npy array ({exc or type(exc).__name__})"
        raise InputError(msg) from None
    if not isinstance(data, np.ndarray):  # an .npz renamed .npy
        msg = f"{path}: not a single .npy array"
        raise InputError(msg)
    if data.ndim != 1 or data.dtype.kind not in "iuf":
        msg = f"{path}: expected a 1-D numeric array, got {data.dtype} of shape {data.shape}"
        raise InputError(msg)
    return np.array(data, dtype=np.float64)


def _read_csv(path: Path, column: str | None) -> tuple[NDArray[np.float64], str]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        try:
            names = next(reader, None)
            if not names:
                msg = f"{path}: no header row with column names"
                raise InputError(msg)
            name = _choose_column([n.strip() for n in names], column, path)
            index = [n.strip() for n in names].index(name)
            out = array.array("d")
            for row in reader:
                if len(row) > index and row[index].strip():
                    out.append(_number(row[index], path, reader.line_num, name))
        except csv.Error as exc:
            msg = f"{path}:{reader.line_num}: not valid CSV ({exc})"
            raise InputError(msg) from None
    return np.frombuffer(out, dtype=np.float64).copy(), name


def _read_jsonl(path: Path, column: str | None) -> tuple[NDArray[np.float64], str | None]:
    out = array.array("d")
    name: str | None = None
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError, ValueError) as exc:
                msg = f"{path}:{number}: not a JSON value ({str(exc)[:80]})"
                raise InputError(msg) from None
            if isinstance(record, dict):
                if name is None:
                    name = _choose_column(list(record), column, path)
                value = record.get(name)
                if value is not None and value != "":
                    out.append(_number(value, path, number, name))
            elif name is None and column is None and not isinstance(record, (list, str)):
                out.append(_number(record, path, number))
            else:
                msg = f"{path}:{number}: expected an object with named fields, got {record!r:.40}"
                raise InputError(msg)
    return np.frombuffer(out, dtype=np.float64).copy(), name


def _read_text(path: Path) -> NDArray[np.float64]:
    out = array.array("d")
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            for token in line.split():
                out.append(_number(token, path, number))
    return np.frombuffer(out, dtype=np.float64).copy()


NORM_COLUMNS = ("delta_norm", "delta_norm_per_lr")
"""Columns that hold the recorded quantity (``save`` writes one of them)."""


def _choose_column(names: list[str], column: str | None, path: Path) -> str:
    """Return the column to read: the named one, a norm column, or the only column."""
    if column is not None:
        if column not in names:
            msg = f"{path}: no column {column!r} (columns: {', '.join(names)})"
            raise InputError(msg)
        return column
    found = [n for n in NORM_COLUMNS if n in names]
    if len(found) == 1:
        return found[0]
    if len(names) == 1:
        return names[0]
    msg = (
        f"{path}: which column holds the series? None is called "
        f"{' or '.join(NORM_COLUMNS)}; name one with --column (columns: {', '.join(names)})"
    )
    raise InputError(msg)


def _number(value: Any, path: Path, line: int, column: str | None = None) -> float:
    where = f" column {column!r}" if column else ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        msg = f"{path}:{line}{where}: not a number: {value!r:.40}"
        raise InputError(msg)
    try:
        return float(value)
    except (TypeError, ValueError):
        msg = f"{path}:{line}{where}: not a number: {value!r:.40}"
        raise InputError(msg) from None
    except OverflowError:  # an integer beyond float64
        msg = f"{path}:{line}{where}: a number beyond float64 ({str(value)[:20]}...)"
        raise InputError(msg) from None


def _analyze(
    series: NDArray[np.float64], window: int | None, plot: Path | None, boxes: dict[str, Any]
) -> dict[str, Any]:
    if window is None:
        result = dfa(series, **boxes)
        report = {
            "n": result.n,
            "alpha": result.alpha,
            "r_squared": result.r_squared,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "in_range": result.in_range,
            "regime": classify(result.alpha),
        }
        if plot is not None:
            from wcdfa.plotting import plot_fluctuations  # noqa: PLC0415

            plot_fluctuations(result, save_path=plot)
        return report
    if window > series.size:
        msg = f"series of {series.size} samples is shorter than the window of {window}"
        raise InputError(msg)
    monitor = WeightChangeDFA(window=window, **boxes)
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
        "n": int(series.size),
        "window": window,
        "alpha": monitor.alpha,
        "r_squared": monitor.r_squared,
        "ci_low": low,
        "ci_high": high,
        "regime": monitor.regime,
        "alphas_computed": int(history.size),
        "share_ordered": float(np.mean(history > monitor.ordered_threshold)),
        "share_disordered": float(np.mean(history < monitor.disordered_threshold)),
    }


def _format(report: dict[str, Any]) -> str:
    head = f"n={report['n']}" + (f" window={report['window']}" if "window" in report else "")
    if "column" in report:
        head += f" column={report['column']}"
    lines = [
        head,
        f"alpha      {report['alpha']:.4f}  "
        f"95% CI [{report['ci_low']:.3f}, {report['ci_high']:.3f}]",
        *(
            []
            if report.get("in_range", True)
            else ["           (nan: that bound lies beyond the calibrated range of alpha)"]
        ),
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
