"""The training monitors: a ring buffer of ‖ΔW‖, DFA every ``stride`` updates."""

from __future__ import annotations

import array
import csv
import json
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._checks import SNAPSHOT_MODES, check_choice, check_int, check_real
from wcdfa.analysis import DFAResult, check_options, dfa, with_interval
from wcdfa.errors import (
    DFAFailedWarning,
    DivergenceError,
    DivergenceWarning,
    NearConstantWarning,
    WCDFAWarning,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import Tensor

    from wcdfa.tracking import DeltaTracker

__all__ = ["RollingWeightChangeDFA", "WeightChangeDFA"]

_NEAR_CONSTANT_STD = 1e-12
NORMALIZE_MODES = ("lr",)
NONFINITE_MODES = ("warn", "raise", "ignore")
METHODS = ("auto", "snapshot", "optimizer")
_STATE_FORMAT = "wcdfa.monitor/1"
_ROW_FIELDS = ["step", "delta_norm", "alpha", "alpha_ci_low", "alpha_ci_high", "regime"]
_REGIME_CODES = {"ordered": 2, "critical": 1, "disordered": 0}


class WeightChangeDFA:
    """Real-time weight-change DFA monitor for a training run.

    Every call of :meth:`update` (or every step of an :meth:`attach`-ed optimizer)
    adds one ‖ΔW‖ sample to a window of the last ``window`` samples; once the window
    is full, DFA is recomputed every ``stride`` samples and :attr:`alpha`,
    :attr:`regime` and :attr:`alpha_ci` follow.

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
    order : int, default 1
        Keyword-only. Degree of the detrending polynomial (see :func:`wcdfa.dfa`).
        The regime thresholds were set for DFA-1.
    aggregate : {"mean", "rms"}, default "mean"
        Keyword-only. How F(s) combines the boxes (see :func:`wcdfa.dfa`).
    ci : float or None, default 0.95
        Keyword-only. Coverage of :attr:`alpha_ci`; ``None`` disables it.
    normalize : {None, "lr"}, default None
        Keyword-only. ``"lr"`` divides each update by the learning rate it was taken
        with (each param group by its own), so that warm-up and decay do not show up
        as correlation. Needs the optimizer: :meth:`attach` it, or pass
        ``optimizer=`` to :meth:`update`.
    on_nonfinite : {"warn", "raise", "ignore"}, default "warn"
        Keyword-only. A NaN or infinite ‖ΔW‖ (diverged training) is always recorded
        (:attr:`nonfinite_steps`, :attr:`diverged`) and left out of α; ``"warn"``
        warns once, ``"raise"`` raises :class:`~wcdfa.errors.DivergenceError` (for
        device tensors when they are fetched, at the next ``stride`` boundary),
        ``"ignore"`` stays silent.
    groups : None, "module" or mapping, default None
        Keyword-only. Also keep a ‖ΔW‖ series and an α per group of parameters, from
        the same snapshot and kernels (no extra host synchronisation): ``"module"``
        (one group per module that owns parameters) or a mapping name -> parameters
        (modules, tensors or iterables of tensors; the rest forms ``"other"``). See
        :attr:`group_alphas`.
    sample : float or int, optional
        Keyword-only. Estimate ‖ΔW‖ from a fixed random subset of the coordinates
        instead of a full snapshot: a fraction in (0, 1) (``0.01`` for 1 %) or a
        number of coordinates. Memory O(k); the estimate is unbiased for ‖ΔW‖² with a
        relative error of about ``sqrt(2 / k_eff)`` for Gaussian-like updates (see
        docs/performance.md for measured errors).
    method : {"auto", "snapshot", "optimizer"}, default "auto"
        Keyword-only. How an :meth:`attach`-ed optimizer's ‖ΔW‖ is measured:
        ``"optimizer"`` derives the update just applied from the parameters and the
        optimizer's state (SGD, Adam, AdamW: no snapshot, memory O(number of
        tensors)); ``"snapshot"`` keeps a copy of the parameters; ``"auto"`` derives
        when the optimizer and its options are supported and otherwise falls back to
        the snapshot with a :class:`~wcdfa.errors.WCDFAWarning` saying why (so does
        ``"optimizer"``). ``update(model)`` always uses the snapshot.
    keep_norms : bool, default False
        Keyword-only. Keep every ‖ΔW‖ of the run (8 bytes a step) for :meth:`save`,
        not only the window; off, the monitor's memory does not grow with the steps
        (apart from the α history).

    Raises
    ------
    ValueError
        If ``window < 50``, ``stride < 1``, ``thresholds`` is not a pair with
        ``ordered > disordered``, or an option is outside its choices.

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
    >>> low, high = monitor.alpha_ci
    >>> bool(low < monitor.alpha < high)
    True
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
        order: int = 1,
        aggregate: str = "mean",
        ci: float | None = 0.95,
        normalize: str | None = None,
        keep_norms: bool = False,
        on_nonfinite: str = "warn",
        groups: Any = None,
        sample: float | None = None,
        method: str = "auto",
    ) -> None:
        self.window = check_int("window", window, 50)
        self.stride = (
            max(1, self.window // 5) if stride is None else check_int("stride", stride, 1)
        )
        self.ordered_threshold, self.disordered_threshold = _check_thresholds(thresholds)
        self.snapshot = check_choice("snapshot", snapshot, SNAPSHOT_MODES)
        self.sample = _check_sample(sample)
        self.method = check_choice("method", method, METHODS)
        self._derived: dict[Any, Any] = {}  # attached optimizers measured from their state
        self.order, self.aggregate, self.ci = check_options(order, aggregate, ci)
        if normalize is not None:
            check_choice("normalize", normalize, NORMALIZE_MODES)
        self.normalize = normalize
        self.keep_norms = bool(keep_norms)
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, NONFINITE_MODES)
        self._buffer = np.empty(self.window)
        self._trackers: dict[Any, DeltaTracker] = {}
        self._attached_models: dict[Any, Any] = {}
        if groups is not None and groups != "module" and not hasattr(groups, "items"):
            msg = (
                "Argument `groups` must be None, 'module' or a mapping name -> parameters, "
                f"but got {groups!r}"
            )
            raise ValueError(msg)
        self.groups = groups
        self._group_names: list[str] | None = None
        self._group_owner: dict[int, int] | None = None
        self._group_model: int | None = None
        self._group_buffer = np.full((self.window, 0), np.nan)
        self._hooks: dict[int, tuple[Any, Any]] = {}  # id(optimizer) -> (optimizer, handle)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Clear every sample, the α history and the parameter snapshots."""
        self._head = 0  # next write position in the ring buffer
        self._filled = 0  # valid samples in the ring buffer
        # Device values not yet fetched to the host: squared norms per group, and the
        # weights (1 / lr**2 per group) to combine them with, or plain norms.
        self._pending: list[Tensor] = []
        self._pending_weights: list[NDArray[np.float64] | None] = []
        self._pending_kind: tuple[Any, ...] | None = None
        self._step_count = 0
        self._pushing_pending = False
        self._nonfinite_steps: list[int] = []
        self._warned_nonfinite = False
        self._alpha: float | None = None
        self._result: DFAResult | None = None
        self._result_has_ci = False
        # compact: 8 bytes per recomputation, whatever the length of the run
        self._alpha_history: array.array[float] = array.array("d")
        self._alpha_steps: array.array[int] = array.array("q")
        self._group_alphas: dict[str, float | None] = {}
        self._norm_log: array.array[float] | None = array.array("d") if self.keep_norms else None
        for tracker in self._trackers.values():
            tracker.reset()

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
        return self._alpha_history.tolist()

    @property
    def group_alphas(self) -> dict[str, float | None]:
        """α per parameter group (``groups=``), from the same recomputation as α.

        ``None`` for a group whose window is constant (e.g. frozen) or incomplete.
        """
        return dict(self._group_alphas)

    def get_group_signals(self) -> dict[str, NDArray[np.float64]]:
        """Return the window's ‖ΔW‖ per parameter group, oldest first."""
        self._flush()
        if self._group_names is None:
            return {}
        if self._filled < self.window:
            rows = self._group_buffer[: self._filled]
        else:
            rows = np.concatenate((self._group_buffer[self._head :],
                                   self._group_buffer[: self._head]))
        return {name: rows[:, i].copy() for i, name in enumerate(self._group_names)}

    @property
    def diverged(self) -> bool:
        """Whether a non-finite ‖ΔW‖ has been recorded."""
        return bool(self._nonfinite_steps)

    @property
    def nonfinite_steps(self) -> list[int]:
        """Steps whose ‖ΔW‖ was NaN or infinite (left out of the window)."""
        return list(self._nonfinite_steps)

    @property
    def history_steps(self) -> list[int]:
        """The step (sample count) at which each α of :attr:`history` was computed."""
        return self._alpha_steps.tolist()

    @property
    def n_samples(self) -> int:
        """Samples currently in the window (at most ``window``)."""
        return min(self.window, self._filled + len(self._pending))

    @property
    def step_count(self) -> int:
        """Samples recorded since construction or the last :meth:`reset`."""
        return self._step_count

    @property
    def result(self) -> DFAResult | None:
        """The full :class:`~wcdfa.DFAResult` behind the current α (interval included).

        The interval is computed on first access after each recomputation, so it
        costs nothing to updates that do not read it.
        """
        if self._result is not None and self.ci is not None and not self._result_has_ci:
            self._result = with_interval(self._result, self.ci)
            self._result_has_ci = True
        return self._result

    @property
    def alpha_ci(self) -> tuple[float, float] | None:
        """``(low, high)`` confidence interval for α, or ``None``."""
        result = self.result
        if result is None or self.ci is None:
            return None
        return result.ci_low, result.ci_high

    @property
    def r_squared(self) -> float | None:
        """R² of the log-log fit behind the current α, or ``None``."""
        return None if self._result is None else self._result.r_squared

    @property
    def scales(self) -> NDArray[np.int64] | None:
        """Box sizes of the current fit, or ``None``."""
        return None if self._result is None else self._result.scales

    @property
    def fluctuations(self) -> NDArray[np.float64] | None:
        """F(s) of the current fit, or ``None``."""
        return None if self._result is None else self._result.fluctuations

    @property
    def snapshot_bytes(self) -> int:
        """Bytes the monitor holds for parameter snapshots (0 without a model)."""
        return sum(t.snapshot_bytes for t in self._trackers.values())

    # ------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Return the monitor's state as plain Python values (checkpoint-safe).

        The window, the step count, the α history, the current fit and the
        settings; not the parameter snapshot, which at resume is the model's
        restored weights (see :meth:`load_state_dict`).
        """
        result = None
        if self._result is not None:
            result = self._result.as_dict()
            result.update(ci_low=None, ci_high=None, level=None)
        return {
            "format": _STATE_FORMAT,
            "type": type(self).__name__,
            "settings": self._settings(),
            "signal": self.get_signal().tolist(),
            "step_count": self._step_count,
            "alpha_history": self._alpha_history.tolist(),
            "alpha_steps": self._alpha_steps.tolist(),
            "nonfinite_steps": list(self._nonfinite_steps),
            "group_names": self._group_names,
            "group_signals": {k: v.tolist() for k, v in self.get_group_signals().items()},
            "group_alphas": dict(self._group_alphas),
            "norms": None if self._norm_log is None else self._norm_log.tolist(),
            "result": result,
        }

    def load_state_dict(self, state: dict[str, Any], model: Any = None) -> None:
        """Restore a :meth:`state_dict`; with ``model``, take it as the new baseline.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` of a monitor with the same settings.
        model : torch.nn.Module, optional
            The model whose weights were restored from the same checkpoint: its
            trainable parameters become the snapshot, so the next ``update(model)``
            records the next step's change exactly as an uninterrupted run would.
            (An :meth:`attach`-ed optimizer takes its baseline when attached.)

        Raises
        ------
        ValueError
            If ``state`` is not a wcdfa monitor state, or was saved with other
            settings (window, stride, thresholds, ...).
        """
        try:
            fmt, settings = state["format"], state["settings"]
            signal = np.asarray(state["signal"], dtype=np.float64)
            step_count = int(state["step_count"])
            history = [float(a) for a in state["alpha_history"]]
            history_steps = [int(k) for k in state["alpha_steps"]]
            nonfinite_steps = [int(k) for k in state["nonfinite_steps"]]
            group_names = state["group_names"]
            group_signals = None
            if group_names is not None:
                group_signals = np.array(
                    [state["group_signals"][name] for name in group_names], dtype=np.float64
                ).T.reshape(signal.size, len(group_names))
            group_alphas = {str(k): v for k, v in state["group_alphas"].items()}
            norms = state["norms"]
            result = state["result"]
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Argument `state` is not a wcdfa monitor state_dict: {exc!r}"
            raise ValueError(msg) from None
        if fmt != _STATE_FORMAT:
            msg = f"Argument `state` has format {fmt!r}; this wcdfa reads {_STATE_FORMAT!r}"
            raise ValueError(msg)
        mine = self._settings()
        if settings != mine:
            diff = {k: (settings.get(k), v) for k, v in mine.items() if settings.get(k) != v}
            msg = (
                "Argument `state` was saved by a monitor with other settings "
                f"(saved, here): {diff}"
            )
            raise ValueError(msg)
        if signal.ndim != 1 or signal.size > self.window or step_count < signal.size:
            msg = (
                f"Argument `state` is inconsistent: {signal.size} samples for a window of "
                f"{self.window} after {step_count} steps"
            )
            raise ValueError(msg)
        self._restore(state)
        self.reset_snapshot()
        self._filled, self._head = 0, 0
        if group_names is not None:
            self._set_group_names([str(name) for name in group_names])
        self._push(signal, log=False, group_values=group_signals)
        if self._norm_log is not None:
            self._norm_log = array.array("d", [] if norms is None else norms)
        self._step_count = step_count
        self._alpha_history = array.array("d", history)
        self._alpha_steps = array.array("q", history_steps)
        self._nonfinite_steps = nonfinite_steps
        self._group_alphas = group_alphas
        self._alpha = history[-1] if history else None
        self._result = None
        if result is not None:
            fields = dict(result)
            fields["scales"] = np.asarray(fields["scales"], dtype=np.int64)
            fields["fluctuations"] = np.asarray(fields["fluctuations"], dtype=np.float64)
            fields.update(ci_low=float("nan"), ci_high=float("nan"), level=None)
            self._result = DFAResult(**fields)
        self._result_has_ci = False
        if model is not None:
            from wcdfa.tracking import trainable_parameters  # noqa: PLC0415

            self._tracker("model").step(trainable_parameters(model))  # records the baseline

    def reset_snapshot(self) -> None:
        """Forget the parameter snapshots: the next model update records a baseline."""
        self._pending, self._pending_weights, self._pending_kind = [], [], None
        for tracker in self._trackers.values():
            tracker.reset()

    def _settings(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "stride": self.stride,
            "thresholds": list(self.thresholds),
            "order": self.order,
            "aggregate": self.aggregate,
            "ci": self.ci,
            "normalize": self.normalize,
            "keep_norms": self.keep_norms,
            "on_nonfinite": self.on_nonfinite,
            "sample": self.sample,
            "method": self.method,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        """Restore subclass state (nothing here)."""

    def get_signal(self) -> NDArray[np.float64]:
        """Return the window's ‖ΔW‖ samples as a new float64 array, oldest first."""
        self._flush()
        if self._filled < self.window:
            return self._buffer[: self._filled].copy()
        return np.concatenate((self._buffer[self._head :], self._buffer[: self._head]))

    # ---------------------------------------------------------------- updates
    def update(self, model_or_norm: Any, *, optimizer: Any = None) -> WeightChangeDFA:
        """Record one weight update and recompute DFA when it is due.

        Parameters
        ----------
        model_or_norm : torch.nn.Module, float, int, numpy scalar or size-1 array, tensor
            A model: its ‖W_now − W_prev‖ over the parameters with
            ``requires_grad=True`` is recorded (the first call only records the
            baseline). A number: recorded as given. A 0-d or 1-element tensor: kept on
            its device and fetched with the others once per ``stride``.
        optimizer : torch.optim.Optimizer, optional
            Keyword-only. The optimizer whose step produced the update: with
            ``normalize="lr"``, its learning rates divide the update.

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
            host synchronisation per step. With ``normalize="lr"``: if no optimizer
            is known, or a number is given while the param groups' rates differ.
        """
        value = model_or_norm
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.nn.Module):
            self._update_model(value, optimizer)
            return self
        if torch is not None and isinstance(value, torch.Tensor):
            norm: Any = self._user_tensor(value)
        elif isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(
            value, (bool, np.bool_)
        ):
            norm = float(value)
        elif hasattr(value, "__array__") and not isinstance(value, str):
            norm = _size_one_float(value)
        else:
            msg = (
                "Argument `model_or_norm` must be a torch.nn.Module or a number (float, "
                f"int, numpy scalar, size-1 array or tensor), but got {type(value).__name__}"
            )
            raise TypeError(msg)
        lr = self._single_learning_rate(optimizer) if self.normalize == "lr" else None
        if isinstance(norm, float):
            _check_norm(norm)
            self._record(norm if lr is None else norm / lr)
        else:
            weights = None if lr is None else np.array([1.0 / lr])
            self._record_tensor(norm, ("norm", 1, 1), weights)
        return self

    def update_from_norm(self, norm: Any, *, optimizer: Any = None) -> WeightChangeDFA:
        """Record a weight-update magnitude computed elsewhere (JAX, TensorFlow, ...).

        Same as :meth:`update` for numbers and tensors; a model is refused.
        """
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(norm, torch.nn.Module):
            msg = "Argument `norm` must be a number, but got a torch.nn.Module; use update()"
            raise TypeError(msg)
        return self.update(norm, optimizer=optimizer)

    def attach(self, optimizer: Any, model: Any = None) -> Any:
        """Record ‖ΔW‖ after every real step of ``optimizer``: no call in the loop.

        Registers an optimizer step post-hook. The optimizer's trainable parameters
        are snapshotted now, and each completed ``optimizer.step()`` records their
        change. Micro-batches of gradient accumulation do not call
        ``step()`` and record nothing; a step that AMP's ``GradScaler`` skips (inf or
        NaN gradients) never calls ``step()`` either, so it records nothing.

        With several optimizers on one model, attach each to its own monitor:
        attaching two to the same monitor interleaves their samples in one window.

        Parameters
        ----------
        optimizer : torch.optim.Optimizer
        model : torch.nn.Module, optional
            The model the optimizer trains; needed only to name ``groups="module"``.

        Returns
        -------
        torch.utils.hooks.RemovableHandle
            ``handle.remove()`` detaches this optimizer only; see :meth:`detach`.
        """
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(optimizer, torch.optim.Optimizer):
            msg = (
                "Argument `optimizer` must be a torch.optim.Optimizer, but got "
                f"{type(optimizer).__name__}"
            )
            raise TypeError(msg)
        if id(optimizer) in self._hooks:
            return self._hooks[id(optimizer)][1]

        if self.groups == "module" and model is None:
            msg = (
                "Argument `model` is needed with groups='module' (it names the groups): "
                "attach(optimizer, model=model)"
            )
            raise ValueError(msg)
        key = ("optimizer", id(optimizer))
        if model is not None:
            self._attached_models[key] = model
        if self._use_derived(optimizer):
            from wcdfa.derived import DerivedUpdate  # noqa: PLC0415

            self._derived[key] = DerivedUpdate(optimizer)  # no baseline needed
        else:
            self._trackers.pop(key, None)
            self._update_optimizer(optimizer, key)  # a fresh tracker: records the baseline

        def hook(opt: Any, args: Any, kwargs: Any) -> None:
            self._update_optimizer(opt, key)

        handle = optimizer.register_step_post_hook(hook)
        self._hooks[id(optimizer)] = (optimizer, handle)
        return handle

    def detach(self) -> None:
        """Remove every optimizer hook added by :meth:`attach`."""
        for optimizer, handle in self._hooks.values():
            handle.remove()
            self._trackers.pop(("optimizer", id(optimizer)), None)
            self._derived.pop(("optimizer", id(optimizer)), None)
            self._attached_models.pop(("optimizer", id(optimizer)), None)
        self._hooks.clear()

    def _use_derived(self, optimizer: Any) -> bool:
        """Whether ``optimizer``'s updates can be derived from its state; say why not."""
        if self.method == "snapshot" or self.sample is not None:
            return False
        from wcdfa.derived import unsupported_reason  # noqa: PLC0415

        reason = unsupported_reason(optimizer)
        if reason is None:
            return True
        warnings.warn(
            f"‖ΔW‖ is measured with a parameter snapshot, not from the optimizer's state: "
            f"{reason}.",
            WCDFAWarning,
            stacklevel=4,
        )
        return False

    @property
    def method_in_use(self) -> str | None:
        """``"optimizer-state"``, ``"snapshot"``, both joined by ``+``, or ``None``."""
        used = []
        if self._trackers:
            used.append("snapshot")
        if self._derived:
            used.append("optimizer-state")
        return "+".join(used) or None

    def _update_model(self, model: Any, optimizer: Any) -> None:
        from wcdfa.tracking import (  # noqa: PLC0415 - torch is loaded
            learning_rates,
            model_groups,
            trainable_parameters,
        )

        if self.normalize != "lr":
            self._track("model", trainable_parameters(model), None, None, model)
        else:
            optimizer = self._known_optimizer(optimizer)
            params, lr_ids, _ = model_groups(model, optimizer)
            self._track("model", params, lr_ids, [*learning_rates(optimizer), 1.0], model)

    def _update_optimizer(self, optimizer: Any, key: Any) -> None:
        from wcdfa.tracking import learning_rates, optimizer_groups  # noqa: PLC0415

        params, lr_ids = optimizer_groups(optimizer)
        lrs = learning_rates(optimizer) if self.normalize == "lr" else None
        self._track(key, params, lr_ids, lrs, self._attached_models.get(key),
                    self._derived.get(key))

    def _track(
        self,
        key: Any,
        params: list[Any],
        lr_ids: list[int] | None,
        lrs: list[float] | None,
        model: Any,
        derived: Any = None,
    ) -> None:
        """Measure ``params`` with the tracker ``key``; record the squared norms.

        With ``derived`` (a :class:`~wcdfa.derived.DerivedUpdate`), the update comes
        from the optimizer's state instead of a snapshot.

        The tracker sums squares per (layer group, learning-rate group): one group
        unless ``groups=`` or ``normalize="lr"`` ask for more.
        """
        n_lr = 1 if lrs is None else len(lrs)
        layer_ids = self._layer_ids(params, model)
        n_layers = 1 if self._group_names is None else len(self._group_names)
        if lrs is None or lr_ids is None:
            ids = layer_ids
        else:
            ids = [layer * n_lr + g for layer, g in zip(layer_ids, lr_ids, strict=True)]
        if derived is not None:
            squares = derived.step(ids, n_layers * n_lr)
        else:
            squares = self._tracker(key).step(params, ids, n_layers * n_lr)
        if squares is None:
            return
        weights = None if lrs is None else np.tile(1.0 / np.square(lrs), n_layers)
        self._record_tensor(squares, ("squares", n_layers * n_lr, n_lr), weights)

    def _tracker(self, key: Any) -> DeltaTracker:
        """Return the snapshot tracker for ``key`` (the model, or an attached optimizer)."""
        tracker = self._trackers.get(key)
        if tracker is None:
            from wcdfa.tracking import DeltaTracker  # noqa: PLC0415 - torch is loaded

            tracker = self._trackers[key] = DeltaTracker(self.snapshot, self.sample)
        return tracker

    def _layer_ids(self, params: list[Any], model: Any) -> list[int]:
        """Group index of each parameter under ``groups=`` (all 0 without it)."""
        if self.groups is None:
            return [0] * len(params)
        from wcdfa.tracking import layer_names  # noqa: PLC0415

        if self._group_owner is None or (self.groups == "module" and model is not None
                                          and id(model) != self._group_model):
            names, owner = layer_names(self.groups, model)
            if self._group_names is not None and names != self._group_names:
                msg = (
                    "Argument `groups`: the parameter groups changed between updates "
                    f"({self._group_names} then {names}); use one model per monitor"
                )
                raise ValueError(msg)
            self._set_group_names(names)
            self._group_owner, self._group_model = owner, id(model)
        other = len(self._group_names or []) - 1
        return [self._group_owner.get(id(p), other) for p in params]

    def _set_group_names(self, names: list[str]) -> None:
        self._group_names = names
        if self._group_buffer.shape[1] != len(names):
            self._group_buffer = np.full((self.window, len(names)), np.nan)

    def _known_optimizer(self, optimizer: Any) -> Any:
        if optimizer is not None:
            return optimizer
        if len(self._hooks) == 1:
            return next(iter(self._hooks.values()))[0]
        msg = (
            "Argument `optimizer` is needed with normalize='lr' (the learning rate "
            "divides each update): attach(optimizer) or pass update(..., optimizer=opt)"
        )
        raise ValueError(msg)

    def _single_learning_rate(self, optimizer: Any) -> float:
        from wcdfa.tracking import learning_rates  # noqa: PLC0415 - torch is loaded

        rates = set(learning_rates(self._known_optimizer(optimizer)))
        if len(rates) != 1:
            msg = (
                "Argument `optimizer` must have one learning rate to normalise a number "
                f"by, but its param groups have {sorted(rates)}; pass the model instead, "
                "so that each group is divided by its own rate"
            )
            raise ValueError(msg)
        (lr,) = rates
        return lr

    def _user_tensor(self, value: Tensor) -> Tensor:
        if value.numel() != 1:
            msg = (
                "Argument `model_or_norm` must be a 0-d or 1-element tensor, but got "
                f"shape {tuple(value.shape)}"
            )
            raise TypeError(msg)
        value = value.detach().reshape(1)
        if value.is_complex() or value.dtype is sys.modules["torch"].bool:
            msg = f"Argument `model_or_norm` must be a real tensor, but got dtype {value.dtype}"
            raise TypeError(msg)
        if value.device.type == "cpu":
            _check_norm(value.item())
        return value

    def _record(self, norm: float) -> None:
        self._flush()
        bad = self._push(np.array([norm]))
        self._advance()
        self._raise_if_diverged(bad)

    def _record_tensor(
        self, value: Tensor, kind: tuple[Any, ...], weights: NDArray[np.float64] | None
    ) -> None:
        if self._pending_kind != kind:
            self._flush()
            self._pending_kind = kind
        self._pending.append(value)
        self._pending_weights.append(weights)
        self._advance()

    def _advance(self) -> None:
        self._step_count += 1
        if self._step_count % self.stride == 0:
            self._flush()
            if self._filled >= self.window:
                self._recompute()

    def _flush(self) -> None:
        """Fetch pending device values to the host: one transfer for the batch."""
        if not self._pending:
            return
        import torch  # noqa: PLC0415 - pending tensors mean torch is loaded

        pending, weights, kind = self._pending, self._pending_weights, self._pending_kind
        self._pending, self._pending_weights, self._pending_kind = [], [], None
        if len({t.device for t in pending}) > 1:
            pending = [t.cpu() for t in pending]
        values = torch.stack(pending).to("cpu", torch.float64).numpy()  # (steps, groups)
        self._pushing_pending = True
        scale = np.stack([np.ones(values.shape[1]) if w is None else w for w in weights])
        per_group = None
        if kind is not None and kind[0] == "squares":
            weighted = values * scale
            norms = np.sqrt(weighted.sum(axis=1))
            if self._group_names is not None:  # (steps, layers): sum over lr groups
                n_lr = kind[2]
                per_group = np.sqrt(weighted.reshape(len(pending), -1, n_lr).sum(axis=2))
        else:
            norms = values[:, 0] * scale[:, 0]
        negative = np.flatnonzero(norms < 0)
        try:
            bad = self._push(norms, group_values=per_group)
        finally:
            self._pushing_pending = False
        if negative.size:
            msg = (
                "Argument `model_or_norm` must be a non-negative weight-update norm, but "
                f"{negative.size} tensor(s) fetched at step {self._step_count} were "
                f"negative (first {norms[negative[0]]})"
            )
            raise ValueError(msg)
        self._raise_if_diverged(bad)

    def _push(
        self,
        values: NDArray[np.float64],
        log: bool = True,
        group_values: NDArray[np.float64] | None = None,
    ) -> list[int]:
        """Append samples to the ring buffer, overwriting the oldest.

        Non-finite samples (diverged training) are logged and reported, never put
        into the window: α is computed from finite updates only. Returns the steps
        of the non-finite samples among ``values``. ``group_values`` (samples,
        groups) go into the per-group window alongside (NaN rows without).
        """
        bad: list[int] = []
        n_groups = self._group_buffer.shape[1]
        if group_values is None:
            group_values = np.full((values.size, n_groups), np.nan)
        if log:
            if self._norm_log is not None:
                self._norm_log.frombytes(
                    np.ascontiguousarray(values, dtype=np.float64).tobytes()
                )
            finite = np.isfinite(values)
            if not finite.all():
                bad = self._nonfinite(values, finite)
                values, group_values = values[finite], group_values[finite]
        values, group_values = values[-self.window :], group_values[-self.window :]
        k = values.size
        first = min(k, self.window - self._head)
        self._buffer[self._head : self._head + first] = values[:first]
        self._buffer[: k - first] = values[first:]
        if n_groups:
            self._group_buffer[self._head : self._head + first] = group_values[:first]
            self._group_buffer[: k - first] = group_values[first:]
        self._head = (self._head + k) % self.window
        self._filled = min(self.window, self._filled + k)
        return bad

    def _nonfinite(self, values: NDArray[np.float64], finite: NDArray[np.bool_]) -> list[int]:
        """Record (and report) the steps of the non-finite samples among ``values``."""
        last = self._step_count if self._pushing_pending else self._step_count + 1
        steps: list[int] = (last - values.size + 1 + np.flatnonzero(~finite)).tolist()
        self._nonfinite_steps += steps
        if self.on_nonfinite == "warn" and not self._warned_nonfinite:
            self._warned_nonfinite = True
            warnings.warn(
                f"Non-finite weight-update norm at step {int(steps[0])}: training has "
                "diverged. The sample is recorded in `nonfinite_steps` and left out of α; "
                "`diverged` is now True (warned once).",
                DivergenceWarning,
                stacklevel=5,
            )
        return steps

    def _raise_if_diverged(self, steps: list[int]) -> None:
        """With ``on_nonfinite="raise"``, raise once the samples are safely recorded."""
        if steps and self.on_nonfinite == "raise":
            msg = (
                f"Non-finite weight-update norm at step {steps[0]}: training diverged "
                "(on_nonfinite='raise'); every sample is recorded"
            )
            raise DivergenceError(msg)

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
            result = dfa(signal, order=self.order, aggregate=self.aggregate, ci=None)
        except ValueError as exc:
            warnings.warn(f"DFA computation failed: {exc}", DFAFailedWarning, stacklevel=4)
            return
        self._result = result
        self._result_has_ci = False
        self._group_alphas = self._compute_group_alphas()
        self._alpha = result.alpha
        self._alpha_history.append(result.alpha)
        self._alpha_steps.append(self._step_count)

    # ------------------------------------------------------------------ sinks
    def metrics(self, prefix: str = "wcdfa/") -> dict[str, float]:
        """Return the numbers every sink logs, keyed ``prefix + name``.

        ``delta_norm`` (the latest ‖ΔW‖) is always there once a sample exists;
        ``alpha``, ``regime`` (2 ordered, 1 critical, 0 disordered), ``r_squared`` and
        the interval ``alpha_ci_low`` / ``alpha_ci_high`` once α exists. Reading it
        fetches pending device norms (one transfer): call it when you log, not every
        step.
        """
        out: dict[str, float] = {}
        signal = self.get_signal()
        if signal.size:
            out[prefix + "delta_norm"] = float(signal[-1])
        if self._alpha is not None:
            out[prefix + "alpha"] = self._alpha
            out[prefix + "regime"] = float(_REGIME_CODES[self._classify(self._alpha)])
            out[prefix + "r_squared"] = float(self.r_squared or 0.0)
            ci = self.alpha_ci
            if ci is not None:
                out[prefix + "alpha_ci_low"], out[prefix + "alpha_ci_high"] = ci
            for name, alpha in self._group_alphas.items():
                if alpha is not None:
                    out[f"{prefix}alpha/{name}"] = alpha
        return out

    def postfix(self) -> dict[str, str]:
        """Return a compact dict for ``tqdm.set_postfix``: α and the regime."""
        if self._alpha is None:
            return {"α": f"…{self.n_samples}/{self.window}"}
        return {"α": f"{self._alpha:.3f}", "regime": str(self.regime)}

    def save(self, path: Any) -> Path:
        """Write the per-step ‖ΔW‖ and the α history as CSV or JSON Lines.

        One row per step with a known norm (the window's, or the whole run's with
        ``keep_norms=True``) and per step with an α: columns ``step``,
        ``delta_norm``, ``alpha``, ``alpha_ci_low``, ``alpha_ci_high`` (the interval of
        the current α only), ``regime``; empty (CSV) or null (JSON) where unknown.

        Parameters
        ----------
        path : str or path-like
            ``.csv``, ``.jsonl`` or ``.ndjson``.

        Returns
        -------
        pathlib.Path
        """
        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in (".csv", ".jsonl", ".ndjson"):
            msg = f"Argument `path` must end in .csv, .jsonl or .ndjson, but got {str(out)!r}"
            raise ValueError(msg)
        rows = self._rows()
        if suffix == ".csv":
            with out.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=_ROW_FIELDS)
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            with out.open("w") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
        return out

    def _rows(self) -> list[dict[str, Any]]:
        self._flush()
        norms = (
            np.frombuffer(self._norm_log, dtype=np.float64)
            if self._norm_log is not None
            else self.get_signal()
        )
        first = self._step_count - norms.size + 1
        rows: dict[int, dict[str, Any]] = {
            first + i: {"step": first + i, "delta_norm": v} for i, v in enumerate(norms.tolist())
        }
        ci = self.alpha_ci
        for k, (step, alpha) in enumerate(zip(self._alpha_steps, self._alpha_history, strict=True)):
            row = rows.setdefault(step, {"step": step, "delta_norm": None})
            row["alpha"] = alpha
            row["regime"] = self._classify(alpha)
            if ci is not None and k == len(self._alpha_history) - 1:
                row["alpha_ci_low"], row["alpha_ci_high"] = ci
        out = []
        for step in sorted(rows):
            row = dict.fromkeys(_ROW_FIELDS)
            row.update(rows[step])
            if isinstance(row["delta_norm"], float) and not math.isfinite(row["delta_norm"]):
                row["delta_norm"] = str(row["delta_norm"])
            out.append(row)
        return out

    def __str__(self) -> str:
        if self._alpha is None:
            return f"wcdfa: not ready ({self.n_samples}/{self.window} samples)"
        ci = self.alpha_ci
        interval = "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        return (
            f"wcdfa: α={self._alpha:.3f}{interval} {self.regime} "
            f"(R²={self.r_squared:.3f}, step {self._step_count})"
        )

    def log_wandb(self, step: int | None = None, *, plot: bool = False) -> None:
        """Log ``wcdfa/alpha`` and ``wcdfa/regime`` (2 ordered, 1 critical, 0 disordered).

        Also ``wcdfa/regime_name``, ``wcdfa/delta_norm``, ``wcdfa/r_squared`` and the
        interval; ``plot=True`` adds the log-log F(s) figure. Warns and does nothing
        when wandb is not installed or no run is active; logs from rank zero only.
        """
        from wcdfa.integrations.wandb import log_alpha  # noqa: PLC0415

        log_alpha(self, step=step, plot=plot)

    def log_tensorboard(self, writer: Any, step: int | None = None) -> None:
        """Write :meth:`metrics` to a TensorBoard ``SummaryWriter`` (rank zero only).

        ``step`` defaults to :attr:`step_count`; the regime also goes in as text.
        """
        from wcdfa.integrations.tensorboard import log_scalars  # noqa: PLC0415

        log_scalars(self, writer, step)

    # ------------------------------------------------------------------ plots
    def plot(
        self,
        title: str = "Weight-change DFA",
        save_path: Any = None,
        show: bool = True,
        *,
        ax: Any = None,
    ) -> Figure:
        """Plot α over the steps with the regime bands, and the window's ‖ΔW‖ below.

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

        self._flush()
        norms = self.get_signal() if self._norm_log is None else np.array(self._norm_log)
        return plot_alpha(
            np.array(self._alpha_steps), np.array(self._alpha_history, dtype=float),
            self.thresholds, norms=norms,
            norm_steps=np.arange(self._step_count - norms.size + 1, self._step_count + 1),
            title=title, ax=ax, save_path=save_path, show=show,
        )

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

    def _compute_group_alphas(self) -> dict[str, float | None]:
        if self._group_names is None:
            return {}
        rows = np.concatenate((self._group_buffer[self._head :], self._group_buffer[: self._head]))
        out: dict[str, float | None] = {}
        for name, column in zip(self._group_names, rows.T, strict=True):
            alpha = None
            if np.all(np.isfinite(column)) and np.std(column) >= _NEAR_CONSTANT_STD:
                try:
                    alpha = dfa(column, order=self.order, aggregate=self.aggregate, ci=None).alpha
                except ValueError:
                    alpha = None
            out[name] = alpha
        return out

    def regime_code(self) -> int | None:
        """Return the regime as logged to dashboards: 2 ordered, 1 critical, 0 disordered."""
        regime = self.regime
        return None if regime is None else _REGIME_CODES[regime]

    def _classify(self, alpha: float) -> str:
        return self.classify_alpha(alpha, self.thresholds)

    @classmethod
    def classify_alpha(
        cls, alpha: float, thresholds: tuple[float, float] = (1.2, 0.8)
    ) -> str:
        """Return the regime of ``alpha`` for ``(ordered, disordered)`` thresholds."""
        ordered, disordered = thresholds
        if alpha > ordered:
            return cls.ORDERED
        if alpha < disordered:
            return cls.DISORDERED
        return cls.CRITICAL

    def __repr__(self) -> str:
        name = type(self).__name__
        samples = f"samples={self.n_samples}/{self.window}"
        if self._alpha is None:
            return f"{name}(not ready, {samples})"
        ci = self.alpha_ci
        interval = "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        method = "" if self.method_in_use is None else f", method={self.method_in_use}"
        return f"{name}(α={self._alpha:.3f}{interval}, regime='{self.regime}', {samples}{method})"


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

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            epochs = [int(e) for e in state["epochs"]]
            alphas = [None if a is None else float(a) for a in state["epoch_alphas"]]
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Argument `state` is not a RollingWeightChangeDFA state_dict: {exc!r}"
            raise ValueError(msg) from None
        if len(epochs) != len(alphas):
            msg = "Argument `state` is inconsistent: epochs and epoch_alphas differ in length"
            raise ValueError(msg)
        self._epoch_steps, self._epoch_alphas = epochs, alphas

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
            "current_alpha": self._alpha,
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

    def plot(
        self,
        title: str = "Weight-change DFA",
        save_path: Any = None,
        show: bool = True,
        *,
        ax: Any = None,
    ) -> Figure:
        """Plot α over epochs with the regime bands, and the window's ‖ΔW‖ below.

        Parameters
        ----------
        title : str, default "Weight-change DFA"
            Figure title.
        save_path : str or path-like, optional
            Also save the figure there (format from the suffix).
        show : bool, default True
            Show the figure when matplotlib has an interactive backend; with a
            non-interactive backend (scripts, CI) nothing is shown and nothing blocks.
        ax : matplotlib.axes.Axes, optional
            Keyword-only. Draw the α panel into this axes (no ‖ΔW‖ panel).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from wcdfa.plotting import plot_alpha  # noqa: PLC0415

        epochs, alphas = self.epoch_history
        return plot_alpha(
            epochs, alphas, self.thresholds, norms=self.get_signal(), xlabel="epoch",
            title=title, ax=ax, save_path=save_path, show=show,
        )


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


def _check_sample(sample: Any) -> float | int | None:
    if sample is None:
        return None
    if isinstance(sample, bool) or not isinstance(sample, (int, float, np.integer, np.floating)):
        msg = f"Argument `sample` must be a fraction in (0, 1) or a count >= 1, but got {sample!r}"
        raise TypeError(msg)
    if isinstance(sample, (float, np.floating)) and 0.0 < sample < 1.0:
        return float(sample)
    if isinstance(sample, (int, np.integer)) and sample >= 1:
        return int(sample)
    msg = f"Argument `sample` must be a fraction in (0, 1) or a count >= 1, but got {sample!r}"
    raise ValueError(msg)


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
