"""matplotlib figures of the monitors' results. Figures are returned, never forced."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._imports import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_epoch_alphas"]

_COLORS = {"ordered": "#D85A30", "critical": "#1D9E75", "disordered": "#378ADD"}


def plot_epoch_alphas(
    epochs: NDArray[np.int64],
    alphas: NDArray[np.float64],
    thresholds: tuple[float, float],
    *,
    title: str = "Weight-change DFA",
    save_path: Any = None,
    show: bool = False,
) -> Figure:
    """α over epochs, with the critical band shaded and both thresholds drawn.

    Parameters
    ----------
    epochs, alphas : numpy.ndarray
        Epoch numbers and α per epoch (NaN where none existed yet, not drawn).
    thresholds : tuple of float
        ``(ordered, disordered)``.
    title : str
        Axes title.
    save_path : str or path-like, optional
        Also save the figure there.
    show : bool, default False
        Show it if matplotlib's backend is interactive; never blocks otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure_mod = require("matplotlib.figure")
    ordered, disordered = thresholds
    if show and _interactive_backend():
        fig = require("matplotlib.pyplot").figure(figsize=(10, 4))
    else:
        fig = figure_mod.Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    ax.axhspan(disordered, ordered, color=_COLORS["critical"], alpha=0.1, label="critical band")
    ax.axhline(ordered, color=_COLORS["ordered"], linestyle=":", label=f"ordered > {ordered:g}")
    ax.axhline(
        disordered, color=_COLORS["disordered"], linestyle=":", label=f"disordered < {disordered:g}"
    )
    valid = np.isfinite(alphas)
    ax.plot(epochs[valid], alphas[valid], ".", markersize=3, color="#534AB7", label="α")
    ax.set_xlabel("epoch")
    ax.set_ylabel("weight-change DFA α")
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="best")
    fig.tight_layout()
    if save_path is not None:
        fig.savefig(save_path, dpi=150, bbox_inches="tight")
    if show and _interactive_backend():
        require("matplotlib.pyplot").show()
    out: Figure = fig
    return out


def _interactive_backend() -> bool:
    matplotlib = require("matplotlib")
    backends = require("matplotlib.backends")
    backend = str(matplotlib.get_backend()).lower()
    filt = backends.BackendFilter.NON_INTERACTIVE
    non_interactive = set(backends.backend_registry.list_builtin(filt))
    return backend not in non_interactive and "inline" not in backend
