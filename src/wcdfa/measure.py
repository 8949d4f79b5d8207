"""‖ΔW‖ measurers behind one interface: a parameter snapshot or the optimizer's state.

:class:`UpdateMeasurer` owns everything torch about measuring an update: the
snapshot trackers (one per model or attached optimizer), the optimizer-state
derivations, the optimizer hooks, the learning rates (``normalize="lr"``) and the
grouping of parameters (``groups=``). It hands each step's squared norms, still on
the device, to its ``record`` callback; a step taken at lr = 0 to ``skip``. torch is
imported only when a model or an optimizer arrives.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from wcdfa._warn import warn
from wcdfa.errors import WCDFAWarning

if TYPE_CHECKING:
    from wcdfa.tracking import DeltaTracker

__all__ = ["AUTO_MEMORY_SHARE", "METHODS", "UpdateMeasurer", "auto_rule", "check_optimizer"]

METHODS = ("auto", "snapshot", "optimizer")


class UpdateMeasurer:
    """Measure models' and attached optimizers' updates; deliver squared norms.

    Parameters
    ----------
    snapshot, sample, method, normalize, groups
        As :class:`wcdfa.WeightChangeDFA` (validated there).
    record : callable
        ``record(squares, kind, weights)`` with ``squares`` a device tensor of squared
        norms per group followed by a validity count, ``kind`` ``("squares", groups,
        lr groups, per layer group)`` and ``weights`` the per-group factors or None.
    skip : callable
        Called for a step taken at lr = 0 everywhere (``normalize="lr"``).
    warn_once : callable
        ``warn_once(key, message, category)``.
    on_groups : callable
        Called with the names of the parameter groups once they are known.
    """

    def __init__(
        self,
        *,
        snapshot: str,
        sample: float | None,
        method: str,
        normalize: str | None,
        groups: Any,
        record: Callable[..., Any],
        skip: Callable[[], Any],
        warn_once: Callable[[str, str, type[Warning]], None],
        on_groups: Callable[[list[str]], None],
    ) -> None:
        self.snapshot, self.sample, self.method = snapshot, sample, method
        self.normalize, self.groups = normalize, groups
        self.record, self.skip, self.warn_once, self.on_groups = record, skip, warn_once, on_groups
        self.trackers: dict[Any, DeltaTracker] = {}
        self.derived: dict[Any, Any] = {}  # attached optimizers measured from their state
        self.models: dict[Any, Any] = {}  # the model of an attached optimizer (groups)
        self.hooks: dict[int, tuple[Any, Any]] = {}  # id(optimizer) -> (optimizer, handle)
        self.auto_choice: str | None = None  # what method="auto" chose, and why
        self.group_names: list[str] | None = None
        self.group_owner: dict[int, int] | None = None
        self.group_model: int | None = None
        self._align = False  # a probe asked for the next step's update-gradient alignment
        self._alignment: Any = None
        self._aligned_once = False  # the first alignment collective checks the ranks

    def request_alignment(self) -> None:
        """Also form the next measured step's update-gradient alignment (:mod:`wcdfa.alignment`)."""
        self._align, self._alignment = True, None

    def take_alignment(self) -> Any:
        """Return the :class:`~wcdfa.alignment.UpdateAlignment` formed since the request, once."""
        alignment, self._alignment, self._align = self._alignment, None, False
        return alignment

    def reset(self) -> None:
        """Forget every snapshot: the next measurement of each source is a baseline."""
        for tracker in self.trackers.values():
            tracker.reset()

    @property
    def snapshot_bytes(self) -> int:
        """Bytes held for parameter snapshots."""
        return sum(t.snapshot_bytes for t in self.trackers.values())

    @property
    def method_in_use(self) -> str | None:
        """``"optimizer-state"``, ``"snapshot"``, both joined by ``+``, or ``None``."""
        used = ["snapshot"] * bool(self.trackers) + ["optimizer-state"] * bool(self.derived)
        return "+".join(used) or None

    def set_group_names(self, names: list[str]) -> None:
        """Name the parameter groups (also when restored from a state)."""
        self.group_names = names
        self.on_groups(names)

    # ---------------------------------------------------------------- sources
    def attach(self, optimizer: Any, model: Any) -> Any:
        """Measure after every real step of ``optimizer`` (a step post-hook)."""
        if id(optimizer) in self.hooks:
            return self.hooks[id(optimizer)][1]
        if self.groups == "module" and model is None:
            msg = (
                "Argument `model` is needed with groups='module' (it names the groups): "
                "attach(optimizer, model=model)"
            )
            raise ValueError(msg)
        self.bind(optimizer, model)

        def hook(opt: Any, args: Any, kwargs: Any) -> None:
            self.measure_optimizer(opt)

        handle = optimizer.register_step_post_hook(hook)
        self.hooks[id(optimizer)] = (optimizer, handle)
        return handle

    def detach(self) -> None:
        """Remove every hook added by :meth:`attach`, and its measurement."""
        for optimizer, handle in self.hooks.values():
            handle.remove()
            for table in (self.trackers, self.derived, self.models):
                table.pop(("optimizer", id(optimizer)), None)
        self.hooks.clear()

    def is_bound(self, optimizer: Any) -> bool:
        """Whether ``optimizer``'s steps are measured (attached, or bound by a host)."""
        key = ("optimizer", id(optimizer))
        return key in self.derived or key in self.trackers

    def bind(self, optimizer: Any, model: Any) -> None:
        """Set up the measurement of ``optimizer``'s steps (a snapshot takes its baseline)."""
        key = ("optimizer", id(optimizer))
        if model is not None:
            self.models[key] = model
        if self._use_derived(optimizer):
            from wcdfa.derived import DerivedUpdate  # noqa: PLC0415

            self.derived[key] = DerivedUpdate(optimizer)  # no baseline needed
        else:
            self.trackers.pop(key, None)
            self.measure_optimizer(optimizer)  # a fresh tracker: records the baseline

    def _use_derived(self, optimizer: Any) -> bool:
        """Whether ``optimizer``'s updates can be derived from its state; say why not."""
        if self.method == "snapshot" or self.sample is not None:
            return False
        from wcdfa.derived import unsupported_reason  # noqa: PLC0415

        reason = unsupported_reason(optimizer)
        if reason is not None:
            warn(
                f"‖ΔW‖ is measured with a parameter snapshot, not from the optimizer's state: "
                f"{reason}.",
                WCDFAWarning,
            )
            return False
        if self.method == "auto":
            self.auto_choice = auto_rule(optimizer)
            return self.auto_choice.startswith("optimizer-state")
        return True

    # ------------------------------------------------------------ measuring
    def measure_model(self, model: Any, optimizer: Any) -> None:
        """Measure the change of ``model``'s trainable parameters since the last call."""
        from wcdfa.params import (  # noqa: PLC0415 - torch is loaded
            learning_rates,
            model_groups,
            trainable_parameters,
        )

        if self.normalize != "lr":
            self._track("model", trainable_parameters(model), None, None, model)
        else:
            optimizer = self.known_optimizer(optimizer)
            params, lr_ids, _ = model_groups(model, optimizer)
            self._track("model", params, lr_ids, [*learning_rates(optimizer), 1.0], model)

    def measure_optimizer(self, optimizer: Any) -> None:
        """Measure the step ``optimizer`` just took."""
        from wcdfa.params import learning_rates, optimizer_groups  # noqa: PLC0415

        key = ("optimizer", id(optimizer))
        params, lr_ids = optimizer_groups(optimizer)
        lrs = learning_rates(optimizer) if self.normalize == "lr" else None
        self._track(key, params, lr_ids, lrs, self.models.get(key), self.derived.get(key))

    def baseline(self, model: Any) -> None:
        """Take ``model``'s trainable parameters as the snapshot (after a resume)."""
        from wcdfa.params import trainable_parameters  # noqa: PLC0415

        self._tracker("model").step(trainable_parameters(model))

    def _track(
        self,
        key: Any,
        params: list[Any],
        lr_ids: list[int] | None,
        lrs: list[float] | None,
        model: Any,
        derived: Any = None,
    ) -> None:
        """Measure ``params`` with the source ``key``; deliver the squared norms.

        The squares are summed per (layer group, learning-rate group): one group
        unless ``groups=`` or ``normalize="lr"`` ask for more.
        """
        n_lr = 1 if lrs is None else len(lrs)
        layer_ids = self._layer_ids(params, model)
        n_layers = 1 if self.group_names is None else len(self.group_names)
        if lrs is None or lr_ids is None:
            ids = layer_ids
        else:
            ids = [layer * n_lr + g for layer, g in zip(layer_ids, lr_ids, strict=True)]
        if self._align:  # before the snapshot is refreshed
            self._align = False
            self._alignment = self._aligned(key, params, derived)
        if derived is not None:
            squares = derived.step(ids, n_layers * n_lr)
        else:
            squares = self._tracker(key).step(params, ids, n_layers * n_lr)
        if squares is None:
            if not params:
                self.warn_once(
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
                self.skip()
                return
            inverse = np.divide(1.0, np.square(rates), out=np.zeros_like(rates), where=rates != 0.0)
            weights = np.tile(inverse, n_layers)
        kind = ("squares", n_layers * n_lr, n_lr, self.group_names is not None)
        self.record(squares, kind, weights)

    def _aligned(self, key: Any, params: list[Any], derived: Any) -> Any:
        from wcdfa import alignment  # noqa: PLC0415 - torch is loaded

        check, self._aligned_once = not self._aligned_once, True
        if derived is not None:
            return alignment.from_optimizer(derived, params, check)
        tracker = self.trackers.get(key)
        return None if tracker is None else alignment.from_snapshot(tracker, params, check)

    def _tracker(self, key: Any) -> DeltaTracker:
        """Return the snapshot tracker for ``key`` (the model, or an attached optimizer)."""
        tracker = self.trackers.get(key)
        if tracker is None:
            from wcdfa.tracking import DeltaTracker  # noqa: PLC0415 - torch is loaded

            tracker = self.trackers[key] = DeltaTracker(self.snapshot, self.sample)
        return tracker

    def _layer_ids(self, params: list[Any], model: Any) -> list[int]:
        """Group index of each parameter under ``groups=`` (all 0 without it)."""
        if self.groups is None:
            return [0] * len(params)
        from wcdfa.params import layer_names  # noqa: PLC0415

        if self.group_owner is None or (
            self.groups == "module" and model is not None and id(model) != self.group_model
        ):
            names, owner = layer_names(self.groups, model)
            if self.group_names is not None and names != self.group_names:
                msg = (
                    "Argument `groups`: the parameter groups changed between updates "
                    f"({self.group_names} then {names}); use one model per monitor"
                )
                raise ValueError(msg)
            self.set_group_names(names)
            self.group_owner, self.group_model = owner, id(model)
        other = len(self.group_names or []) - 1
        return [self.group_owner.get(id(p), other) for p in params]

    # -------------------------------------------------------- learning rates
    def known_optimizer(self, optimizer: Any) -> Any:
        """``optimizer``, or the one attached optimizer; else say what is missing."""
        if optimizer is not None:
            return optimizer
        if len(self.hooks) == 1:
            return next(iter(self.hooks.values()))[0]
        msg = (
            "Argument `optimizer` is needed with normalize='lr' (the learning rate "
            "divides each update): attach(optimizer) or pass update(..., optimizer=opt)"
        )
        raise ValueError(msg)

    def single_learning_rate(self, optimizer: Any) -> float:
        """Return the one learning rate to divide a number by (``normalize="lr"``)."""
        from wcdfa.params import learning_rates  # noqa: PLC0415 - torch is loaded

        rates = set(learning_rates(self.known_optimizer(optimizer)))
        if len(rates) != 1:
            msg = (
                "Argument `optimizer` must have one learning rate to normalise a number "
                f"by, but its param groups have {sorted(rates)}; pass the model instead, "
                "so that each group is divided by its own rate"
            )
            raise ValueError(msg)
        (lr,) = rates
        return lr


AUTO_MEMORY_SHARE = 0.25
"""``method="auto"`` keeps a CPU snapshot only while it takes at most this share of the
memory available when the optimizer is attached."""


def auto_rule(optimizer: Any) -> str:
    """Return the method ``method="auto"`` uses for a supported optimizer, and why.

    On accelerators: the optimizer's state (no snapshot; its kernels are
    bandwidth-bound, like the snapshot's). On the CPU the derivation costs 2-4x the
    snapshot (several passes with temporaries instead of three; see
    docs/performance.md), so the snapshot is used while its copy of the trainable
    parameters fits in :data:`AUTO_MEMORY_SHARE` of the available memory, and the
    optimizer's state beyond.
    """
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    if any(p.device.type != "cpu" for p in params):
        return "optimizer-state (accelerator: no snapshot)"
    needed = sum(p.numel() * p.element_size() for p in params)
    available = _available_memory()
    if available is not None and needed > AUTO_MEMORY_SHARE * available:
        return (
            f"optimizer-state (CPU: a snapshot of {needed / 2**20:.0f} MiB would take over "
            f"{AUTO_MEMORY_SHARE:.0%} of the {available / 2**20:.0f} MiB available)"
        )
    return f"snapshot (CPU: 2-4x faster than the derivation; {needed / 2**20:.1f} MiB held)"


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux, macOS), or None where unknown."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_optimizer(optimizer: Any) -> None:
    """Raise ``TypeError`` unless ``optimizer`` is a torch optimizer (torch not imported)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(optimizer, torch.optim.Optimizer):
        msg = (
            "Argument `optimizer` must be a torch.optim.Optimizer, but got "
            f"{type(optimizer).__name__}"
        )
        raise TypeError(msg)
