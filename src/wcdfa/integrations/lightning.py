"""PyTorch Lightning callback: weight-change DFA on the trainer's own loggers.

    from wcdfa.integrations.lightning import WeightChangeDFACallback
    trainer = lightning.Trainer(callbacks=[WeightChangeDFACallback(window=500)])

Works with ``lightning`` (2.x) and the older ``pytorch_lightning`` package.
"""

from __future__ import annotations

from typing import Any

from wcdfa._imports import first_module
from wcdfa.monitor import WeightChangeDFA
from wcdfa.probes.base import event_counts
from wcdfa.regime import DEFAULT_THRESHOLDS


def _callback_base() -> type:
    module = first_module("lightning.pytorch", "pytorch_lightning")
    if module is None:
        msg = (
            "PyTorch Lightning is required for this callback; install it with: "
            'pip install "wcdfa[lightning]"'
        )
        raise ImportError(msg)
    base: type = module.Callback
    return base


__all__ = ["WeightChangeDFACallback"]


class WeightChangeDFACallback(_callback_base()):  # type: ignore[misc]
    """Record ‖ΔW‖ at every optimizer step and log α through the trainer's loggers.

    Parameters
    ----------
    window, stride, thresholds
        As :class:`wcdfa.WeightChangeDFA`.
    monitor : TrainingMonitor or WeightChangeDFA, optional
        Keyword-only. Use this monitor (e.g. a :class:`wcdfa.TrainingMonitor` with
        several probes) instead of building a WeightChangeDFA from the options.
    log_every_n_steps : int, optional
        Log every this many optimizer steps; by default the trainer's
        ``log_every_n_steps``.
    **monitor_options
        Further keyword arguments of :class:`wcdfa.WeightChangeDFA` (``ci``,
        ``normalize``, ``snapshot``, ...).

    Notes
    -----
    The monitor is attached to the trainer's optimizers when training starts (after
    a checkpoint is restored, so the restored weights are the baseline): every real
    optimizer step records, gradient accumulation and AMP-skipped steps included
    correctly. ``wcdfa/alpha``, ``wcdfa/regime`` (2 ordered, 1 critical, 0
    disordered) and ``wcdfa/delta_norm`` are sent to every logger of the trainer, from
    global rank zero only. The monitor's state is saved in and restored from
    checkpoints. The monitor itself is :attr:`monitor`.
    """

    def __init__(
        self,
        window: int = 500,
        stride: int | None = None,
        thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
        log_every_n_steps: int | None = None,
        *,
        monitor: Any = None,
        **monitor_options: Any,
    ) -> None:
        super().__init__()
        self.monitor: Any = (
            WeightChangeDFA(window, stride, thresholds, **monitor_options)
            if monitor is None
            else monitor
        )
        if log_every_n_steps is not None and (
            isinstance(log_every_n_steps, bool)
            or not isinstance(log_every_n_steps, int)
            or log_every_n_steps < 1
        ):
            msg = (
                "Argument `log_every_n_steps` must be an integer >= 1 or None, but got "
                f"{log_every_n_steps!r}"
            )
            raise ValueError(msg)
        self.log_every_n_steps = log_every_n_steps
        self._last_logged = -1

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Attach the monitor to the trainer's optimizers (the baseline is taken now)."""
        if getattr(self.monitor, "model", False) is None:
            self.monitor.model = pl_module  # a TrainingMonitor's probes look at it
        for optimizer in trainer.optimizers:
            self.monitor.attach(optimizer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Detach from the optimizers."""
        self.monitor.detach()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Log the metrics every ``log_every_n_steps`` optimizer steps (rank zero).

        When the monitor's :attr:`~wcdfa.TrainingMonitor.stop_requested` is set (a
        :class:`wcdfa.control.Stop` handler), the trainer's ``should_stop`` is set.
        """
        if getattr(self.monitor, "stop_requested", None) is not None:
            trainer.should_stop = True  # a wcdfa.control.Stop handler asked for it
        every = self.log_every_n_steps or trainer.log_every_n_steps
        step = trainer.global_step
        if step == self._last_logged or step % every:
            return
        self._last_logged = step
        if not trainer.is_global_zero:
            return
        metrics = {**self.monitor.metrics(), **event_counts(self.monitor.events)}
        if not metrics:
            return
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def state_dict(self) -> dict[str, Any]:
        """Return the monitor's state, saved in the checkpoint."""
        return {"monitor": self.monitor.state_dict(), "last_logged": self._last_logged}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the monitor's state from a checkpoint."""
        self.monitor.load_state_dict(state_dict["monitor"])
        self._last_logged = int(state_dict.get("last_logged", -1))
