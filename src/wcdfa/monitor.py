"""The training monitors: a ring buffer of ‖ΔW‖, DFA every ``stride`` updates."""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._checks import SNAPSHOT_MODES, check_choice, check_int, check_real
from wcdfa.dfa import _as_signal, _dfa1, _Fit
from wcdfa.errors import DFAFailedWarning, NearConstantWarning

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import Tensor

    from wcdfa.tracking import DeltaTracker

__all__ = ["RollingWeightChangeDFA", "WeightChangeDFA"]

_NEAR_CONSTANT_STD = 1e-12
_REGIME_CODES = {"ordered": 2, "critical": 1, "disordered": 0}


class WeightChangeDFA:
    """Real-time weight-change DFA monitor for a training run.

    Every call of :meth:`update` adds one ‖ΔW‖ sample to a window of the last
    ``window`` samples; once the window is full, DFA is recomputed every ``stride``
    samples and :attr:`alpha` and :attr:`regime` follow.

    Parameters
    ----------
    window : int, default 500
        Samples in the DFA window, at least 50.
    stride : int, optional
        Recompute DFA every ``stride`` samples; defaults to ``max(1, window // 5)``.
    thresholds : tuple of float, default (1.2, 0.8)
        ``(ordered, disordered)``: α above ``ordered`` is *ordered*, below
        ``disordered`` *disordered*, in between (inclusive) *critical*.
    snapshot : {"device", "cpu"}, default "device"
        Keyword-only. Where the one copy of the trainable parameters lives when a
        model is passed to :meth:`update`.

    Raises
    ------
    ValueError
        If ``window < 50``, ``stride < 1`` or ``thresholds`` is not a pair with
        ``ordered > disordered``.

    Examples
    --------
    >>> import numpy as np
    >>> from wcdfa import WeightChangeDFA
    >>> rng = np.random.default_rng(0)
    >>> monitor = WeightChangeDFA(window=200, stride=50)
    >>> for norm in np.abs(rng.standard_normal(400)):
    ...     _ = monitor.update(norm)
    >>> monitor.regime, len(monitor.history)
    ('disordered', 5)
    """

    ORDERED = "ordered"
    CRITICAL = "critical"
    DISORDERED = "disordered"

    def __init__(
        self,
        window: int = 500,
        stride: int | None = None,
        thresholds: tuple[float, float] = (1.2, 0.8),
        *,
        snapshot: str = "device",
    ) -> None:
        self.window = check_int("window", window, 50)
        self.stride = (
            max(1, self.window // 5) if stride is None else check_int("stride", stride, 1)
        )
        self.ordered_threshold, self.disordered_threshold = _check_thresholds(thresholds)
        self.snapshot = check_choice("snapshot", snapshot, SNAPSHOT_MODES)
        self._buffer = np.empty(self.window)
        self._tracker: DeltaTracker | None = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Clear every sample, the α history and the parameter snapshot."""
        self._head = 0  # next write position in the ring buffer
        self._filled = 0  # valid samples in the ring buffer
        self._pending: list[Tensor] = []  # device norms not yet fetched to the host
        self._step_count = 0
        self._alpha: float | None = None
        self._fit: _Fit | None = None
        self._alpha_history: list[float] = []
        if self._tracker is not None:
            self._tracker.reset()

    @property
    def thresholds(self) -> tuple[float, float]:
        """``(ordered, disordered)`` regime boundaries."""
        return self.ordered_threshold, self.disordered_threshold

    @property
    def alpha(self) -> float | None:
        """Current DFA exponent, or ``None`` before the first computation."""
        return self._alpha

    @property
    def regime(self) -> str | None:
        """``'ordered'``, ``'critical'`` or ``'disordered'``; ``None`` before α exists."""
        return None if self._alpha is None else self._classify(self._alpha)

    @property
    def ready(self) -> bool:
        """Whether an α has been computed."""
        return self._alpha is not None

    @property
    def history(self) -> list[float]:
        """Every α computed so far, oldest first."""
        return list(self._alpha_history)

    @property
    def n_samples(self) -> int:
        """Samples currently in the window (at most ``window``)."""
        return min(self.window, self._filled + len(self._pending))

    @property
    def step_count(self) -> int:
        """Samples recorded since construction or the last :meth:`reset`."""
        return self._step_count

    @property
    def r_squared(self) -> float | None:
        """R² of the log-log fit behind the current α, or ``None``."""
        return None if self._fit is None else self._fit.r_squared

    @property
    def scales(self) -> NDArray[np.int64] | None:
        """Box sizes of the current fit, or ``None``."""
        return None if self._fit is None else self._fit.scales

    @property
    def fluctuations(self) -> NDArray[np.float64] | None:
        """F(s) of the current fit, or ``None``."""
        return None if self._fit is None else self._fit.fluctuations

    @property
    def snapshot_bytes(self) -> int:
        """Bytes the monitor holds for the parameter snapshot (0 without a model)."""
        return 0 if self._tracker is None else self._tracker.snapshot_bytes

    def get_signal(self) -> NDArray[np.float64]:
        """Return the window's ‖ΔW‖ samples as a new float64 array, oldest first."""
        self._flush()
        if self._filled < self.window:
            return self._buffer[: self._filled].copy()
        return np.concatenate((self._buffer[self._head :], self._buffer[: self._head]))

    # ---------------------------------------------------------------- updates
    def update(self, model_or_norm: Any) -> WeightChangeDFA:
        """Record one weight update and recompute DFA when it is due.

        Parameters
        ----------
        model_or_norm : torch.nn.Module, float, int, numpy scalar or size-1 array, tensor
            A model: its ‖W_now − W_prev‖ over the parameters with
            ``requires_grad=True`` is recorded (the first call only records the
            baseline). A number: recorded as given. A 0-d or 1-element tensor: kept on
            its device and fetched with the others once per ``stride``.

        Returns
        -------
        WeightChangeDFA
            ``self``, for chaining: ``monitor.update(model).alpha``.

        Raises
        ------
        TypeError
            If ``model_or_norm`` is none of the above.
        ValueError
            If the norm is negative. For a tensor on an accelerator the check waits
            until the batch is fetched (the next ``stride`` boundary), to avoid a
            host synchronisation per step.
        """
        value = model_or_norm
        if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(
            value, (bool, np.bool_)
        ):
            self._record(float(value))
            return self
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.nn.Module):
            norm = self._track(value)
            if norm is not None:
                self._record_tensor(norm)
            return self
        if torch is not None and isinstance(value, torch.Tensor):
            self._record_tensor(self._user_tensor(value))
            return self
        if hasattr(value, "__array__") and not isinstance(value, str):
            self._record(_size_one_float(value))
            return self
        msg = (
            "Argument `model_or_norm` must be a torch.nn.Module or a number (float, int, "
            f"numpy scalar, size-1 array or tensor), but got {type(value).__name__}"
        )
        raise TypeError(msg)

    def update_from_norm(self, norm: Any) -> WeightChangeDFA:
        """Record a weight-update magnitude computed elsewhere (JAX, TensorFlow, ...).

        Same as :meth:`update` for numbers and tensors; a model is refused.
        """
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(norm, torch.nn.Module):
            msg = "Argument `norm` must be a number, but got a torch.nn.Module; use update()"
            raise TypeError(msg)
        return self.update(norm)

    def _track(self, model: Any) -> Tensor | None:
        from wcdfa.tracking import DeltaTracker, trainable_parameters  # noqa: PLC0415

        if self._tracker is None:
            self._tracker = DeltaTracker(snapshot=self.snapshot)
        return self._tracker.step(trainable_parameters(model))

    def _user_tensor(self, value: Tensor) -> Tensor:
        if value.numel() != 1:
            msg = (
                "Argument `model_or_norm` must be a 0-d or 1-element tensor, but got "
                f"shape {tuple(value.shape)}"
            )
            raise TypeError(msg)
        value = value.detach().reshape(())
        if value.is_complex() or value.dtype is sys.modules["torch"].bool:
            msg = f"Argument `model_or_norm` must be a real tensor, but got dtype {value.dtype}"
            raise TypeError(msg)
        if value.device.type == "cpu":
            _check_norm(value.item())
        return value

    def _record(self, norm: float) -> None:
        _check_norm(norm)
        self._flush()
        self._push(np.array([norm]))
        self._advance()

    def _record_tensor(self, norm: Tensor) -> None:
        self._pending.append(norm)
        self._advance()

    def _advance(self) -> None:
        self._step_count += 1
        if self._step_count % self.stride == 0:
            self._flush()
            if self._filled >= self.window:
                self._recompute()

    def _flush(self) -> None:
        """Fetch pending device norms to the host: one transfer for the batch."""
        if not self._pending:
            return
        import torch  # noqa: PLC0415 - pending tensors mean torch is loaded

        pending, self._pending = self._pending, []
        devices = {t.device for t in pending}
        if len(devices) > 1:
            pending = [t.cpu() for t in pending]
        values = torch.stack(pending).to("cpu", torch.float64).numpy()
        negative = np.flatnonzero(values < 0)
        self._push(values)
        if negative.size:
            msg = (
                "Argument `model_or_norm` must be a non-negative weight-update norm, but "
                f"{negative.size} tensor(s) fetched at step {self._step_count} were "
                f"negative (first {values[negative[0]]})"
            )
            raise ValueError(msg)

    def _push(self, values: NDArray[np.float64]) -> None:
        """Append samples to the ring buffer, overwriting the oldest."""
        values = values[-self.window :]
        k = values.size
        first = min(k, self.window - self._head)
        self._buffer[self._head : self._head + first] = values[:first]
        self._buffer[: k - first] = values[first:]
        self._head = (self._head + k) % self.window
        self._filled = min(self.window, self._filled + k)

    def _recompute(self) -> None:
        """Run DFA on the full window; on failure warn and keep the last α."""
        signal = self.get_signal()
        if np.std(signal) < _NEAR_CONSTANT_STD:
            warnings.warn(
                "Weight-update magnitudes are near-constant (std below "
                f"{_NEAR_CONSTANT_STD:g}): the model may have converged or stopped "
                "learning. DFA is unreliable on near-constant signals; keeping the last α.",
                NearConstantWarning,
                stacklevel=4,
            )
            return
        try:
            fit = _dfa1(_as_signal(signal), 4, None, 20)
        except ValueError as exc:
            warnings.warn(f"DFA computation failed: {exc}", DFAFailedWarning, stacklevel=4)
            return
        self._fit = fit
        self._alpha = fit.alpha
        self._alpha_history.append(fit.alpha)

    def regime_code(self) -> int | None:
        """Return the regime as logged to dashboards: 2 ordered, 1 critical, 0 disordered."""
        regime = self.regime
        return None if regime is None else _REGIME_CODES[regime]

    def _classify(self, alpha: float) -> str:
        if alpha > self.ordered_threshold:
            return self.ORDERED
        if alpha < self.disordered_threshold:
            return self.DISORDERED
        return self.CRITICAL

    def __repr__(self) -> str:
        name = type(self).__name__
        samples = f"samples={self.n_samples}/{self.window}"
        if self._alpha is None:
            return f"{name}(not ready, {samples})"
        return f"{name}(α={self._alpha:.3f}, regime='{self.regime}', {samples})"


