"""Figures of the spectral readings: per-layer α over training, and one layer's ESD.

Both take ``ax=`` and return ``(fig, ax)``; nothing is shown unless asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from wcdfa._imports import require
from wcdfa.plotting import finish, new_figure
from wcdfa.spectral.esd import OVER_TRAINED, UNDER_TRAINED

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_esd", "plot_layer_alphas"]


def plot_layer_alphas(
    steps: Sequence[int],
    names: Sequence[str],
    alphas: Any,
    *,
    bounds: tuple[float, float] = (OVER_TRAINED, UNDER_TRAINED),
    title: str = "Spectral α per layer",
    ax: Axes | None = None,
    save_path: Any = None,
    show: bool = False,
) -> tuple[Figure, Axes]:
    """Heat map of α: one row per layer, one column per reading.

    ``alphas`` is ``(len(names), len(steps))`` (NaN where a layer had no fit). The
    colour scale is centred on the well-trained band: blue below ``bounds[0]``
    (over-trained), red above ``bounds[1]`` (under-trained).
    """
    values = np.asarray(alphas, dtype=np.float64).reshape(len(names), len(steps))
    if ax is None:
        ax = new_figure(show, (10.0, 1.2 + 0.35 * max(3, len(names)))).add_subplot()
    fig: Any = ax.figure
    colors = require("matplotlib.colors")
    low, high = bounds
    norm = colors.TwoSlopeNorm(vmin=min(1.0, low - 0.5), vcenter=(low + high) / 2, vmax=high + 2)
    x = np.asarray(steps, dtype=np.float64)
    edges = _edges(x)
    mesh = ax.pcolormesh(
        edges,
        np.arange(len(names) + 1),
        np.clip(values, norm.vmin, norm.vmax),
        cmap="coolwarm",
        norm=norm,
        shading="flat",
    )
    ax.set_yticks(np.arange(len(names)) + 0.5, labels=list(names), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("step")
    ax.set_title(title)
    bar = fig.colorbar(mesh, ax=ax, pad=0.01)
    bar.set_label(f"α (well trained: {low:g}-{high:g})")
    for bound in bounds:
        bar.ax.axhline(bound, color="black", linewidth=0.8)
    return finish(fig, save_path, show), ax


def plot_esd(
    evals: Any,
    *,
    xmin: float | None = None,
    alpha: float | None = None,
    title: str = "Empirical spectral density",
    ax: Axes | None = None,
    save_path: Any = None,
    show: bool = False,
) -> tuple[Figure, Axes]:
    r"""Log-log histogram of the eigenvalues, with the fitted power-law tail from ``xmin``.

    The fitted density :math:`(\alpha - 1) x_{min}^{\alpha - 1} \lambda^{-\alpha}` is
    scaled by the fraction of eigenvalues in the tail, so that it overlays the
    histogram of all of them.
    """
    values = np.asarray(evals, dtype=np.float64)
    values = values[values > 1e-5]
    if ax is None:
        ax = new_figure(show, (5.5, 4.5)).add_subplot()
    fig: Any = ax.figure
    if values.size:
        bins = list(np.logspace(np.log10(values.min()), np.log10(values.max()), 60))
        ax.hist(values, bins=bins, density=True, color="#378ADD", alpha=0.6, label="ESD")
    if xmin is not None and alpha is not None and np.isfinite(alpha) and values.size:
        tail = values[values >= xmin]
        grid = np.logspace(np.log10(xmin), np.log10(values.max()), 50)
        density = (alpha - 1) * xmin ** (alpha - 1) * grid ** (-alpha) * tail.size / values.size
        ax.plot(grid, density, color="#D85A30", label=f"power law α = {alpha:.2f}")
        ax.axvline(xmin, color="#D85A30", linestyle=":", linewidth=1, label="xmin")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue λ = σ²")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    return finish(fig, save_path, show), ax


def _edges(x: np.ndarray) -> np.ndarray:
    """Cell edges around the reading steps (half-way between neighbours)."""
    if x.size == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
