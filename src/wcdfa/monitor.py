"""The training monitors: a ring buffer of ‖ΔW‖, DFA every ``stride`` updates."""

from __future__ import annotations

import array
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa import regime as _regime
from wcdfa._buffer import SeriesBuffer
from wcdfa._checks import SNAPSHOT_MODES, check_choice, check_int
from wcdfa._dist import rank
from wcdfa._state import STATE_FORMAT, parse_state
from wcdfa._warn import warn
from wcdfa.analysis import DFAResult, check_options, dfa, with_interval
from wcdfa.errors import (
    DFAFailedWarning,
    DivergenceError,
    DivergenceWarning,
    LostSamplesWarning,
    MisuseWarning,
    NearConstantWarning,
    NotANormWarning,
    WCDFAWarning,
)
from wcdfa.export import build_rows, check_path, write_rows
from wcdfa.fluctuation import constant_reason
from wcdfa.probes.base import Event, ProbeContext

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import Tensor

    from wcdfa.tracking import DeltaTracker

__all__ = ["WeightChangeDFA"]

NORMALIZE_MODES = ("lr",)
NONFINITE_MODES = ("warn", "raise", "ignore")
METHODS = ("auto", "snapshot", "optimizer")


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
    confirm : int, default 1
        Keyword-only. A ``regime_change`` event (:attr:`events`, and a
        :class:`~wcdfa.TrainingMonitor`'s handlers) fires once a new regime holds for
        this many recomputations in a row.
    keep_norms : bool, default False
        Keyword-only. Keep every ‖ΔW‖ of the run (16 bytes a step) for :meth:`save`,
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

    ORDERED = _regime.ORDERED
    CRITICAL = _regime.CRITICAL
    DISORDERED = _regime.DISORDERED

    def __init__(
        self,
        window: int = 500,
        stride: int | None = None,
        thresholds: tuple[float, float] = _regime.DEFAULT_THRESHOLDS,
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
        confirm: int = 1,
    ) -> None:
        self.window = check_int("window", window, 50)
        self.confirm = check_int("confirm", confirm, 1)
        self.stride = max(1, self.window // 5) if stride is None else check_int("stride", stride, 1)
        self.ordered_threshold, self.disordered_threshold = _regime.check_thresholds(thresholds)
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
        self._series = SeriesBuffer(self.window)
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
        self._hooks: dict[int, tuple[Any, Any]] = {}  # id(optimizer) -> (optimizer, handle)
        self._warned: set[str] = set()  # one warning of each kind per monitor
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Clear every sample, the α history and the parameter snapshots."""
        self._series.clear()
        # Device values not yet fetched to the host: (value, weights, step) each; the
        # value holds squared norms per group (+ a validity count) or a plain norm,
        # the weights (1 / lr**2 per group, or 1 / lr) combine them.
        self._pending: list[tuple[Tensor, NDArray[np.float64] | None, int]] = []
        self._pending_kind: tuple[Any, ...] | None = None
        self._step_count = 0
        self._last_value = math.nan  # the newest finite sample: runs of zeros
        self._divergence_due: str | None = None  # raised at the next stride boundary
        # compact: 8 bytes per entry, whatever the length of the run
        self._nonfinite_steps: array.array[int] = array.array("q")
        self._nonfinite_values: array.array[float] = array.array("d")
        self._lost_steps: array.array[int] = array.array("q")
        self._skipped_steps: array.array[int] = array.array("q")
        self._result: DFAResult | None = None
        # The current α (the last of the history). An attribute, not derived: the
        # published 0.1.0 suite, our compatibility contract, assigns it directly.
        self._alpha: float | None = None
        self._alpha_history: array.array[float] = array.array("d")
        self._alpha_steps: array.array[int] = array.array("q")
        self._group_alphas: dict[str, float | None] = {}
        self._events: list[Event] = []
        self._confirmed: str | None = None  # the regime of the last regime_change event
        self._candidate: str | None = None  # the regime of the latest α, and its run
        self._candidate_count = 0
        self._norm_log: array.array[float] | None = array.array("d") if self.keep_norms else None
        self._norm_log_steps: array.array[int] = array.array("q")
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
        alpha = self.alpha
        return None if alpha is None else _regime.classify(alpha, self.thresholds)

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
        rows = self._series.group_rows()
        return {name: rows[:, i].copy() for i, name in enumerate(self._group_names)}

    @property
    def diverged(self) -> bool:
        """Whether a non-finite ‖ΔW‖ has been recorded."""
        self._flush()
        return bool(self._nonfinite_steps)

    @property
    def nonfinite_steps(self) -> list[int]:
        """Steps whose ‖ΔW‖ was NaN or infinite (left out of the window)."""
        self._flush()
        return self._nonfinite_steps.tolist()

    @property
    def lost_steps(self) -> list[int]:
        """Steps whose measured value could not be recorded (see LostSamplesWarning).

        A device value whose fetch to the host failed, or a step on which a rank took
        a new baseline of sharded parameters while the others did not (its sum over
        the ranks would miss that rank's part): every rank drops it alike.
        """
        self._flush()
        return self._lost_steps.tolist()

    @property
    def skipped_steps(self) -> list[int]:
        """Steps taken with a learning rate of 0 under ``normalize="lr"``: no sample.

        Such a step changes no weight, so ΔW / lr carries no information; it counts
        in :attr:`step_count` but adds nothing to the window (a warm-up from lr = 0).
        """
        return self._skipped_steps.tolist()

    @property
    def history_steps(self) -> list[int]:
        """The step (sample count) at which each α of :attr:`history` was computed."""
        return self._alpha_steps.tolist()

    @property
    def n_samples(self) -> int:
        """Samples currently in the window (at most ``window``)."""
        return min(self.window, self._series.filled + len(self._pending))

    @property
    def step_count(self) -> int:
        """Steps recorded since construction or the last :meth:`reset`.

        Every update after the baseline counts, also one whose value is left out of
        the window (non-finite, lost, or skipped at lr = 0).
        """
        return self._step_count

    @property
    def result(self) -> DFAResult | None:
        """The full :class:`~wcdfa.DFAResult` behind the current α (interval included).

        The interval is computed on first access after each recomputation, so it
        costs nothing to updates that do not read it.
        """
        if self._result is not None and self.ci is not None and self._result.level is None:
            self._result = with_interval(self._result, self.ci)
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

        The window (with the step of each sample), the step count, the α history,
        the recorded non-finite, lost and skipped steps, the current fit and the
        settings; not the parameter snapshot, which at resume is the model's restored
        weights (see :meth:`load_state_dict`). ``torch.save`` and
        ``torch.load(weights_only=True)`` both take it.
        """
        self._flush()
        result = None
        if self._result is not None:
            result = self._result.as_dict()
            result.update(ci_low=None, ci_high=None, level=None)
        return {
            "format": STATE_FORMAT,
            "type": type(self).__name__,
            "settings": self._settings(),
            "signal": self._series.signal().tolist(),
            "signal_steps": self._series.sample_steps().tolist(),
            "step_count": self._step_count,
            "alpha_history": self._alpha_history.tolist(),
            "alpha_steps": self._alpha_steps.tolist(),
            "nonfinite_steps": self._nonfinite_steps.tolist(),
            "nonfinite_values": self._nonfinite_values.tolist(),
            "lost_steps": self._lost_steps.tolist(),
            "skipped_steps": self._skipped_steps.tolist(),
            "group_names": self._group_names,
            "group_signals": {k: v.tolist() for k, v in self.get_group_signals().items()},
            "group_alphas": dict(self._group_alphas),
            "norms": None if self._norm_log is None else self._norm_log.tolist(),
            "norm_steps": None if self._norm_log is None else self._norm_log_steps.tolist(),
            "result": result,
            "events": [e.as_dict() for e in self._events],
            "regime_run": [self._confirmed, self._candidate, self._candidate_count],
        }

    def load_state_dict(self, state: dict[str, Any], model: Any = None) -> None:
        """Restore a :meth:`state_dict`; with ``model``, take it as the new baseline.

        The whole state is validated before anything changes: a bad state raises and
        leaves the monitor as it was.

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
            If ``state`` is not a wcdfa monitor state (naming the first bad field),
            or was saved with other settings (window, stride, thresholds, ...).
        """
        parsed = parse_state(state, self._settings(), self.window)
        self._validate_extra(state)
        self.reset()
        if parsed.group_names is not None:
            self._set_group_names(parsed.group_names)
        self._series.push(parsed.signal, parsed.signal_steps, parsed.group_signals)
        if self._norm_log is not None and parsed.norms is not None:
            self._norm_log = array.array("d", parsed.norms)
            self._norm_log_steps = array.array("q", parsed.norm_steps or [])
        self._step_count = parsed.step_count
        if parsed.signal.size:
            self._last_value = float(parsed.signal[-1])
        self._alpha_history = array.array("d", parsed.alpha_history)
        self._alpha = parsed.alpha_history[-1] if parsed.alpha_history else None
        self._alpha_steps = array.array("q", parsed.alpha_steps)
        self._nonfinite_steps = array.array("q", parsed.nonfinite_steps)
        self._nonfinite_values = array.array("d", parsed.nonfinite_values)
        self._lost_steps = array.array("q", parsed.lost_steps)
        self._skipped_steps = array.array("q", parsed.skipped_steps)
        self._group_alphas = parsed.group_alphas
        self._result = None if parsed.result is None else DFAResult(**parsed.result)
        self._events = [Event(**e) for e in parsed.events]
        self._confirmed, self._candidate, self._candidate_count = parsed.regime_run
        self._restore(state)
        if model is not None:
            from wcdfa.tracking import trainable_parameters  # noqa: PLC0415

            self._tracker("model").step(trainable_parameters(model))  # records the baseline

    def reset_snapshot(self) -> None:
        """Forget the parameter snapshots: the next model update records a baseline."""
        self._flush()
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
            "confirm": self.confirm,
        }

    def _validate_extra(self, state: dict[str, Any]) -> None:
        """Validate subclass state (nothing here); raise before anything changes."""

    def _restore(self, state: dict[str, Any]) -> None:
        """Restore subclass state validated by :meth:`_validate_extra` (nothing here)."""

    def get_signal(self) -> NDArray[np.float64]:
        """Return the window's ‖ΔW‖ samples as a new float64 array, oldest first."""
        self._flush()
        return self._series.signal()

    def get_signal_steps(self) -> NDArray[np.int64]:
        """Return the step of each sample of :meth:`get_signal` (gaps where left out)."""
        self._flush()
        return self._series.sample_steps()

    # ---------------------------------------------------------------- updates
    def update(self, model_or_norm: Any, *, optimizer: Any = None) -> WeightChangeDFA:
        """Record one weight update and recompute DFA when it is due.

        Parameters
        ----------
        model_or_norm : torch.nn.Module, float, int, numpy scalar or size-1 array, tensor
            A model: its ‖W_now − W_prev‖ over the parameters with
            ``requires_grad=True`` is recorded (the first call only records the
            baseline). A real number: recorded as given (DFA is defined on any real
            series; a negative value is kept and warned about once with
            :class:`~wcdfa.errors.NotANormWarning`; an integer beyond float64 is
            recorded as ±inf). A 0-d or 1-element tensor: kept on its device and
            fetched with the others once per ``stride``.
        optimizer : torch.optim.Optimizer, optional
            Keyword-only. The optimizer whose step produced the update: with
            ``normalize="lr"``, its learning rates divide the update. A step taken
            with a learning rate of 0 adds no sample (:attr:`skipped_steps`).

        Returns
        -------
        WeightChangeDFA
            ``self``, for chaining: ``monitor.update(model).alpha``.

        Raises
        ------
        TypeError
            If ``model_or_norm`` is none of the above.
        ValueError
            With ``normalize="lr"``: if no optimizer is known, or a number is given
            while the param groups' rates differ.
        DivergenceError
            With ``on_nonfinite="raise"`` only, once a non-finite value is recorded
            (for device tensors at the next ``stride`` boundary, the same step on
            every rank).
        """
        value = model_or_norm
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.nn.Module):
            if self._hooks:
                self._warn_once(
                    "attach+update",
                    "update(model) is called while an optimizer is attach()-ed: every "
                    "step is recorded twice. Remove update(model) from the loop, or "
                    "detach() the optimizer.",
                    MisuseWarning,
                )
            self._update_model(value, optimizer)
            return self
        if torch is not None and isinstance(value, torch.Tensor):
            norm: Any = self._user_tensor(value)
        elif isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(
            value, (bool, np.bool_)
        ):
            norm = _to_float(value)
        elif hasattr(value, "__array__") and not isinstance(value, str):
            norm = _size_one_float(value)
        else:
            msg = (
                "Argument `model_or_norm` must be a torch.nn.Module or a number (float, "
                f"int, numpy scalar, size-1 array or tensor), but got {type(value).__name__}"
            )
            raise TypeError(msg)
        lr = self._single_learning_rate(optimizer) if self.normalize == "lr" else None
        if lr == 0.0:
            self._skip()
        elif isinstance(norm, float):
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
        key = self._bind(optimizer, model)

        def hook(opt: Any, args: Any, kwargs: Any) -> None:
            self._update_optimizer(opt, key)

        handle = optimizer.register_step_post_hook(hook)
        self._hooks[id(optimizer)] = (optimizer, handle)
        return handle

    def _bind(self, optimizer: Any, model: Any) -> tuple[str, int]:
        """Set up the measurement of ``optimizer``'s steps (a snapshot takes its baseline)."""
        key = ("optimizer", id(optimizer))
        if model is not None:
            self._attached_models[key] = model
        if self._use_derived(optimizer):
            from wcdfa.derived import DerivedUpdate  # noqa: PLC0415

            self._derived[key] = DerivedUpdate(optimizer)  # no baseline needed
        else:
            self._trackers.pop(key, None)
            self._update_optimizer(optimizer, key)  # a fresh tracker: records the baseline
        return key

    # ------------------------------------------------------------ as a probe
    name = "wcdfa"
    """Prefix of the metrics and name in a :class:`~wcdfa.TrainingMonitor`."""
    every = 1
    """Schedule in a TrainingMonitor: every optimizer step."""

    @property
    def events(self) -> list[Event]:
        """Regime changes (confirmed over ``confirm`` recomputations) and divergence."""
        return list(self._events)

    def start(self, context: ProbeContext) -> None:
        """Take the baseline (:class:`~wcdfa.TrainingMonitor` calls it at attach)."""
        if context.optimizer is not None:
            if ("optimizer", id(context.optimizer)) not in self._known_sources():
                self._bind(context.optimizer, context.model)
        elif context.model is not None:
            self.update(context.model)

    def measure(self, context: ProbeContext) -> None:
        """Record the step just taken (by the optimizer's state or the model's change)."""
        if context.optimizer is not None:
            key = ("optimizer", id(context.optimizer))
            if key not in self._known_sources():
                self._bind(context.optimizer, context.model)
            self._update_optimizer(context.optimizer, key)
        elif context.model is not None:
            self.update(context.model)

    def _known_sources(self) -> set[Any]:
        return set(self._derived) | set(self._trackers)

    def _regime_events(self, alpha: float) -> None:
        """Fire ``regime_change`` once a new regime holds for ``confirm`` recomputations."""
        regime = self._classify(alpha)
        if regime == self._candidate:
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = regime, 1
        if self._candidate_count >= self.confirm and regime != self._confirmed:
            self._events.append(
                Event(
                    self._step_count,
                    self.name,
                    "regime_change",
                    {"from": self._confirmed, "to": regime, "alpha": alpha},
                )
            )
            self._confirmed = regime

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
        warn(
            f"‖ΔW‖ is measured with a parameter snapshot, not from the optimizer's state: "
            f"{reason}.",
            WCDFAWarning,
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
        self._track(
            key, params, lr_ids, lrs, self._attached_models.get(key), self._derived.get(key)
        )

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
            if not params:
                self._warn_once(
                    "no-params",
                    "No trainable parameters (requires_grad=True) to measure: nothing is "
                    "recorded until some are trainable again.",
                    WCDFAWarning,
                )
            return
        weights = None
        if lrs is not None:
            rates = np.asarray(lrs, dtype=np.float64)
            if not rates.any():  # lr = 0 everywhere: ΔW = 0 carries nothing on ΔW / lr
                self._skip()
                return
            inverse = np.divide(1.0, np.square(rates), out=np.zeros_like(rates), where=rates != 0.0)
            weights = np.tile(inverse, n_layers)
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

        if self._group_owner is None or (
            self.groups == "module" and model is not None and id(model) != self._group_model
        ):
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
        self._series.set_group_count(len(names))

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
        if value.is_complex() or value.dtype is sys.modules["torch"].bool:
            msg = f"Argument `model_or_norm` must be a real tensor, but got dtype {value.dtype}"
            raise TypeError(msg)
        if value.requires_grad:
            self._warn_once(
                "requires-grad",
                "The value passed to update() requires grad: it looks like the loss, not "
                "‖ΔW‖. Pass the model (update(model)), or a norm computed under no_grad.",
                MisuseWarning,
            )
        return value.detach().reshape(1)

    def _warn_once(self, key: str, message: str, category: type[Warning]) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warn(message, category)

    def _record(self, value: float) -> None:
        """Record one host value as the next step (the float fast path)."""
        if self._pending:
            self._flush()
        step = self._step_count = self._step_count + 1
        if self._norm_log is not None:
            self._norm_log.append(value)
            self._norm_log_steps.append(step)
        if math.isfinite(value):
            if value <= 0.0:
                self._check_sign_and_zeros(value)
            self._series.push_one(value, step)
            self._last_value = value
        else:
            self._nonfinite(step, value)
        if step % self.stride == 0:
            self._at_boundary()
        elif self._divergence_due is not None:
            self._raise_divergence()

    def _record_tensor(
        self, value: Tensor, kind: tuple[Any, ...], weights: NDArray[np.float64] | None
    ) -> None:
        """Keep a device value for the next fetch (no host synchronisation)."""
        if self._pending_kind != kind:
            self._flush()
            self._pending_kind = kind
        self._step_count += 1
        self._pending.append((value, weights, self._step_count))
        if self._step_count % self.stride == 0:
            self._at_boundary()

    def _skip(self) -> None:
        """Count a step that carries no sample (lr = 0 under normalize="lr")."""
        self._step_count += 1
        self._skipped_steps.append(self._step_count)
        if self._step_count % self.stride == 0:
            self._at_boundary()

    def _at_boundary(self) -> None:
        """Every ``stride`` steps: fetch, recompute, and raise a due DivergenceError.

        The same step on every rank, so a rank never leaves the loop alone.
        """
        self._flush()
        if self._series.filled >= self.window:
            self._recompute()
        if self._divergence_due is not None:
            self._raise_divergence()

    def _raise_divergence(self) -> None:
        msg, self._divergence_due = self._divergence_due, None
        raise DivergenceError(msg)

    def _flush(self) -> None:
        """Fetch pending device values to the host: one transfer for the batch.

        Never raises: a value that cannot be fetched is recorded in
        :attr:`lost_steps` with a warning that names the steps and the reason.
        """
        if not self._pending:
            return
        pending, kind = self._pending, self._pending_kind
        self._pending, self._pending_kind = [], None
        rows, lost, reason = _fetch([t for t, _, _ in pending])
        weights = [w for (_, w, _), bad in zip(pending, lost, strict=True) if not bad]
        all_steps = np.array([k for _, _, k in pending], dtype=np.int64)
        good = all_steps[~np.asarray(lost, dtype=bool)]
        per_group = None
        if kind is not None and kind[0] == "squares" and rows.size:
            # the last column counts tensors some rank had no baseline for (sharded)
            out_of_step = rows[:, -1] > 0
            if out_of_step.any():
                self._lose(
                    good[out_of_step],
                    "a rank took a new baseline of sharded "
                    "parameters while others did not (reset or load_state_dict on "
                    "one rank): the sum over the ranks misses its part",
                )
                keep = ~out_of_step
                rows, good = rows[keep], good[keep]
                weights = [w for w, k in zip(weights, keep, strict=True) if k]
            rows = rows[:, :-1]
            if weights and weights[0] is not None:
                rows = rows * np.stack(weights)  # type: ignore[arg-type]
            norms = np.sqrt(rows.sum(axis=1))
            if self._group_names is not None:  # (steps, layers): sum over lr groups
                per_group = np.sqrt(rows.reshape(rows.shape[0], -1, kind[2]).sum(axis=2))
        else:
            norms = rows[:, 0] if rows.size else np.empty(0)
            if weights and weights[0] is not None:
                norms = norms * np.concatenate(weights)  # type: ignore[arg-type]
        if any(lost):
            self._lose(all_steps[np.asarray(lost, dtype=bool)], reason)
        self._push(norms, good, per_group)

    def _lose(self, steps: NDArray[np.int64], reason: str) -> None:
        self._lost_steps.extend(steps.tolist())
        shown = ", ".join(map(str, steps[:5].tolist())) + (", ..." if steps.size > 5 else "")
        warn(
            f"{steps.size} measured value(s) could not be recorded (steps {shown}): "
            f"{reason}. They are listed in `lost_steps` and left out of α.",
            LostSamplesWarning,
        )

    def _push(
        self,
        values: NDArray[np.float64],
        steps: NDArray[np.int64],
        group_values: NDArray[np.float64] | None = None,
    ) -> None:
        """Record fetched samples: non-finite ones are logged and left out of the window."""
        if not values.size:
            return
        if self._norm_log is not None:
            self._norm_log.extend(values.tolist())
            self._norm_log_steps.extend(steps.tolist())
        finite = np.isfinite(values)
        if not finite.all():
            for step, value in zip(steps[~finite].tolist(), values[~finite].tolist(), strict=True):
                self._nonfinite(step, value)
            values, steps = values[finite], steps[finite]
            group_values = None if group_values is None else group_values[finite]
        if not values.size:
            return
        if values.min() <= 0.0:
            self._check_sign_and_zeros(values)
        self._series.push(values, steps, group_values)
        self._last_value = float(values[-1])

    def _check_sign_and_zeros(self, values: float | NDArray[np.float64]) -> None:
        """Warn once for negative values and once for runs of exact zeros."""
        arr = np.atleast_1d(values)
        if (arr < 0).any():
            self._warn_once(
                "negative",
                f"A negative value ({float(arr[arr < 0][0])!r}) was recorded: it is not a "
                "weight-update norm. It is kept as given (DFA is defined on any real "
                "series); warned once.",
                NotANormWarning,
            )
        zero = np.concatenate(([self._last_value == 0.0], arr == 0.0))
        if (zero[1:] & zero[:-1]).any():
            self._warn_once(
                "zeros",
                "Runs of exact zeros in ‖ΔW‖: the weights did not change between "
                "updates. Is update() called between the micro-batches of gradient "
                "accumulation? Call it after optimizer.step() only (or use attach()).",
                MisuseWarning,
            )

    def _nonfinite(self, step: int, value: float) -> None:
        """Record (and report) a non-finite sample; a DivergenceError becomes due."""
        if not self._nonfinite_steps:
            self._events.append(Event(step, self.name, "diverged", {"value": str(value)}))
        self._nonfinite_steps.append(step)
        self._nonfinite_values.append(value)
        if self.on_nonfinite == "warn":
            self._warn_once(
                "nonfinite",
                f"Non-finite weight-update norm at step {step}: training has "
                "diverged. The sample is recorded in `nonfinite_steps` and left out of α; "
                "`diverged` is now True (warned once).",
                DivergenceWarning,
            )
        elif self.on_nonfinite == "raise" and self._divergence_due is None:
            self._divergence_due = (
                f"Non-finite weight-update norm at step {step}: training diverged "
                "(on_nonfinite='raise'); every sample is recorded"
            )

    def _recompute(self) -> None:
        """Run DFA on the full window; on failure warn and keep the last α."""
        signal = self._series.signal()
        reason = constant_reason(signal)
        if reason is not None:
            warn(
                f"Weight-update magnitudes are near-constant ({reason}): the model may "
                "have converged or stopped learning; keeping the last α.",
                NearConstantWarning,
            )
            return
        try:
            result = dfa(signal, order=self.order, aggregate=self.aggregate, ci=None)
        except ValueError as exc:
            warn(f"DFA computation failed: {exc}", DFAFailedWarning)
            return
        self._result = result
        self._group_alphas = self._compute_group_alphas()
        self._alpha = result.alpha
        self._alpha_history.append(result.alpha)
        self._alpha_steps.append(self._step_count)
        self._regime_events(result.alpha)

    # ------------------------------------------------------------------ sinks
    @property
    def norm_name(self) -> str:
        """Name of the recorded quantity: ``delta_norm``, or ``delta_norm_per_lr``."""
        return "delta_norm_per_lr" if self.normalize == "lr" else "delta_norm"

    def metrics(self, prefix: str = "wcdfa/") -> dict[str, float]:
        """Return the numbers every sink logs, keyed ``prefix + name``.

        ``delta_norm`` (the latest ‖ΔW‖; ``delta_norm_per_lr`` under
        ``normalize="lr"``, since it is then ‖ΔW‖ / lr) is there once a sample exists;
        ``alpha``, ``regime`` (2 ordered, 1 critical, 0 disordered), ``r_squared`` and
        the interval ``alpha_ci_low`` / ``alpha_ci_high`` once α exists. Reading it
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
            out[prefix + "regime"] = float(_regime.REGIME_CODES[self._classify(alpha)])
            out[prefix + "r_squared"] = float(self.r_squared or 0.0)
            ci = self.alpha_ci
            if ci is not None:
                out[prefix + "alpha_ci_low"], out[prefix + "alpha_ci_high"] = ci
            for name, group_alpha in self._group_alphas.items():
                if group_alpha is not None:
                    out[f"{prefix}alpha/{name}"] = group_alpha
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
        current α only), ``regime``; empty (CSV) or null (JSON) where unknown. The
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

    def _norm_record(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Return the steps and values of every known norm, non-finite ones included."""
        self._flush()
        if self._norm_log is not None:
            return (
                np.frombuffer(self._norm_log_steps, dtype=np.int64),
                np.frombuffer(self._norm_log, dtype=np.float64),
            )
        steps, values = self._series.sample_steps(), self._series.signal()
        if steps.size and self._nonfinite_steps:
            bad = np.frombuffer(self._nonfinite_steps, dtype=np.int64)
            inside = bad >= steps[0]
            steps = np.concatenate((steps, bad[inside]))
            values = np.concatenate((values, np.frombuffer(self._nonfinite_values)[inside]))
            order = np.argsort(steps, kind="stable")
            steps, values = steps[order], values[order]
        return steps, values

    def _rows(self) -> list[dict[str, Any]]:
        steps, values = self._norm_record()
        alphas = self._alpha_history.tolist()
        intervals: list[tuple[float, float] | None] = [None] * len(alphas)
        if alphas and self.ci is not None and self._result is not None:
            from wcdfa.uncertainty import confidence_interval, has_table  # noqa: PLC0415

            r = self._result
            if has_table(r.min_box, r.max_box, r.num_scales, r.order, r.aggregate):
                low, high = confidence_interval(
                    np.array(alphas),
                    r.n,
                    self.ci,
                    min_box=r.min_box,
                    max_box=r.max_box,
                    num_scales=r.num_scales,
                    order=r.order,
                    aggregate=r.aggregate,
                )
                intervals = list(zip(low.tolist(), high.tolist(), strict=True))
            else:
                intervals[-1] = self.alpha_ci
        return build_rows(
            zip(steps.tolist(), values.tolist(), strict=True),
            [(k, a, self._classify(a)) for k, a in zip(self._alpha_steps, alphas, strict=True)],
            intervals,
            self.norm_name,
        )

    def describe(self) -> str:
        """Say in a sentence what the current α means for this run, and how sure it is.

        The regime and what it means, whether the interval lies inside that regime's
        band or reaches across a threshold, and whether the log-log fit is clean.
        """
        alpha = self.alpha
        if alpha is None:
            return f"No α yet ({self._not_ready()})."
        regime = self._classify(alpha)
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
            f"(R²={self.r_squared:.3f}, step {self._step_count})"
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
        write_scalars(writer, self.metrics(), self._step_count if step is None else step, texts)

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

        norm_steps, norms = self._norm_record()
        return plot_alpha(
            np.array(self._alpha_steps),
            np.array(self._alpha_history, dtype=float),
            self.thresholds,
            norms=norms,
            norm_steps=norm_steps,
            title=title,
            ax=ax,
            save_path=save_path,
            show=show,
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
        rows = self._series.group_rows()
        out: dict[str, float | None] = {}
        for name, column in zip(self._group_names, rows.T, strict=True):
            alpha = None
            if np.all(np.isfinite(column)) and constant_reason(column) is None:
                try:
                    alpha = dfa(column, order=self.order, aggregate=self.aggregate, ci=None).alpha
                except ValueError:
                    alpha = None
            out[name] = alpha
        return out

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


def _to_float(value: Any) -> float:
    """``float(value)``; an integer beyond float64 overflows to ±inf, as arithmetic would."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _fetch(tensors: list[Tensor]) -> tuple[NDArray[np.float64], list[bool], str]:
    """Rows of the fetched values, which tensors were lost, and why (one transfer).

    If the batch cannot be fetched (a device error), each tensor is tried alone and
    whatever can be read is kept.
    """
    import torch  # noqa: PLC0415 - pending tensors mean torch is loaded

    try:
        if len({t.device for t in tensors}) > 1:
            tensors = [t.cpu() for t in tensors]
        rows = torch.stack(tensors).to("cpu", torch.float64).numpy()
        return rows.reshape(len(tensors), -1), [False] * len(tensors), ""
    except Exception as exc:  # a fetch failure must not end training
        reason = f"fetching them failed ({type(exc).__name__}: {exc})"
    good: list[NDArray[np.float64]] = []
    lost: list[bool] = []
    for t in tensors:
        try:
            good.append(t.to("cpu", torch.float64).numpy().reshape(-1))
            lost.append(False)
        except Exception:
            lost.append(True)
    rows = np.stack(good) if good else np.empty((0, tensors[0].numel()))
    return rows, lost, reason


def _size_one_float(value: Any) -> float:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size != 1:
        msg = (
            "Argument `model_or_norm` must be a number or a size-1 numeric array, but got "
            f"an array of dtype {arr.dtype} and shape {arr.shape}"
        )
        raise TypeError(msg)
    return float(arr.reshape(()))
