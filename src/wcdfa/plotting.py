"""matplotlib figures of the monitors' results. Figures are returned, never forced.

Every function takes ``ax=`` to draw into an existing axes, returns the Figure, and
shows it only when asked and when matplotlib's backend is interactive, so a script or
a CI job never blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._imports import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from wcdfa.analysis import DFAResult

__all__ = ["plot_alpha", "plot_fluctuations"]

_COLORS = {"ordered": "#D85A30", "critical": "#1D9E75", "disordered": "#378ADD"}
_ALPHA_COLOR = "#534AB7"


def plot_alpha(
    x: NDArray[Any],
    alphas: NDArray[np.float64],
    thresholds: tuple[float, float],
    *,
    norms: NDArray[np.float64] | None = None,
    norm_steps: NDArray[Any] | None = None,
    xlabel: str = "step",
    title: str = "Weight-change DFA",
    ax: Axes | None = None,
    save_path: Any = None,
    show: bool = False,
) -> Figure:
    """α against steps (or epochs) over the regime bands; ‖ΔW‖ in a second panel.

    Parameters
    ----------
    x, alphas : numpy.ndarray
        Where each α was computed, and the α (NaN where none existed: not drawn).
    thresholds : tuple of float
        ``(ordered, disordered)``.
    norms, norm_steps : numpy.ndarray, optional
        ‖ΔW‖ samples and their steps, drawn in a panel below (not with ``ax``).
    xlabel, title : str
        Axis label and title.
    ax : matplotlib.axes.Axes, optional
        Draw the α panel there instead of in a new figure.
    save_path : str or path-like, optional
        Also save the figure there.
    show : bool, default False
        Show it if the backend is interactive.

    Returns
    -------
    matplotlib.figure.Figure
    """
    with_norms = ax is None and norms is not None and norms.size > 0
    if ax is None:
        new = new_figure(show, (10, 6.5 if with_norms else 4))
        if with_norms:
            # one x axis only when both panels count steps
            ax, ax_norm = new.subplots(2, 1, sharex=norm_steps is not None, height_ratios=[3, 2])
        else:
            ax = new.add_subplot()
    fig: Any = ax.figure
    ordered, disordered = thresholds
    valid = np.isfinite(alphas)
    top = max(ordered + 0.5, float(np.max(alphas[valid], initial=0.0)) + 0.1)
    bottom = min(disordered - 0.5, float(np.min(alphas[valid], initial=2.0)) - 0.1)
    ax.axhspan(ordered, top, color=_COLORS["ordered"], alpha=0.07, label="ordered")
    ax.axhspan(disordered, ordered, color=_COLORS["critical"], alpha=0.1, label="critical")
    ax.axhspan(bottom, disordered, color=_COLORS["disordered"], alpha=0.07, label="disordered")
    ax.axhline(ordered, color=_COLORS["ordered"], linestyle=":", linewidth=1)
    ax.axhline(disordered, color=_COLORS["disordered"], linestyle=":", linewidth=1)
    ax.plot(
        x[valid], alphas[valid], ".-", markersize=3, linewidth=0.8, color=_ALPHA_COLOR, label="α"
    )
    ax.set_ylim(bottom, top)
    ax.xaxis.set_major_locator(require("matplotlib.ticker").MaxNLocator(integer=True))
    ax.set_ylabel("weight-change DFA α")
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncol=4)
    if with_norms and norms is not None:
        steps = np.arange(norms.size) if norm_steps is None else norm_steps
        ax_norm.plot(steps, norms, linewidth=0.6, color="#444444")
        ax_norm.xaxis.set_major_locator(require("matplotlib.ticker").MaxNLocator(integer=True))
        ax_norm.set_ylabel("‖ΔW‖ (window)")
        ax_norm.set_xlabel(xlabel if norm_steps is not None else "sample in the window")
        if norm_steps is None:
            ax.set_xlabel(xlabel)
    else:
        ax.set_xlabel(xlabel)
    return finish(fig, save_path, show)


def plot_fluctuations(
    result: DFAResult,
    *,
    title: str = "DFA fluctuation function",
    ax: Axes | None = None,
    save_path: Any = None,
    show: bool = False,
) -> Figure:
    """Log-log F(s) against the box size s, with the fitted line of slope α.

    Parameters
    ----------
    result : DFAResult
        From :func:`wcdfa.dfa` or a monitor's :attr:`result`.
    title : str
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Draw there instead of in a new figure.
    save_path : str or path-like, optional
        Also save the figure there.
    show : bool, default False
        Show it if the backend is interactive.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        ax = new_figure(show, (5.5, 4.5)).add_subplot()
    fig: Any = ax.figure
    s = result.scales.astype(np.float64)
    label = f"fit: α = {result.alpha:.3f}"
    if np.isfinite(result.ci_low):
        label += f" [{result.ci_low:.2f}, {result.ci_high:.2f}]"
    ax.loglog(s, result.fluctuations, "o", color=_ALPHA_COLOR, label="F(s)")
    ax.loglog(s, 10.0**result.intercept * s**result.alpha, "-", color="#D85A30", label=label)
    ax.set_xlabel("box size s")
    ax.set_ylabel("fluctuation F(s)")
    ax.set_title(f"{title} (R² = {result.r_squared:.3f}, n = {result.n})")
    ax.legend(fontsize=8, frameon=False)
    return finish(fig, save_path, show)


def new_figure(show: bool, size: tuple[float, float]) -> Figure:
    """Return a Figure: pyplot's when it will be shown, else a plain one (no window)."""
    if show and _interactive_backend():
        fig: Figure = require("matplotlib.pyplot").figure(figsize=size)
        return fig
    out: Figure = require("matplotlib.figure").Figure(figsize=size, layout="constrained")
    return out


def finish(fig: Any, save_path: Any, show: bool) -> Figure:
    """Save ``fig`` if asked (folders created), show it if asked and possible; return it."""
    if save_path is not None:
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save_path, dpi=150, bbox_inches="tight")
    if show and _interactive_backend():
        require("matplotlib.pyplot").show()
    out: Figure = fig
    return out


def plot_panels(
    draws: list[Any], *, save_path: Any = None, show: bool = True
) -> tuple[Figure, list[Axes]]:
    """One panel per ``draw(ax)`` callable, stacked on a shared x axis.

    Returns ``(fig, axes)``; saves and shows like the other plots.
    """
    fig = new_figure(show, (10.0, 2.8 * max(1, len(draws))))
    axes = list(fig.subplots(len(draws), 1, sharex=True, squeeze=False)[:, 0])
    for draw, ax in zip(draws, axes, strict=True):
        draw(ax)
    return finish(fig, save_path, show), axes


def _interactive_backend() -> bool:
    matplotlib = require("matplotlib")
    backends = require("matplotlib.backends")
    backend = str(matplotlib.get_backend()).lower()
    filt = backends.BackendFilter.NON_INTERACTIVE
    non_interactive = set(backends.backend_registry.list_builtin(filt))
    return backend not in non_interactive and "inline" not in backend
