"""What a monitor shows: metrics, text, exports, plots and sink calls, from its public API.

:class:`MonitorOutput` is mixed into :class:`wcdfa.WeightChangeDFA`; it reads only
the monitor's public properties and methods, so the numbers it shows are the ones a
user can read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa import regime as _regime
from wcdfa._dist import rank
from wcdfa.export import add_tags, build_rows, check_path, write_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from wcdfa.analysis import DFAResult

__all__ = ["MonitorOutput"]


class MonitorOutput:
    """Output methods of a monitor, built on its public API only."""

    # the public API this mixin reads, provided by the monitor
    window: int
    ci: float | None
    normalize: str | None

    if TYPE_CHECKING:

        @property
        def alpha(self) -> float | None: ...

        @property
        def regime(self) -> str | None: ...

        @property
        def thresholds(self) -> tuple[float, float]: ...

        @property
        def alpha_ci(self) -> tuple[float, float] | None: ...

        @property
        def r_squared(self) -> float | None: ...

        @property
        def result(self) -> DFAResult | None: ...

        @property
        def history(self) -> list[float]: ...

        @property
        def history_steps(self) -> list[int]: ...

        @property
        def group_alphas(self) -> dict[str, float | None]: ...

        @property
        def n_samples(self) -> int: ...

        @property
        def step_count(self) -> int: ...

        @property
        def method_in_use(self) -> str | None: ...

        @property
        def alpha_clean(self) -> float | None: ...

        @property
        def alpha_clean_history(self) -> list[float]: ...

        @property
        def alpha_clean_steps(self) -> list[int]: ...

        @property
        def tagged(self) -> bool: ...

        @property
        def tagged_steps(self) -> dict[str, list[int]]: ...

    def get_signal(self) -> NDArray[np.float64]:
        raise NotImplementedError

    def get_norm_record(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        raise NotImplementedError

    @property
    def norm_name(self) -> str:
        """Name of the recorded quantity: ``delta_norm``, or ``delta_norm_per_lr``."""
        return "delta_norm_per_lr" if self.normalize == "lr" else "delta_norm"

    def metrics(self, prefix: str = "wcdfa/") -> dict[str, float]:
        """Return the numbers every sink logs, keyed ``prefix + name``.

        ``delta_norm`` (the latest ‖ΔW‖; ``delta_norm_per_lr`` under
        ``normalize="lr"``, since it is then ‖ΔW‖ / lr) is there once a sample exists;
        ``alpha``, ``regime`` (2 ordered, 1 critical, 0 disordered), ``r_squared`` and
        the interval ``alpha_ci_low`` / ``alpha_ci_high`` once α exists (a bound beyond
        the calibrated range of α is left out). Reading it
        fetches pending device norms (one transfer): call it when you log, not every
        step. It never raises for recorded data (no rank leaves the loop alone).
        """
        out: dict[str, float] = {}
        signal = self.get_signal()
        if signal.size:
            out[prefix + self.norm_name] = float(signal[-1])
        alpha = self.alpha
        if alpha is not None:
            out[prefix + "alpha"] = alpha
            out[prefix + "regime"] = float(
                _regime.REGIME_CODES[_regime.classify(alpha, self.thresholds)]
            )
            out[prefix + "r_squared"] = float(self.r_squared or 0.0)
            ci = self.alpha_ci
            for key, bound in zip(("alpha_ci_low", "alpha_ci_high"), ci or (), strict=True):
                if not math.isnan(bound):  # beyond the calibrated range: not logged
                    out[prefix + key] = bound
            for name, group_alpha in self.group_alphas.items():
                if group_alpha is not None:
                    out[f"{prefix}alpha/{name}"] = group_alpha
        clean = self.alpha_clean
        if clean is not None and self.tagged:
            out[prefix + "alpha_clean"] = clean
        return out

    def postfix(self) -> dict[str, str]:
        """Return a compact dict for ``tqdm.set_postfix``: α and the regime."""
        alpha = self.alpha
        if alpha is None:
            return {"α": self._not_ready()}
        return {"α": f"{alpha:.3f}", "regime": str(self.regime)}

    def _not_ready(self) -> str:
        """Why there is no α yet, in a few words."""
        if self.n_samples >= self.window:
            return f"constant window ({self.window} samples)"
        return f"{self.n_samples}/{self.window} samples"

    def save(self, path: Any) -> Path:
        """Write the per-step ‖ΔW‖ and the α history as CSV or JSON Lines.

        One row per step with a known norm (the window's, or the whole run's with
        ``keep_norms=True``; non-finite ones as ``nan``/``inf``) and per step with an
        α: columns ``step``, ``delta_norm`` (``delta_norm_per_lr`` under
        ``normalize="lr"``), ``alpha``, ``alpha_ci_low``, ``alpha_ci_high`` (each α's
        own interval: for every α with the default box settings, otherwise for the
        current α only), ``regime``, and once a step was tagged (:meth:`mark`)
        ``tag`` and ``alpha_clean``; empty (CSV) or null (JSON) where unknown. The
        file is replaced atomically: a failed save leaves the previous file whole.

        Parameters
        ----------
        path : str or path-like
            ``.csv``, ``.jsonl`` or ``.ndjson``; missing folders are created.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        ValueError
            For another suffix.
        OSError
            If the file cannot be written (the message names it; the previous file
            is unchanged).
        """
        check_path(path)
        return write_rows(path, self._rows())

    def _rows(self) -> list[dict[str, Any]]:
        steps, values = self.get_norm_record()
        alphas = self.history
        intervals: list[tuple[float, float] | None] = [None] * len(alphas)
        if alphas and self.ci is not None and self.result is not None:
            from wcdfa.uncertainty import confidence_interval, has_table  # noqa: PLC0415

            r = self.result
            table = (r.min_box, r.max_box, r.num_scales, r.order, r.aggregate, r.box_sizes)
            if has_table(*table, r.boxes, r.n):
                low, high = confidence_interval(
                    np.array(alphas),
                    r.n,
                    self.ci,
                    min_box=r.min_box,
                    max_box=r.max_box,
                    num_scales=r.num_scales,
                    order=r.order,
                    aggregate=r.aggregate,
                    scales=r.box_sizes,
                    boxes=r.boxes,
                )
                intervals = list(zip(low.tolist(), high.tolist(), strict=True))
            else:
                intervals[-1] = self.alpha_ci
        rows = build_rows(
            zip(steps.tolist(), values.tolist(), strict=True),
            [
                (k, a, _regime.classify(a, self.thresholds))
                for k, a in zip(self.history_steps, alphas, strict=True)
            ],
            intervals,
            self.norm_name,
        )
        if self.tagged:
            add_tags(rows, self.tagged_steps, self.alpha_clean_steps, self.alpha_clean_history)
        return rows

    def describe(self) -> str:
        """Say in a sentence what the current α means for this run, and how sure it is.

        The regime and what it means, whether the interval lies inside that regime's
        band or reaches across a threshold, and whether the log-log fit is clean.
        """
        alpha = self.alpha
        if alpha is None:
            return f"No α yet ({self._not_ready()})."
        regime = _regime.classify(alpha, self.thresholds)
        meaning = {
            _regime.ORDERED: "the updates are too regular: the model is sealing rigidly",
            _regime.CRITICAL: "1/f-like updates: robust and flexible",
            _regime.DISORDERED: "the updates are too noisy: it cannot consolidate",
        }[regime]
        sentence = f"α = {alpha:.2f} puts training in the {regime} regime ({meaning})"
        ci = self.alpha_ci
        if ci is not None:
            low, high = ci
            across = [t for t in self.thresholds if low < t < high]
            level = f"{self.ci:.0%}"
            if across:
                sentence += (
                    f"; not settled: its {level} interval [{low:.2f}, {high:.2f}] reaches "
                    f"across {' and '.join(f'{t:g}' for t in across)}"
                )
            else:
                sentence += f"; clear: its {level} interval [{low:.2f}, {high:.2f}] stays inside"
        r2 = self.r_squared
        if r2 is not None and r2 < 0.9:
            sentence += (
                f"; but the log-log fit is poor (R² = {r2:.2f}): F(s) is no clean power law "
                "in this window, so read α with caution"
            )
        return sentence + "."

    def __str__(self) -> str:
        alpha = self.alpha
        if alpha is None:
            return f"wcdfa: not ready ({self._not_ready()})"
        ci = self.alpha_ci
        interval = "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        return (
            f"wcdfa: α={alpha:.3f}{interval} {self.regime} "
            f"(R²={self.r_squared:.3f}, step {self.step_count})"
        )

    def log_wandb(self, step: int | None = None, *, plot: bool = False) -> None:
        """Log ``wcdfa/alpha`` and ``wcdfa/regime`` (2 ordered, 1 critical, 0 disordered).

        Also ``wcdfa/regime_name``, ``wcdfa/delta_norm``, ``wcdfa/r_squared`` and the
        interval; ``plot=True`` adds the log-log F(s) figure. Warns and does nothing
        when wandb is not installed or no run is active; logs from rank zero only.
        """
        from wcdfa.integrations.wandb import log_metrics  # noqa: PLC0415

        if self.alpha is None:
            return
        figures = None
        if plot and rank() == 0:
            figures = {"wcdfa/fluctuations": self.plot_fluctuations(show=False)}
        log_metrics(
            self.metrics(), step, texts={"wcdfa/regime_name": str(self.regime)}, figures=figures
        )

    def log_tensorboard(self, writer: Any, step: int | None = None) -> None:
        """Write :meth:`metrics` to a TensorBoard ``SummaryWriter`` (rank zero only).

        ``step`` defaults to :attr:`step_count`; the regime also goes in as text.
        """
        from wcdfa.integrations.tensorboard import write_scalars  # noqa: PLC0415

        texts = None if self.regime is None else {"wcdfa/regime_name": self.regime}
        write_scalars(writer, self.metrics(), self.step_count if step is None else step, texts)

    # ------------------------------------------------------------------ plots
    def plot(
        self,
        title: str = "Weight-change DFA",
        save_path: Any = None,
        show: bool = True,
        *,
        ax: Any = None,
    ) -> Figure:
        """Plot α with the regime bands, and the ‖ΔW‖ below (what :meth:`plot_series` gives).

        Parameters
        ----------
        title : str
            Figure title.
        save_path : str or path-like, optional
            Also save the figure there (format from the suffix).
        show : bool, default True
            Show it when matplotlib's backend is interactive; with a non-interactive
            backend (scripts, CI) nothing is shown and nothing blocks.
        ax : matplotlib.axes.Axes, optional
            Keyword-only. Draw the α panel into this axes (no ‖ΔW‖ panel).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from wcdfa.plotting import plot_alpha  # noqa: PLC0415 - matplotlib is optional

        x, alphas, norm_steps, norms, xlabel = self.plot_series()
        return plot_alpha(
            x,
            alphas,
            self.thresholds,
            norms=norms,
            norm_steps=norm_steps,
            xlabel=xlabel,
            title=title,
            ax=ax,
            save_path=save_path,
            show=show,
        )

    def plot_series(self) -> tuple[NDArray[Any], NDArray[np.float64], Any, Any, str]:
        """Return what :meth:`plot` draws: ``(x, alphas, norm_steps, norms, xlabel)``.

        α at the steps it was computed, and every known ‖ΔW‖ at its step.
        """
        norm_steps, norms = self.get_norm_record()
        steps = np.array(self.history_steps, dtype=np.int64)
        return steps, np.array(self.history, dtype=float), norm_steps, norms, "step"

    def plot_fluctuations(
        self, save_path: Any = None, show: bool = True, *, ax: Any = None
    ) -> Figure:
        """Plot the current window's log-log F(s) with the fitted line (see plotting).

        Raises
        ------
        ValueError
            Before the first α.
        """
        from wcdfa.plotting import plot_fluctuations  # noqa: PLC0415

        result = self.result
        if result is None:
            msg = "No fluctuation function yet: the window fills after `window` samples"
            raise ValueError(msg)
        return plot_fluctuations(result, ax=ax, save_path=save_path, show=show)

    def regime_code(self) -> int | None:
        """Return the regime as logged to dashboards: 2 ordered, 1 critical, 0 disordered."""
        regime = self.regime
        return None if regime is None else _regime.REGIME_CODES[regime]

    def _classify(self, alpha: float) -> str:
        return _regime.classify(alpha, self.thresholds)

    @classmethod
    def classify_alpha(
        cls, alpha: float, thresholds: tuple[float, float] = _regime.DEFAULT_THRESHOLDS
    ) -> str:
        """Return the regime of ``alpha`` for ``(ordered, disordered)`` thresholds."""
        return _regime.classify(alpha, thresholds)

    def __repr__(self) -> str:
        name = type(self).__name__
        samples = f"samples={self.n_samples}/{self.window}"
        alpha = self.alpha
        if alpha is None:
            return f"{name}(not ready, {samples})"
        ci = self.alpha_ci
        interval = "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        method = "" if self.method_in_use is None else f", method={self.method_in_use}"
        return f"{name}(α={alpha:.3f}{interval}, regime='{self.regime}', {samples}{method})"
