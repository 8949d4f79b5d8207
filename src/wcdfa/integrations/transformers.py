"""Hugging Face ``transformers`` callback: α in the Trainer's logs.

from wcdfa.integrations.transformers import WeightChangeDFACallback
callback = WeightChangeDFACallback(window=500)
trainer = Trainer(model=model, args=args, train_dataset=data)
callback.install(trainer)   # first in line, so every report_to backend sees α
trainer.train()
"""

from __future__ import annotations

import importlib
from typing import Any

from wcdfa.monitor import WeightChangeDFA
from wcdfa.probes.base import event_counts
from wcdfa.regime import DEFAULT_THRESHOLDS

try:
    _TrainerCallback: type = importlib.import_module("transformers").TrainerCallback
except ImportError as exc:  # pragma: no cover - exercised without transformers
    msg = "transformers is required for this callback; install it with: pip install transformers"
    raise ImportError(msg) from exc

__all__ = ["WeightChangeDFACallback"]


class WeightChangeDFACallback(_TrainerCallback):  # type: ignore[misc]
    """Record ‖ΔW‖ at every optimizer step; add α to every ``Trainer.log`` call.

    Parameters
    ----------
    window, stride, thresholds
        As :class:`wcdfa.WeightChangeDFA`.
    monitor : TrainingMonitor or WeightChangeDFA, optional
        Keyword-only. Use this monitor (e.g. a :class:`wcdfa.TrainingMonitor` with
        several probes) instead of building a WeightChangeDFA from the options.
    **monitor_options
        Further keyword arguments of :class:`wcdfa.WeightChangeDFA`.

    Notes
    -----
    When training begins the monitor is attached to the Trainer's optimizer (the
    baseline is taken then): each real optimizer step records, micro-batches of
    gradient accumulation and steps skipped by mixed-precision overflow do not. In
    ``on_log`` the keys ``wcdfa/alpha``, ``wcdfa/regime`` (2 ordered, 1 critical, 0
    disordered), ``wcdfa/delta_norm`` and the interval are added to the logs and to
    ``trainer.state.log_history``, on the main process only.

    The Trainer hands ``on_log`` to its callbacks in order, and puts its ``report_to``
    integrations before the callbacks passed by the user: use :meth:`install` (or
    pass the callback and move it first yourself) so that those backends receive the
    keys too.
    """

    def __init__(
        self,
        window: int = 500,
        stride: int | None = None,
        thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
        *,
        monitor: Any = None,
        **monitor_options: Any,
    ) -> None:
        self.monitor: Any = (
            WeightChangeDFA(window, stride, thresholds, **monitor_options)
            if monitor is None
            else monitor
        )

    def install(self, trainer: Any) -> WeightChangeDFACallback:
        """Add this callback to ``trainer`` ahead of its logging integrations."""
        callbacks = trainer.callback_handler.callbacks
        if self in callbacks:
            callbacks.remove(self)
        callbacks.insert(0, self)
        return self

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Attach the monitor to the optimizer (unwrapped from accelerate)."""
        if getattr(self.monitor, "model", False) is None:
            self.monitor.model = kwargs.get("model")  # a TrainingMonitor's probes look at it
        optimizer: Any = kwargs.get("optimizer")
        while hasattr(optimizer, "optimizer"):  # accelerate's AcceleratedOptimizer
            optimizer = optimizer.optimizer
        if optimizer is not None:
            self.monitor.attach(optimizer)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Stop training when a :class:`wcdfa.control.Stop` handler asked for it."""
        if getattr(self.monitor, "stop_requested", None) is not None:
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Detach from the optimizer."""
        self.monitor.detach()

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add the monitor's metrics to ``logs`` (main process only)."""
        if logs is None or not state.is_world_process_zero:
            return
        metrics = {**self.monitor.metrics(), **event_counts(self.monitor.events)}
        if not metrics:
            return
        logs.update(metrics)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(metrics)