class RollingWeightChangeDFA(WeightChangeDFA):
    """:class:`WeightChangeDFA` with an epoch-level record, a summary and plots.

    Call :meth:`end_epoch` at the end of each epoch to record the current α.

    Examples
    --------
    >>> import numpy as np
    >>> from wcdfa import RollingWeightChangeDFA
    >>> rng = np.random.default_rng(0)
    >>> monitor = RollingWeightChangeDFA(window=100, stride=20)
    >>> for epoch in range(5):
    ...     for norm in np.abs(rng.standard_normal(40)):
    ...         _ = monitor.update(norm)
    ...     monitor.end_epoch()
    >>> epochs, alphas = monitor.epoch_history
    >>> epochs.tolist(), int(np.isnan(alphas).sum())
    ([0, 1, 2, 3, 4], 2)
    """

    def reset(self) -> None:
        """Clear every sample, both histories and the parameter snapshot."""
        super().reset()
        self._epoch_steps: list[int] = []
        self._epoch_alphas: list[float | None] = []

    def end_epoch(self, epoch: int | None = None) -> None:
        """Record the current α (``None`` before the first) for an epoch.

        Parameters
        ----------
        epoch : int, optional
            Epoch number; by default one more than the last recorded, from 0.
        """
        if epoch is None:
            epoch = self._epoch_steps[-1] + 1 if self._epoch_steps else 0
        else:
            epoch = check_int("epoch", epoch, -(2**63))
        self._epoch_steps.append(epoch)
        self._epoch_alphas.append(self._alpha)

    @property
    def epoch_history(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """``(epochs, alphas)`` arrays; NaN where no α existed yet."""
        alphas = [np.nan if a is None else a for a in self._epoch_alphas]
        return np.array(self._epoch_steps, dtype=np.int64), np.array(alphas, dtype=float)

    def summary(self) -> dict[str, Any]:
        """Return counts and extremes of the epoch α record.

        Returns
        -------
        dict
            ``total_epochs``, ``current_alpha``, ``current_regime``, ``mean_alpha``,
            ``min_alpha``, ``max_alpha`` (``None`` without any finite epoch α) and
            ``epochs_ordered``, ``epochs_critical``, ``epochs_disordered``, which add
            up to the number of epochs with a finite α.
        """
        epochs, alphas = self.epoch_history
        valid = alphas[np.isfinite(alphas)]
        regimes = [self._classify(float(a)) for a in valid]
        return {
            "total_epochs": len(epochs),
            "current_alpha": self._alpha,
            "current_regime": self.regime,
            "mean_alpha": float(valid.mean()) if valid.size else None,
            "min_alpha": float(valid.min()) if valid.size else None,
            "max_alpha": float(valid.max()) if valid.size else None,
            "epochs_ordered": regimes.count(self.ORDERED),
            "epochs_critical": regimes.count(self.CRITICAL),
            "epochs_disordered": regimes.count(self.DISORDERED),
        }

    def plot(
        self, title: str = "Weight-change DFA", save_path: Any = None, show: bool = True
    ) -> Figure:
        """Plot α over epochs with the critical band and both thresholds.

        Parameters
        ----------
        title : str, default "Weight-change DFA"
            Figure title.
        save_path : str or path-like, optional
            Also save the figure there (format from the suffix).
        show : bool, default True
            Show the figure when matplotlib has an interactive backend; with a
            non-interactive backend (scripts, CI) nothing is shown and nothing blocks.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from wcdfa.plotting import plot_epoch_alphas  # noqa: PLC0415

        epochs, alphas = self.epoch_history
        return plot_epoch_alphas(
            epochs, alphas, self.thresholds, title=title, save_path=save_path, show=show
        )

    def log_wandb(self, step: int | None = None) -> None:
        """Log ``wcdfa/alpha`` and ``wcdfa/regime`` (2 ordered, 1 critical, 0 disordered).

        Warns and does nothing when wandb is not installed or no run is active.
        """
        from wcdfa.integrations.wandb import log_alpha  # noqa: PLC0415

        log_alpha(self, step=step)


def _check_thresholds(thresholds: Any) -> tuple[float, float]:
    try:
        ordered, disordered = thresholds
    except (TypeError, ValueError):
        msg = (
            "Argument `thresholds` must be a pair (ordered, disordered), but got "
            f"{thresholds!r}"
        )
        raise ValueError(msg) from None
    ordered = check_real("thresholds[0]", ordered)
    disordered = check_real("thresholds[1]", disordered)
    if not ordered > disordered:
        msg = (
            "Argument `thresholds` must be (ordered, disordered) with ordered > "
            f"disordered, but got {thresholds!r}"
        )
        raise ValueError(msg)
    return ordered, disordered


def _check_norm(norm: float) -> None:
    if norm < 0:
        msg = (
            "Argument `model_or_norm` must be a non-negative weight-update norm, but got "
            f"{norm!r}"
        )
        raise ValueError(msg)


def _size_one_float(value: Any) -> float:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size != 1:
        msg = (
            "Argument `model_or_norm` must be a number or a size-1 numeric array, but got "
            f"an array of dtype {arr.dtype} and shape {arr.shape}"
        )
        raise TypeError(msg)
    return float(arr.reshape(()))
