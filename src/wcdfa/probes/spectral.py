"""SpectralProbe: every layer's heavy-tailed spectral exponent, live, in a TrainingMonitor.

Every ``every`` optimizer steps the probe reads the eigenvalue spectrum of each
analysable weight matrix (:func:`wcdfa.spectral.analyze`'s layers and conventions) on
the parameters' device, with one host transfer of all eigenvalues, and fits each tail.
Under ``torch.distributed`` the layers are spread over the ranks and the eigenvalues
combined with one all-reduce (see :mod:`wcdfa.spectral.analysis`); every rank must run
it, which a monitor attached on every rank does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from wcdfa._checks import check_choice, check_int, check_real
from wcdfa.probes.base import Event, ModelProbe, check_name, load_history
from wcdfa.spectral.esd import OVER_TRAINED, UNDER_TRAINED, SpectralAnalysis

__all__ = ["SpectralProbe"]

STATE_FORMAT = "wcdfa.spectral/1"
RECORDED = (
    "alpha",
    "alpha_hat",
    "xmin",
    "D",
    "sigma",
    "num_tail",
    "num_evals",
    "log_norm",
    "log_spectral_norm",
    "stable_rank",
    "entropy",
    "detx_num",
)
"""The quantities kept per layer and reading in :attr:`SpectralProbe.history`."""

_MEANS = ("alpha_hat", "log_norm", "log_spectral_norm", "stable_rank", "entropy")


class SpectralProbe(ModelProbe):
    """Per-layer spectral α (HTSR) every ``every`` steps, with band-crossing events.

    Parameters
    ----------
    every : int, default 1000
        Optimizer steps between readings.
    layers : sequence of str or type, optional
        Only these module names or module types (default: every analysable layer).
    min_evals : int, default 20
        Skip matrices with fewer eigenvalues (below 20 the fit is the small-sample
        one, much less reliable); ``max_evals`` and ``max_N`` as in ``analyze``.
    detx, attention, dtype, method
        As in :func:`wcdfa.spectral.analyze`.
    bounds : (float, float), default (2.0, 6.0)
        α below the first is over-trained, above the second under-trained.
    name : str, default "spectral"
        The metrics prefix.

    Notes
    -----
    Metrics: ``<name>/alpha/<layer>`` and ``<name>/alpha_hat/<layer>`` per layer;
    ``<name>/alpha_mean``, ``<name>/alpha_weighted`` (mean α̂), the means of
    ``log_norm``, ``log_spectral_norm``, ``stable_rank`` and ``entropy``; the counts
    ``<name>/over_trained``, ``<name>/under_trained`` and ``<name>/layers``.
    Non-finite values are left out. Events (``detail`` has the layer and its α):
    ``over_trained`` / ``under_trained`` when a layer's α leaves the band (also at the
    first reading), ``in_band`` when it comes back, ``fit_failed`` when a layer's fit
    fails (once until it succeeds again).

    Examples
    --------
    >>> import torch
    >>> from wcdfa import TrainingMonitor
    >>> from wcdfa.probes import SpectralProbe
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 8))
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> monitor = TrainingMonitor(model, [SpectralProbe(every=5)])
    >>> _ = monitor.attach(optimizer)
    >>> for _ in range(10):
    ...     optimizer.zero_grad()
    ...     model(torch.randn(16, 32)).pow(2).mean().backward()
    ...     optimizer.step()
    >>> [step for step, _ in monitor["spectral"].history]
    [5, 10]
    >>> sorted(k for k in monitor.metrics() if "/alpha/" in k)
    ['spectral/alpha/0']
    """

    def __init__(
        self,
        every: int = 1000,
        layers: Sequence[Any] | None = None,
        min_evals: int = 20,
        max_evals: int = 15000,
        max_N: int = 50000,
        *,
        detx: bool = True,
        attention: bool = True,
        bounds: tuple[float, float] = (OVER_TRAINED, UNDER_TRAINED),
        dtype: Any = None,
        method: str = "gram",
        name: str = "spectral",
    ) -> None:
        from wcdfa.spectral.analysis import METHODS  # noqa: PLC0415 - numpy-only module

        self.every = check_int("every", every, 1)
        self.layers = None if layers is None else list(layers)
        self.min_evals = check_int("min_evals", min_evals, 1)
        self.max_evals = check_int("max_evals", max_evals, self.min_evals)
        self.max_N = check_int("max_N", max_N, 1)
        low, high = (check_real("bounds[0]", bounds[0]), check_real("bounds[1]", bounds[1]))
        if not low < high:
            msg = f"Argument `bounds` must be (low, high) with low < high, but got {bounds!r}"
            raise ValueError(msg)
        self.bounds = (low, high)
        self.detx, self.attention = bool(detx), bool(attention)
        self.dtype = dtype
        self.method = check_choice("method", method, METHODS)
        self.name = check_name(name)
        self._history: list[tuple[int, dict[str, dict[str, float]]]] = []
        self._events: list[Event] = []
        self._band: dict[str, str] = {}  # layer -> "in", "over", "under" or "failed"
        self.latest: SpectralAnalysis | None = None
        """The last reading in full (eigenvalues included); None after a resume."""

    # ------------------------------------------------------------------ probe
    @property
    def history(self) -> list[tuple[int, dict[str, dict[str, float]]]]:
        """``(step, {layer: {quantity: value}})`` per reading, oldest first (:data:`RECORDED`)."""
        return self._history

    def observe(self, model: Any, step: int) -> SpectralAnalysis:
        """Read ``model`` now as the reading of ``step`` (outside a TrainingMonitor)."""
        from wcdfa.spectral.analysis import measure_layers  # noqa: PLC0415 - torch here
        from wcdfa.spectral.layers import find_layers  # noqa: PLC0415

        found = find_layers(
            model,
            self.layers,
            min_evals=self.min_evals,
            max_evals=self.max_evals,
            max_N=self.max_N,
            attention=self.attention,
        )
        records = measure_layers(
            found,
            detx=self.detx,
            bounds=self.bounds,
            dtype=self.dtype,
            method=self.method,
            spread=True,
        )
        analysis = SpectralAnalysis(tuple(records))
        reading = {r.name: {q: float(getattr(r, q)) for q in RECORDED} for r in records}
        for record in records:
            self._check_band(step, record.name, record.alpha, record.warning)
        self._history.append((int(step), reading))
        self.latest = analysis
        return analysis

    def _check_band(self, step: int, layer: str, alpha: float, warning: str) -> None:
        if not math.isfinite(alpha):
            if self._band.get(layer) != "failed":
                detail = {"layer": layer, "reason": warning}
                self._events.append(Event(step, self.name, "fit_failed", detail))
            self._band[layer] = "failed"
            return
        low, high = self.bounds
        band = "over" if alpha < low else "under" if alpha > high else "in"
        before = self._band.get(layer)
        self._band[layer] = band
        if band == before or (band == "in" and before in (None, "failed")):
            return
        kind = {"over": "over_trained", "under": "under_trained", "in": "in_band"}[band]
        self._events.append(Event(step, self.name, kind, {"layer": layer, "alpha": alpha}))

    def metrics(self) -> dict[str, float]:
        """Return the latest reading's metrics (see the class notes)."""
        if not self._history:
            return {}
        reading = self._history[-1][1]
        out: dict[str, float] = {}
        for layer, values in reading.items():
            for quantity in ("alpha", "alpha_hat"):
                value = values[quantity]
                if math.isfinite(value):
                    out[f"{self.name}/{quantity}/{layer}"] = float(value)
        alphas = np.array([v["alpha"] for v in reading.values()], dtype=float)
        finite = alphas[np.isfinite(alphas)]
        low, high = self.bounds
        means = {"alpha_mean": finite.mean() if finite.size else math.nan}
        for quantity in _MEANS:
            column = np.array([v[quantity] for v in reading.values()], dtype=float)
            column = column[np.isfinite(column)]
            key = "alpha_weighted" if quantity == "alpha_hat" else quantity
            means[key] = column.mean() if column.size else math.nan
        out.update({f"{self.name}/{k}": float(v) for k, v in means.items() if math.isfinite(v)})
        out[f"{self.name}/over_trained"] = float(np.count_nonzero(finite < low))
        out[f"{self.name}/under_trained"] = float(np.count_nonzero(finite > high))
        out[f"{self.name}/layers"] = float(len(reading))
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Return the history, events and band of every layer as plain Python values."""
        return {
            "format": STATE_FORMAT,
            "bounds": list(self.bounds),
            "history": [[step, reading] for step, reading in self._history],
            "events": [e.as_dict() for e in self._events],
            "band": dict(self._band),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (all of it is checked before anything changes)."""
        history = load_history(
            state,
            STATE_FORMAT,
            lambda r: all(isinstance(v, dict) and set(RECORDED) <= set(v) for v in r.values()),
        )
        events = [Event.from_dict(e) for e in state.get("events", [])]
        band = state.get("band", {})
        if not isinstance(band, dict):
            msg = f"Argument `state` field 'band' must be a dict, but got {band!r:.80}"
            raise ValueError(msg)
        self._history, self._events, self._band = history, events, dict(band)
        self.latest = None

    # ------------------------------------------------------------------ output
    def alpha_history(self) -> tuple[list[int], list[str], np.ndarray]:
        """Return ``(steps, layers, alphas)``: α of each layer (rows) at each reading.

        NaN where a layer was not read.
        """
        steps = [step for step, _ in self._history]
        layers: list[str] = []
        for _, reading in self._history:
            layers += [name for name in reading if name not in layers]
        alphas = np.full((len(layers), len(steps)), np.nan)
        for j, (_, reading) in enumerate(self._history):
            for i, layer in enumerate(layers):
                if layer in reading:
                    alphas[i, j] = reading[layer]["alpha"]
        return steps, layers, alphas

    def plot(self, ax: Any = None, save_path: Any = None, show: bool = False) -> tuple[Any, Any]:
        """Per-layer α over the readings as a heat map (see ``plot_layer_alphas``).

        Returns ``(fig, ax)``.

        Raises
        ------
        ValueError
            Before the first reading.
        """
        from wcdfa.spectral.plots import plot_layer_alphas  # noqa: PLC0415 - matplotlib

        if not self._history:
            msg = f"SpectralProbe {self.name!r} has no reading to plot yet"
            raise ValueError(msg)
        steps, layers, alphas = self.alpha_history()
        return plot_layer_alphas(
            steps, layers, alphas, bounds=self.bounds, ax=ax, save_path=save_path, show=show
        )

    def plot_esd(
        self, layer: str, ax: Any = None, save_path: Any = None, show: bool = False
    ) -> tuple[Any, Any]:
        """One layer's ESD of the latest reading, with its fitted tail; ``(fig, ax)``."""
        from wcdfa.spectral.plots import plot_esd  # noqa: PLC0415 - matplotlib

        if self.latest is None:
            msg = (
                f"SpectralProbe {self.name!r} holds no eigenvalues "
                "(no reading since it started or resumed)"
            )
            raise ValueError(msg)
        record = self.latest[layer]
        return plot_esd(
            record.evals,
            xmin=record.xmin,
            alpha=record.alpha,
            title=f"{layer} at step {self._history[-1][0]}",
            ax=ax,
            save_path=save_path,
            show=show,
        )

    def describe(self) -> str:
        """One sentence on the latest reading."""
        if not self._history:
            return "No spectral reading yet."
        step, reading = self._history[-1]
        m = self.metrics()
        mean = m.get(f"{self.name}/alpha_mean", math.nan)
        return (
            f"At step {step}, {len(reading)} layer(s) read: mean α {mean:.2f}; "
            f"{int(m[f'{self.name}/over_trained'])} below {self.bounds[0]:g} (over-trained), "
            f"{int(m[f'{self.name}/under_trained'])} above {self.bounds[1]:g} (under-trained)."
        )

    def __repr__(self) -> str:
        return f"SpectralProbe(every={self.every}, layers={self.layers!r}, name={self.name!r})"
