"""The weight-change DFA monitor: ‖ΔW‖ per step into a window, DFA every ``stride``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from wcdfa import regime as _regime
from wcdfa._checks import (
    size_one_float,
    to_float,
)
from wcdfa._state import STATE_FORMAT, parse_state
from wcdfa.alphas import AlphaTrack
from wcdfa.errors import MisuseWarning
from wcdfa.measure import UpdateMeasurer, check_optimizer
from wcdfa.probes.base import ProbeContext
from wcdfa.readings import MonitorReadings
from wcdfa.recorder import SeriesRecorder
from wcdfa.report import MonitorOutput
from wcdfa.settings import MonitorSettings
from wcdfa.tags import check_tag
from wcdfa.tags import parse as parse_tags

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["WeightChangeDFA"]


class WeightChangeDFA(MonitorReadings, MonitorOutput):
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
        tensors)); ``"snapshot"`` keeps a copy of the parameters; ``"auto"`` decides
        by :func:`wcdfa.measure.auto_rule` (the faster snapshot on the CPU while it
        fits in a quarter of the available memory, else the derivation) and says why
        in ``method_reason``. An unsupported optimizer or option falls back to the
        snapshot with a :class:`~wcdfa.errors.WCDFAWarning` saying why.
        ``update(model)`` always uses the snapshot.
    min_box, max_box, num_scales, scales, boxes : optional
        Keyword-only. The boxes of the DFA, as :func:`wcdfa.dfa` takes them (explicit
        ``scales`` must be smaller than ``window``). The interval uses the shipped
        belt for the defaults and the bootstrap otherwise.
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
    name = "wcdfa"
    """Prefix of the metrics, and the name in a :class:`~wcdfa.TrainingMonitor`."""
    every = 1
    """Schedule in a TrainingMonitor: every optimizer step."""

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
        min_box: int | None = None,
        max_box: int | None = None,
        num_scales: int | None = None,
        scales: Any = None,
        boxes: str = "both",
    ) -> None:
        self.settings = MonitorSettings(
            window=window, stride=stride, thresholds=thresholds, order=order,
            aggregate=aggregate, ci=ci, normalize=normalize, keep_norms=keep_norms,
            on_nonfinite=on_nonfinite, sample=sample, method=method, confirm=confirm,
            min_box=min_box, max_box=max_box, num_scales=num_scales, scales=scales,
            boxes=boxes, snapshot=snapshot,
        )  # fmt: skip
        if groups is not None and groups != "module" and not hasattr(groups, "items"):
            msg = (
                "Argument `groups` must be None, 'module' or a mapping name -> parameters, "
                f"but got {groups!r}"
            )
            raise ValueError(msg)
        self.groups = groups
        self.recorder = SeriesRecorder(
            self.window, self.stride, self.on_nonfinite, self.keep_norms, self.name
        )
        self.track = AlphaTrack(self.settings, self.name)
        self.measurer = UpdateMeasurer(
            snapshot=self.snapshot,
            sample=self.sample,
            method=self.method,
            normalize=self.normalize,
            groups=groups,
            record=self._record_tensor,
            skip=self._skip,
            warn_once=self.recorder.warn_once,
            on_groups=lambda names: self.recorder.series.set_group_count(len(names)),
        )
        self.reset()

    def reset(self) -> None:
        """Clear every sample, the α history and the parameter snapshots."""
        self.recorder.reset()
        self.measurer.reset()
        self.track.reset()
        # The current α (the last of the history). An attribute, not derived: the
        # published 0.1.0 suite, our compatibility contract, assigns it directly.
        self._alpha: float | None = None

    # ------------------------------------------------------------ readings
    @property
    def alpha(self) -> float | None:
        """Current DFA exponent, or ``None`` before the first computation."""
        return self._alpha

    # ---------------------------------------------------------------- updates
    def update(
        self, model_or_norm: Any, *, optimizer: Any = None, tag: str | None = None
    ) -> WeightChangeDFA:
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
        tag : str, optional
            Keyword-only. Tag this step (``"gap"`` for a perturbation step): as
            :meth:`mark` just before it.

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
        if tag is not None:
            self.mark(tag)
        value = model_or_norm
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.nn.Module):
            if self.measurer.hooks:
                self.recorder.warn_once(
                    "attach+update",
                    "update(model) is called while an optimizer is attach()-ed: every "
                    "step is recorded twice. Remove update(model) from the loop, or "
                    "detach() the optimizer.",
                    MisuseWarning,
                )
            self.measurer.measure_model(value, optimizer)
            return self
        if torch is not None and isinstance(value, torch.Tensor):
            norm: Any = self._user_tensor(value)
        elif isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(
            value, (bool, np.bool_)
        ):
            norm = to_float(value)
        elif hasattr(value, "__array__") and not isinstance(value, str):
            norm = size_one_float(value)
        else:
            msg = (
                "Argument `model_or_norm` must be a torch.nn.Module or a number (float, "
                f"int, numpy scalar, size-1 array or tensor), but got {type(value).__name__}"
            )
            raise TypeError(msg)
        lr = (
            self.measurer.single_learning_rate(optimizer)
            if self.settings.normalize == "lr"
            else None
        )
        if lr == 0.0:
            self._skip()
        elif isinstance(norm, float):
            if self.recorder.record(norm if lr is None else norm / lr):
                self._at_boundary()
            self.recorder.raise_if_due()  # a number is known at once, on every rank
        else:
            weights = None if lr is None else np.array([1.0 / lr])
            self._record_tensor(norm, ("norm", 1, 1, False), weights)
        return self

    def mark(self, tag: str) -> None:
        """Tag the next recorded step (a perturbation: ``"gap"``); see :attr:`alpha_clean`.

        With an :meth:`attach`-ed optimizer, call it before ``optimizer.step()``.
        Tagged steps stay in the window and in :attr:`alpha`; :attr:`alpha_clean` is
        the α of the last ``window`` untagged steps, and :attr:`tagged_steps` lists the
        steps of each tag.
        """
        self.recorder.tags.next.add(check_tag(tag))

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
        check_optimizer(optimizer)
        return self.measurer.attach(optimizer, model)

    def detach(self) -> None:
        """Remove every optimizer hook added by :meth:`attach`."""
        self.measurer.detach()

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
            self.recorder.warn_once(
                "requires-grad",
                "The value passed to update() requires grad: it looks like the loss, not "
                "‖ΔW‖. Pass the model (update(model)), or a norm computed under no_grad.",
                MisuseWarning,
            )
        return value.detach().reshape(1)

    def _record_tensor(
        self, value: Tensor, kind: tuple[Any, ...], weights: NDArray[np.float64] | None
    ) -> None:
        if self.recorder.record_tensor(value, kind, weights):
            self._at_boundary()

    def _skip(self) -> None:
        if self.recorder.skip():
            self._at_boundary()

    def _at_boundary(self) -> None:
        """Every ``stride`` steps: fetch, recompute, and raise a due DivergenceError.

        The same step on every rank, so a rank never leaves the loop alone.
        """
        self.recorder.flush()
        if self.recorder.series.filled >= self.settings.window:
            self._recompute()
        self.recorder.raise_if_due()

    def _recompute(self) -> None:
        """Run DFA on the full window; on failure warn and keep the last α."""
        series = self.recorder.series
        alpha = self.track.recompute(
            series.signal(),
            series.group_rows(),
            self.measurer.group_names,
            self.step_count,
            self.recorder.events,
        )
        if alpha is not None:
            self._alpha = alpha
        tags = self.recorder.tags
        if tags.clean is not None and tags.clean.filled >= self.settings.window:
            clean = self.track.plain_alpha(tags.clean.signal())
            if clean is not None:
                tags.history.append(clean)
                tags.history_steps.append(self.step_count)

    # ------------------------------------------------------------ as a probe
    def start(self, context: ProbeContext) -> None:
        """Take the baseline (:class:`~wcdfa.TrainingMonitor` calls it at attach)."""
        if context.optimizer is not None:
            if not self.measurer.is_bound(context.optimizer):
                self.measurer.bind(context.optimizer, context.model)
        elif context.model is not None:
            self.update(context.model)

    def measure(self, context: ProbeContext) -> None:
        """Record the step just taken (by the optimizer's state or the model's change)."""
        if context.optimizer is not None:
            if not self.measurer.is_bound(context.optimizer):
                self.measurer.bind(context.optimizer, context.model)
            self.measurer.measure_optimizer(context.optimizer)
        elif context.model is not None:
            self.update(context.model)

    # ------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Return the monitor's state as plain Python values (checkpoint-safe).

        The window (with the step of each sample), the step count, the α history,
        the recorded non-finite, lost and skipped steps, the events, the current fit
        and the settings; not the parameter snapshot, which at resume is the model's
        restored weights (see :meth:`load_state_dict`). ``torch.save`` and
        ``torch.load(weights_only=True)`` both take it.
        """
        self.recorder.flush()
        return {
            "format": STATE_FORMAT,
            "type": type(self).__name__,
            "settings": self._settings(),
            **self.recorder.state(),
            "group_names": self.measurer.group_names,
            "group_signals": {k: v.tolist() for k, v in self.get_group_signals().items()},
            **self.track.state(),
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
        tag_state = parse_tags(state, parsed.step_count, self.window)
        self._validate_extra(state)
        self.reset()
        if parsed.group_names is not None:
            self.measurer.set_group_names(parsed.group_names)
        self.recorder.restore(parsed)
        self.recorder.tags.restore(tag_state)
        self.track.restore(
            parsed.alpha_history,
            parsed.alpha_steps,
            parsed.group_alphas,
            parsed.result,
            parsed.regime_run,
        )
        self._alpha = parsed.alpha_history[-1] if parsed.alpha_history else None
        self._restore(state)
        if model is not None:
            self.measurer.baseline(model)

    def reset_snapshot(self) -> None:
        """Forget the parameter snapshots: the next model update records a baseline."""
        self.recorder.flush()
        self.measurer.reset()

    def __getattr__(self, name: str) -> Any:
        """Read a setting (``window``, ``stride``, ``order``, ...) from :attr:`settings`."""
        if name != "settings" and name in MonitorSettings.__dataclass_fields__:
            return getattr(self.settings, name)
        msg = f"{type(self).__name__!r} object has no attribute {name!r}"
        raise AttributeError(msg)

    def _settings(self) -> dict[str, Any]:
        return self.settings.as_state()

    def _validate_extra(self, state: dict[str, Any]) -> None:
        """Validate subclass state (nothing here); raise before anything changes."""

    def _restore(self, state: dict[str, Any]) -> None:
        """Restore subclass state validated by :meth:`_validate_extra` (nothing here)."""
