"""The monitor with an epoch-level record: ``end_epoch()``, ``summary()``, epoch plots."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._checks import check_int
from wcdfa.monitor import WeightChangeDFA

if TYPE_CHECKING:
    pass

__all__ = ["RollingWeightChangeDFA"]


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

    def state_dict(self) -> dict[str, Any]:
        """Return the state of :class:`WeightChangeDFA` plus the epoch record."""
        state = super().state_dict()
        state["epochs"] = list(self._epoch_steps)
        state["epoch_alphas"] = list(self._epoch_alphas)
        return state

    def _validate_extra(self, state: dict[str, Any]) -> None:
        self._parsed_epochs = _parse_epochs(state)

    def _restore(self, state: dict[str, Any]) -> None:
        self._epoch_steps, self._epoch_alphas = self._parsed_epochs
        del self._parsed_epochs

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
        self._epoch_alphas.append(self.alpha)

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
            ``total_epochs``, ``current_alpha``, ``current_regime``,
            ``current_ci_low``, ``current_ci_high`` (the interval of the current α),
            ``mean_alpha``,
            ``min_alpha``, ``max_alpha`` (``None`` without any finite epoch α) and
            ``epochs_ordered``, ``epochs_critical``, ``epochs_disordered``, which add
            up to the number of epochs with a finite α.
        """
        epochs, alphas = self.epoch_history
        valid = alphas[np.isfinite(alphas)]
        regimes = [self._classify(float(a)) for a in valid]
        ci = self.alpha_ci
        return {
            "total_epochs": len(epochs),
            "current_alpha": self.alpha,
            "current_regime": self.regime,
            "current_ci_low": None if ci is None else ci[0],
            "current_ci_high": None if ci is None else ci[1],
            "method": self.method_in_use,
            "mean_alpha": float(valid.mean()) if valid.size else None,
            "min_alpha": float(valid.min()) if valid.size else None,
            "max_alpha": float(valid.max()) if valid.size else None,
            "epochs_ordered": regimes.count(self.ORDERED),
            "epochs_critical": regimes.count(self.CRITICAL),
            "epochs_disordered": regimes.count(self.DISORDERED),
        }

    def plot_series(self) -> tuple[NDArray[Any], NDArray[np.float64], Any, Any, str]:
        """Return what :meth:`plot` draws: α per epoch, and the window's ‖ΔW‖ below."""
        epochs, alphas = self.epoch_history
        return epochs, alphas, None, self.get_signal(), "epoch"


def _parse_epochs(state: dict[str, Any]) -> tuple[list[int], list[float | None]]:
    """Return the epoch record of ``state``, validated (ValueError naming the field)."""
    if "epochs" not in state or "epoch_alphas" not in state:
        msg = (
            "Argument `state` is not a RollingWeightChangeDFA state_dict (saved by "
            f"{state.get('type')}): the epoch record is missing"
        )
        raise ValueError(msg)
    epochs, alphas = state["epochs"], state["epoch_alphas"]
    if not isinstance(epochs, list) or not all(
        isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in epochs
    ):
        msg = f"Argument `state` field 'epochs' must be a list of integers, but got {epochs!r}"
        raise ValueError(msg)
    if (
        not isinstance(alphas, list)
        or len(alphas) != len(epochs)
        or not all(a is None or (isinstance(a, numbers.Real) and math.isfinite(a)) for a in alphas)
    ):
        msg = (
            "Argument `state` field 'epoch_alphas' must be a list of finite numbers or None, "
            f"one per epoch, but got {alphas!r}"
        )
        raise ValueError(msg)
    return [int(e) for e in epochs], [None if a is None else float(a) for a in alphas]
