"""Perturbation steps ("gaps") on a schedule, tagged in the monitor; the retention figure.

A gap step is an optimizer step with a perturbation of a documented kind, applied just
before the step by an optimizer step pre-hook and tagged ``"gap"`` in the monitor, so
that the monitor's :attr:`~wcdfa.WeightChangeDFA.alpha_clean` leaves it out:

- ``"noise"``: every trainable tensor of the optimizer gets Gaussian noise of
  standard deviation ``size`` times its RMS value (relative size ``size``), from the
  schedule's own generator (the training's random streams are not touched). The
  step's ‖ΔW‖ includes the noise when the monitor measures by snapshot (``update(model)``
  or ``method="snapshot"``); the optimizer-state derivation cannot see it, and is refused.
- ``"lr"``: every param group's learning rate is multiplied by ``size`` for the step
  and restored after it (after the monitor's hook, before a scheduler's step).
- ``"objective"``: the gradients are replaced by those of ``objective()`` (a closure
  returning a loss on another objective, supplied by the user).

torch is imported when a schedule is attached, not before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from wcdfa._checks import check_choice, check_int, check_real
from wcdfa._warn import warn
from wcdfa.errors import MisuseWarning
from wcdfa.measure import check_optimizer
from wcdfa.tags import check_tag

__all__ = ["KINDS", "GapSchedule", "retention"]

KINDS = ("noise", "lr", "objective")
DEFAULT_SIZE = {"noise": 0.01, "lr": 10.0, "objective": 1.0}


class GapSchedule:
    """Apply perturbation steps of one kind on a schedule, and tag them.

    Parameters
    ----------
    kind : {"noise", "lr", "objective"}
        What a gap step does (see the module's description).
    fraction : float, optional
        Keyword-only. The share of steps that are gaps, in (0, 1], spread evenly:
        step ``k`` (counted from ``start``) is a gap when ``floor(k·f)`` grows.
    every : int, optional
        Keyword-only. Instead of ``fraction``: a burst of ``length`` gap steps at the
        start of every ``every`` steps. Exactly one of ``fraction`` and ``every``.
    length : int, default 1
        Keyword-only. Gap steps per burst (with ``every``).
    start : int, default 0
        Keyword-only. Steps before the schedule begins.
    size : float, optional
        Keyword-only. Relative noise size (default 0.01) or learning-rate factor
        (default 10); unused by ``"objective"``.
    objective : callable, optional
        Keyword-only. For ``kind="objective"``: called with no argument under
        ``torch.enable_grad()``, returns the loss whose gradients the gap step takes.
    seed : int, default 0
        Keyword-only. Seed of the noise generator.
    tag : str, default "gap"
        Keyword-only. The tag given to the gap steps.
    """

    def __init__(
        self,
        kind: str,
        *,
        fraction: float | None = None,
        every: int | None = None,
        length: int = 1,
        start: int = 0,
        size: float | None = None,
        objective: Callable[[], Any] | None = None,
        seed: int = 0,
        tag: str = "gap",
    ) -> None:
        self.kind = check_choice("kind", kind, KINDS)
        if (fraction is None) == (every is None):
            msg = (
                "Give exactly one of `fraction` and `every`, but got "
                f"fraction={fraction!r}, every={every!r}"
            )
            raise ValueError(msg)
        self.fraction = None if fraction is None else check_real("fraction", fraction)
        if self.fraction is not None and not 0.0 < self.fraction <= 1.0:
            msg = f"Argument `fraction` must be in (0, 1], but got {fraction!r}"
            raise ValueError(msg)
        self.every = None if every is None else check_int("every", every, 1)
        self.length = check_int("length", length, 1)
        if self.every is not None and self.length > self.every:
            msg = f"Argument `length` must be <= every={self.every}, but got {length!r}"
            raise ValueError(msg)
        self.start = check_int("start", start, 0)
        self.size = check_real("size", DEFAULT_SIZE[self.kind] if size is None else size)
        if self.size <= 0:
            msg = f"Argument `size` must be > 0, but got {size!r}"
            raise ValueError(msg)
        if self.kind == "objective" and not callable(objective):
            msg = (
                f"Argument `objective` must be callable for kind='objective', but got {objective!r}"
            )
            raise TypeError(msg)
        self.objective = objective
        self.seed = check_int("seed", seed, 0)
        self.tag = check_tag(tag)
        self.steps = 0  # optimizer steps seen by the pre-hook
        self.forced = 0  # gap steps asked for by trigger()
        self.gap_steps: list[int] = []
        self._handles: list[Any] = []
        self._restore: list[tuple[dict[str, Any], Any]] = []
        self._restore_handle: Any = None
        self._generators: dict[Any, Any] = {}
        self._monitor: Any = None
        self._warned = False

    def is_gap(self, step: int) -> bool:
        """Whether the schedule makes step ``step`` (1-based) a gap, triggers aside."""
        k = step - self.start
        if k < 1:
            return False
        if self.fraction is not None:
            return math.floor(k * self.fraction + 1e-9) > math.floor((k - 1) * self.fraction + 1e-9)
        return (k - 1) % self.every < self.length  # type: ignore[operator]

    def trigger(self, steps: int = 1) -> None:
        """Make the next ``steps`` optimizer steps gaps, whatever the schedule says."""
        self.forced += check_int("steps", steps, 1)

    def attach(self, optimizer: Any, monitor: Any = None) -> Any:
        """Apply the schedule before each step of ``optimizer``, tagging ``monitor``'s steps.

        ``monitor`` is a :class:`~wcdfa.WeightChangeDFA` or a
        :class:`~wcdfa.TrainingMonitor` (anything with ``mark(tag)``); attach it to the
        optimizer too, in either order. Returns the pre-hook's handle.

        Raises
        ------
        ValueError
            For ``kind="noise"`` with a monitor that derives ‖ΔW‖ from the optimizer's
            state (it cannot see the noise): use ``method="snapshot"``.
        """
        check_optimizer(optimizer)
        if monitor is not None and not callable(getattr(monitor, "mark", None)):
            msg = (
                f"Argument `monitor` must have a mark(tag) method, but got {type(monitor).__name__}"
            )
            raise TypeError(msg)
        self._check_measurement(monitor)
        self._monitor = monitor

        def hook(opt: Any, args: Any, kwargs: Any) -> None:
            self.before_step(opt)

        handle = optimizer.register_step_pre_hook(hook)
        self._handles.append(handle)
        return handle

    def detach(self) -> None:
        """Remove the hooks (a pending learning-rate pulse is undone)."""
        self._undo_lr()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def before_step(self, optimizer: Any) -> bool:
        """Count the step about to be taken and, on a gap, perturb it; return whether it is one.

        The pre-hook calls it; in a loop without :meth:`attach`, call it just before
        ``optimizer.step()`` (and :meth:`after_step` just after).
        """
        import torch  # noqa: PLC0415 - an optimizer means torch is loaded

        self._undo_lr()
        self.steps += 1
        gap = self.is_gap(self.steps) or self.forced > 0
        if not gap:
            return False
        self.forced = max(0, self.forced - 1)
        self.gap_steps.append(self.steps)
        if self._monitor is not None:
            if not self._warned:
                try:  # the monitor may have bound its optimizer after attach()
                    self._check_measurement(self._monitor)
                except ValueError as exc:  # inside optimizer.step(): warn, never raise
                    self._warned = True
                    warn(f"{exc}; the noise steps are tagged but not measured.", MisuseWarning)
            self._monitor.mark(self.tag)
        params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
        if self.kind == "noise":
            with torch.no_grad():
                for p in params:
                    rms = p.detach().float().pow(2).mean().sqrt()
                    noise = torch.randn(
                        p.shape, generator=self._generator(p.device), device=p.device
                    )
                    p.add_((noise * (self.size * rms)).to(p.dtype))
        elif self.kind == "lr":
            self._restore = [(g, g["lr"]) for g in optimizer.param_groups]
            for group, lr in self._restore:
                group["lr"] = lr * self.size
            # registered now, so it runs after every post-hook registered before
            # (the monitor's), and before the loop's scheduler.step()
            self._restore_handle = optimizer.register_step_post_hook(
                lambda opt, args, kwargs: self.after_step()
            )
        else:
            for p in params:
                p.grad = None
            with torch.enable_grad():
                loss = self.objective()  # type: ignore[misc]
                loss.backward()
        return True

    def after_step(self, optimizer: Any = None) -> None:
        """Undo a learning-rate pulse (the post-hook of a gap step calls it)."""
        for group, lr in self._restore:
            group["lr"] = lr
        self._restore = []

    def _undo_lr(self) -> None:
        self.after_step()
        if self._restore_handle is not None:  # removed here, not while torch iterates it
            self._restore_handle.remove()
            self._restore_handle = None

    def _generator(self, device: Any) -> Any:
        import torch  # noqa: PLC0415

        key = str(device)  # the state dict's key too
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=key).manual_seed(self.seed)
        return self._generators[key]

    def _check_measurement(self, monitor: Any) -> None:
        if self.kind != "noise" or monitor is None:
            return
        targets = getattr(monitor, "probes", [monitor])
        for probe in targets:
            if "optimizer-state" in str(getattr(probe, "method_in_use", None)):
                msg = (
                    "Argument `monitor` derives ‖ΔW‖ from the optimizer's state, which cannot "
                    "see a 'noise' gap: use WeightChangeDFA(method='snapshot') or update(model)"
                )
                raise ValueError(msg)

    def state_dict(self) -> dict[str, Any]:
        """Return the step count, pending triggers, gap steps and the noise generators' states.

        A schedule restored from it draws the noise an uninterrupted run would have drawn.
        """
        return {
            "steps": self.steps,
            "forced": self.forced,
            "gap_steps": list(self.gap_steps),
            "noise_state": {
                device: gen.get_state().tolist() for device, gen in self._generators.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if not isinstance(state, dict):
            msg = (
                f"Argument `state` must be a dict from state_dict(), but got {type(state).__name__}"
            )
            raise ValueError(msg)
        steps = check_int("state['steps']", state.get("steps"), 0)
        forced = check_int("state['forced']", state.get("forced", 0), 0)
        gaps = [check_int("state['gap_steps']", k, 1) for k in state.get("gap_steps", [])]
        noise = state.get("noise_state", {})  # absent from older states: the noise restarts
        if not isinstance(noise, dict):
            msg = f"state['noise_state'] must be a dict of generator states, but got {noise!r}"
            raise ValueError(msg)
        generators = {}
        if noise:
            import torch  # noqa: PLC0415

            for device, saved in noise.items():
                gen = torch.Generator(device=device)
                try:
                    gen.set_state(torch.tensor(saved, dtype=torch.uint8))
                except (RuntimeError, TypeError, ValueError) as exc:
                    msg = f"state['noise_state'][{device!r}] is not a generator state: {exc}"
                    raise ValueError(msg) from exc
                generators[device] = gen
        self.steps, self.forced, self.gap_steps = steps, forced, gaps
        self._generators = generators

    def __repr__(self) -> str:
        when = (
            f"fraction={self.fraction}"
            if self.fraction is not None
            else f"every={self.every}, length={self.length}"
        )
        return f"GapSchedule({self.kind!r}, {when}, size={self.size})"


def retention(baseline: Any, perturbed: Any, clean: Any = None) -> float:
    """Return the share of a perturbation's effect on α that stays without the gap steps.

    ``(α_clean − α_baseline) / (α − α_baseline)``: 1 when the clean steps alone show the
    whole effect (it lives in the dynamics), 0 when it came only from the gap steps'
    own samples. Arguments are numbers, or monitors (``baseline.alpha``,
    ``perturbed.alpha`` and ``perturbed.alpha_clean``); ``clean`` defaults to
    ``perturbed.alpha_clean``. NaN when the effect is smaller than 1e-9 or a value is
    missing.
    """
    base = getattr(baseline, "alpha", baseline)
    alpha = getattr(perturbed, "alpha", perturbed)
    if clean is None:
        clean = getattr(perturbed, "alpha_clean", None)
    values = []
    for name, value in (("baseline", base), ("perturbed", alpha), ("clean", clean)):
        if value is None:
            return math.nan
        values.append(check_real(name, value))
    base_f, alpha_f, clean_f = values
    effect = alpha_f - base_f
    if abs(effect) < 1e-9:
        return math.nan
    return (clean_f - base_f) / effect
