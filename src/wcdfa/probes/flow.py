"""FlowProbe: activation growth through the blocks and the deepest gradient floor, live.

Every ``every`` optimizer steps the probe runs each of its K probe batches through the
model in eval mode with the random generators forked (``probe_forward``) and, given a
``loss_fn``, a separate backward through ``torch.autograd.grad`` (which leaves every
``.grad`` alone): training is bit-identical with and without it. Per block it records
the median per-sample output norm, the norm of the loss gradient with respect to the
block's output and the norm of the block's parameter gradient; the flags and their
provenance are in :mod:`wcdfa.audit`. With K > 1 batches every summary also reports
its spread across the batches (``*_std``), so drift can be told from noise.

Credit alignment: on each sampled step, per block, the cosine between the update the
optimizer applied, ΔW, and the negative gradient it was given, −∇L (both over the
block's parameters): exactly 1 for plain SGD, informative for Adam-family optimizers
and for any rule that writes its own updates. With a :class:`wcdfa.WeightChangeDFA`
in the same :class:`~wcdfa.TrainingMonitor`, ΔW comes from its ‖ΔW‖ measurer (its
snapshot or the optimizer's state, :mod:`wcdfa.alignment`): no copy of the probe's
own. Without one, and with the optimizer known (a monitor attached to it), a step
pre-hook copies the blocks' parameters just before each sampled step only, freed once
the step is read.

A learning rule's own credit (``credit_fn``, with ``loss_fn``): ``credit_fn(model,
inputs, targets, generator)`` returns the rule's credit signal for each block's output
(a list in block order, or a dict by block name), the tensor the rule uses in place of
∂L/∂h_l; the probe reports its cosine with the true ∂L/∂h_l on each probe batch. With
``generator`` a ``torch.Generator`` the function must draw fresh random feedback from
it: the probe calls it ``null_draws`` times (seeds 0, 1, ...) for the null reference,
the same cosine under feedback that knows nothing (expected about 0, with its spread).

``gradients="training"``: ∂L/∂h_l is read from the training's own backward instead,
through tensor hooks that the blocks' forward hooks put on their outputs during the
training forward before each sampled step only (no extra cost on the other steps; no
``loss_fn`` needed, so it serves rules that do not backpropagate a loss as well); the
activations still come from the probe batches, and ∂L/∂h_l is that of the last
backward before the step (the last micro-batch under accumulation). It needs the
optimizer (a monitor attached to it).

Blocks: ``blocks=`` names or module types; by default the children with parameters of
an ``nn.Sequential`` model, else the children of the model's first ``nn.ModuleList`` or
``nn.Sequential`` of two or more modules (a residual stack such as ``model.layers``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wcdfa._checks import check_choice, check_int, check_real
from wcdfa.audit import FLOOR, GROWTH, flags, threshold_sensitivity
from wcdfa.probes.attention import run_batch
from wcdfa.probes.base import (
    Event,
    ModelProbe,
    ProbeContext,
    check_name,
    load_history,
    probe_forward,
)

__all__ = ["FlowProbe", "find_blocks"]

STATE_FORMAT = "wcdfa.flow/1"
_SUMMARY = ("max_growth", "end_to_end", "deepest_gradient")


def find_blocks(model: Any, blocks: Sequence[Any] | None = None) -> list[tuple[str, Any]]:
    """Return ``(name, module)`` of the blocks the probe reads, input to output."""
    named = list(model.named_modules())
    if blocks is not None:
        names = {b for b in blocks if isinstance(b, str)}
        types = tuple(b for b in blocks if isinstance(b, type))
        found = [(n, m) for n, m in named if n and (n in names or (types and isinstance(m, types)))]
        missing = sorted(names - {n for n, _ in found})
        if missing:
            msg = f"Argument `blocks` names {missing}, which are not modules of the model"
            raise ValueError(msg)
        return found
    torch = __import__("torch")
    containers = (torch.nn.Sequential, torch.nn.ModuleList)
    prefix = ""  # DDP's wrapper: the blocks of the model it wraps, named as it names them
    while isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model, prefix = model.module, f"{prefix}module."
    if isinstance(model, torch.nn.Sequential):
        return [
            (prefix + n, m) for n, m in model.named_children() if any(True for _ in m.parameters())
        ]
    for name, module in model.named_modules():
        if name and isinstance(module, containers) and len(module) >= 2:
            return [(f"{prefix}{name}.{n}", m) for n, m in module.named_children()]
    msg = "FlowProbe found no block stack in the model: pass blocks=[names or module types]"
    raise ValueError(msg)


class FlowProbe(ModelProbe):
    """Per-block activation norms, growth and gradient floor every ``every`` steps.

    Parameters
    ----------
    batches : batch or list of batches
        Probe batches. With ``loss_fn`` each is ``(inputs, targets)``; without, the
        inputs alone. A list of K batches gives the spread of every reading.
    every : int, default 100
        Optimizer steps between readings.
    loss_fn : callable, optional
        ``loss_fn(output, targets)``: enables the gradients and flag (b).
    blocks : sequence of str or type, optional
        The blocks (see the module for the default).
    forward : callable, optional
        ``forward(model, inputs)`` when the model is called otherwise.
    growth, floor, relative
        The flag thresholds (:mod:`wcdfa.audit`).
    name : str, default "flow"
        The metrics prefix.

    Notes
    -----
    Metrics: ``<name>/activation/<block>``, ``<name>/growth/<block>`` (from the second
    block), ``<name>/gradient/<block>``, ``<name>/param_gradient/<block>``,
    ``<name>/max_growth``, ``<name>/end_to_end``, ``<name>/deepest_gradient`` (each with
    ``_std`` across the batches when K > 1), ``<name>/growth_flag`` and
    ``<name>/floor_flag`` (1 or 0), and with the optimizer ``<name>/credit/<block>`` and
    ``<name>/credit_mean``. Events: ``growth_flag``, ``floor_flag`` (when a flag
    starts firing) and ``degenerate_credit`` (when both fire together); their first
    steps are in :attr:`first_fired`.
    """

    def __init__(
        self,
        batches: Any,
        every: int = 100,
        *,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        blocks: Sequence[Any] | None = None,
        forward: Callable[[Any, Any], Any] | None = None,
        credit_fn: Callable[..., Any] | None = None,
        null_draws: int = 8,
        gradients: str = "probe",
        growth: float = GROWTH,
        floor: float = FLOOR,
        relative: bool = False,
        name: str = "flow",
    ) -> None:
        self.batches = list(batches) if isinstance(batches, list) else [batches]
        self.every = check_int("every", every, 1)
        if loss_fn is not None and not callable(loss_fn):
            msg = f"Argument `loss_fn` must be callable, but got {type(loss_fn).__name__}"
            raise TypeError(msg)
        if credit_fn is not None and (loss_fn is None or not callable(credit_fn)):
            msg = "Argument `credit_fn` must be callable and needs `loss_fn` (the true gradient)"
            raise ValueError(msg)
        self.loss_fn, self.forward, self.blocks = loss_fn, forward, blocks
        self.credit_fn, self.null_draws = credit_fn, check_int("null_draws", null_draws, 1)
        self.gradients = check_choice("gradients", gradients, ("probe", "training"))
        if credit_fn is not None and self.gradients == "training":
            msg = "Argument `credit_fn` needs the probe batches' gradient: gradients='probe'"
            raise ValueError(msg)
        self._armed = False  # record the next training backward (gradients="training")
        self._seen: dict[int, Any] = {}  # block index -> gradient norm of that backward
        self._block_hooks: list[Any] = []
        self.growth, self.floor = check_real("growth", growth), check_real("floor", floor)
        self.relative = bool(relative)
        self.name = check_name(name)
        self._history: list[tuple[int, dict[str, Any]]] = []
        self._events: list[Event] = []
        self._steps = 0  # optimizer steps begun, counted by the pre-hook
        self._before: dict[int, Any] | None = None  # the blocks' weights before a sampled step
        self._hook: Any = None
        self._firing: dict[str, bool] = {
            "growth_flag": False,
            "floor_flag": False,
            "degenerate": False,
        }
        self.first_fired: dict[str, int | None] = {
            "growth_flag": None,
            "floor_flag": None,
            "degenerate_credit": None,
        }

    @property
    def history(self) -> list[tuple[int, dict[str, Any]]]:
        """``(step, reading)`` per reading: per-block lists and the summaries."""
        return self._history

    wants_alignment = True
    """Ask the host's ‖ΔW‖ measurer for the alignment of ΔW with −∇L on the sampled steps."""

    def start(self, context: ProbeContext) -> None:
        """Count the optimizer's steps; without the host's measurer, copy before sampled ones."""
        self._steps = context.step
        if context.optimizer is None or context.model is None:
            return
        blocks = find_blocks(context.model, self.blocks)
        params = [p for _, m in blocks for p in m.parameters() if p.requires_grad]
        copy = not context.measures_updates
        if self._hook is not None:
            self._hook.remove()

        def before_step(optimizer: Any, args: Any, kwargs: Any) -> None:
            self._steps += 1
            if copy and self._steps % self.every == 0:
                self._before = {id(p): p.detach().clone() for p in params}

        self._hook = context.optimizer.register_step_pre_hook(before_step)
        if self.gradients == "training":
            self._hook_training(blocks, context)

    def _hook_training(self, blocks: list[Any], context: ProbeContext) -> None:
        """Tensor hooks on the block outputs of the training backward before sampled steps."""
        import torch  # noqa: PLC0415

        for handle in self._block_hooks:
            handle.remove()
        self._armed = (context.step + 1) % self.every == 0
        self._seen = {}

        def forward_hook(module: Any, args: Any, out: Any, index: int = 0) -> None:
            tensor = out[0] if isinstance(out, (tuple, list)) else out
            if self._armed and module.training and torch.is_grad_enabled() and tensor.requires_grad:
                tensor.register_hook(
                    lambda g, i=index: self._seen.__setitem__(i, g.detach().norm())
                )

        self._block_hooks = [
            m.register_forward_hook(lambda mod, a, o, i=i: forward_hook(mod, a, o, i))
            for i, (_, m) in enumerate(blocks)
        ]

        def after_step(optimizer: Any, args: Any, kwargs: Any) -> None:
            if (self._steps + 1) % self.every == 0:
                self._armed = True

        self._block_hooks.append(context.optimizer.register_step_post_hook(after_step))

    def measure(self, context: ProbeContext) -> None:
        """Read the model now; with the measurer's alignment or the copy, also the credit."""
        credit = None
        if context.alignment is not None and context.model is not None:
            blocks = find_blocks(context.model, self.blocks)
            credit = context.alignment.cosines([list(m.parameters()) for _, m in blocks])
        elif self._before is not None and context.model is not None:
            if self._steps == context.step:
                credit = self._credit(context.model)
        self._before = None
        self._steps = context.step  # the host's count rules (after a resume, say)
        super().measure(context)  # reads what the training backward's hooks saw
        self._armed = (context.step + 1) % self.every == 0
        self._seen = {}
        if credit is not None:
            self._history[-1][1]["credit"] = credit

    def _credit(self, model: Any) -> list[float]:
        """Per block: cos(ΔW, −∇L) over its parameters (NaN without gradients)."""
        import torch  # noqa: PLC0415

        before = self._before or {}
        values = []
        for _, module in find_blocks(model, self.blocks):
            dots = [
                (
                    ((p.detach() - before[id(p)]) * -p.grad).sum(),
                    (p.detach() - before[id(p)]).square().sum(),
                    p.grad.square().sum(),
                )
                for p in module.parameters()
                if id(p) in before and p.grad is not None
            ]
            if not dots:
                values.append(torch.tensor(float("nan")))
                continue
            dot, dw, gg = (torch.stack(x).sum() for x in zip(*dots, strict=True))
            values.append((dot / (dw.sqrt() * gg.sqrt())).to("cpu", torch.float64))
        return [float(v) for v in torch.stack(values)]

    def read(self, model: Any) -> dict[str, Any]:
        """Measure ``model`` on the probe batches now (see the module)."""
        import torch  # noqa: PLC0415 - a model means torch is loaded

        blocks = find_blocks(model, self.blocks)
        per_batch = []
        for batch in self.batches:
            inputs, targets = batch if self.loss_fn is not None else (batch, None)
            outputs: list[Any] = []

            def keep(module: Any, args: Any, out: Any, into: list[Any] = outputs) -> None:
                into.append(out[0] if isinstance(out, (tuple, list)) else out)

            handles = [m.register_forward_hook(keep) for _, m in blocks]
            try:
                with probe_forward(model, grad=self.loss_fn is not None):
                    result = run_batch(model, inputs, self.forward)
                    for handle in handles:  # credit_fn may run the model again
                        handle.remove()
                    if len(outputs) != len(blocks):
                        msg = (
                            f"{len(blocks)} blocks, {len(outputs)} outputs: one ran twice or never"
                        )
                        raise ValueError(msg)
                    acts = torch.stack([_median_norm(o) for o in outputs])
                    values = [acts]
                    if self.gradients == "training":
                        values += self._training_norms(blocks, acts)
                    elif self.loss_fn is not None:
                        loss = self.loss_fn(result, targets)
                        params = [[p for p in m.parameters() if p.requires_grad] for _, m in blocks]
                        flat = [p for group in params for p in group]
                        grads = torch.autograd.grad(loss, outputs + flat, allow_unused=True)
                        zero = acts.new_zeros(())
                        norms = [zero if g is None else g.detach().norm() for g in grads]
                        values.append(torch.stack(norms[: len(outputs)]))
                        rest, sums = norms[len(outputs) :], []
                        for group in params:
                            taken, rest = rest[: len(group)], rest[len(group) :]
                            sums.append(torch.stack([zero, *taken]).square().sum().sqrt())
                        values.append(torch.stack(sums))
                        if self.credit_fn is not None:
                            true = [g.detach() for g in grads[: len(outputs)]]
                            values += self._rule_cosines(model, inputs, targets, blocks, true)
            finally:
                for handle in handles:
                    handle.remove()
            per_batch.append(torch.stack(values).detach().to("cpu", torch.float64))
        table = torch.stack(per_batch).numpy()  # (K, 1 or 3, blocks): one transfer per batch
        return self._summarise([n for n, _ in blocks], table)

    def _training_norms(self, blocks: list[Any], acts: Any) -> list[Any]:
        """Return the training backward's norms: ∂L/∂h_l and the parameter gradients.

        ∂L/∂h_l comes from the tensor hooks (NaN where they saw nothing); the parameter
        gradients from ``.grad`` as the step left them.
        """
        import torch  # noqa: PLC0415

        nan = acts.new_full((), float("nan"))
        grads = [self._seen.get(i, nan).to(acts.device) for i in range(len(blocks))]
        params = []
        for _, module in blocks:
            norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
            params.append(torch.stack(norms).square().sum().sqrt() if norms else nan)
        return [torch.stack(grads).to(acts.dtype), torch.stack(params).to(acts.dtype)]

    def _rule_cosines(
        self, model: Any, inputs: Any, targets: Any, blocks: list[Any], true: list[Any]
    ) -> list[Any]:
        """Return the rule's credit cosine per block, then the null draws' mean and std."""
        import torch  # noqa: PLC0415

        def cosines(generator: Any) -> Any:
            with torch.no_grad():
                credit = self.credit_fn(model, inputs, targets, generator)  # type: ignore[misc]
            if isinstance(credit, dict):
                credit = [credit[name] for name, _ in blocks]
            return torch.stack(
                [(c * t).sum() / (c.norm() * t.norm()) for c, t in zip(credit, true, strict=True)]
            )

        own = cosines(None)
        null = torch.stack(
            [cosines(torch.Generator().manual_seed(k)) for k in range(self.null_draws)]
        )
        return [own, null.mean(0), null.std(0, correction=0)]

    def _summarise(self, names: list[str], table: np.ndarray) -> dict[str, Any]:
        acts = table[:, 0]
        grads = table[:, 1] if table.shape[1] > 1 else np.full_like(acts, np.nan)
        readings = [
            flags(a, g, growth=self.growth, floor=self.floor, relative=self.relative)
            for a, g in zip(acts, grads, strict=True)
        ]
        out: dict[str, Any] = {
            "blocks": names,
            "activations": acts.mean(0).tolist(),
            "gradients": grads.mean(0).tolist(),
            "param_gradients": (
                table[:, 2].mean(0) if table.shape[1] > 2 else grads.mean(0) * np.nan
            ).tolist(),
        }
        if table.shape[1] > 3:  # the rule's cosine and the null reference
            out["rule_cosine"] = table[:, 3].mean(0).tolist()
            out["null_cosine"] = table[:, 4].mean(0).tolist()
            out["null_cosine_std"] = table[:, 5].mean(0).tolist()
        for key in _SUMMARY:
            column = np.array([r[key] for r in readings])
            out[key] = float(column.mean())
            out[f"{key}_std"] = float(column.std()) if column.size > 1 else float("nan")
        mean = flags(
            acts.mean(0),
            grads.mean(0),
            growth=self.growth,
            floor=self.floor,
            relative=self.relative,
        )
        has_grad = self.loss_fn is not None or self.gradients == "training"
        if self.gradients == "training":  # one training batch: no spread across batches
            out["deepest_gradient_std"] = float("nan")
        out["growth_flag"] = mean["growth_flag"]
        out["floor_flag"] = mean["floor_flag"] and has_grad
        return out

    def observe(self, model: Any, step: int) -> dict[str, Any]:
        """Read ``model`` now as the reading of ``step``; fire the flags' events."""
        reading = self.read(model)
        self._history.append((int(step), reading))
        both = reading["growth_flag"] and reading["floor_flag"]
        for key, on, kind in (
            ("growth_flag", reading["growth_flag"], "growth_flag"),
            ("floor_flag", reading["floor_flag"], "floor_flag"),
            ("degenerate", both, "degenerate_credit"),
        ):
            if on and not self._firing[key]:
                detail = {k: reading[k] for k in _SUMMARY}
                self._events.append(Event(int(step), self.name, kind, detail))
                if self.first_fired[kind] is None:
                    self.first_fired[kind] = int(step)
            self._firing[key] = on
        return reading

    def metrics(self) -> dict[str, float]:
        """Return the latest reading's metrics (see the class notes); NaN left out."""
        if not self._history:
            return {}
        r = self._history[-1][1]
        out: dict[str, float] = {}
        for i, block in enumerate(r["blocks"]):
            out[f"{self.name}/activation/{block}"] = r["activations"][i]
            out[f"{self.name}/gradient/{block}"] = r["gradients"][i]
            out[f"{self.name}/param_gradient/{block}"] = r["param_gradients"][i]
            if i:
                out[f"{self.name}/growth/{block}"] = r["activations"][i] / r["activations"][i - 1]
            if "credit" in r:
                out[f"{self.name}/credit/{block}"] = r["credit"][i]
            for key in ("rule_cosine", "null_cosine", "null_cosine_std"):
                if key in r:
                    out[f"{self.name}/{key}/{block}"] = r[key][i]
        if "credit" in r and np.isfinite(r["credit"]).any():
            out[f"{self.name}/credit_mean"] = float(np.nanmean(r["credit"]))
        for key in _SUMMARY:
            out[f"{self.name}/{key}"] = r[key]
            out[f"{self.name}/{key}_std"] = r[f"{key}_std"]
        out[f"{self.name}/growth_flag"] = float(r["growth_flag"])
        out[f"{self.name}/floor_flag"] = float(r["floor_flag"])
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}

    def sensitivity(self, **grids: Any) -> dict[str, dict[float, int | None]]:
        """When each threshold of a grid would first have fired (``threshold_sensitivity``)."""
        steps = [s for s, _ in self._history]
        growths = [r["max_growth"] for _, r in self._history]
        floors = [r["deepest_gradient"] for _, r in self._history]
        return threshold_sensitivity(steps, growths, floors, **grids)

    def state_dict(self) -> dict[str, Any]:
        """Return the readings, events and flag states as plain values."""
        return {
            "format": STATE_FORMAT,
            "history": [[step, reading] for step, reading in self._history],
            "events": [e.as_dict() for e in self._events],
            "firing": dict(self._firing),
            "first_fired": dict(self.first_fired),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (all of it is checked before anything changes)."""
        history = load_history(
            state, STATE_FORMAT, lambda r: {"blocks", "activations", *_SUMMARY} <= set(r)
        )
        events = [Event.from_dict(e) for e in state.get("events", [])]
        firing, first = state.get("firing"), state.get("first_fired")
        if set(firing or ()) != set(self._firing) or set(first or ()) != set(self.first_fired):
            msg = "Argument `state` fields 'firing' and 'first_fired' must name every flag"
            raise ValueError(msg)
        self._history, self._events = history, events
        self._firing = {k: bool(v) for k, v in dict(firing or {}).items()}
        self.first_fired = {k: None if v is None else int(v) for k, v in dict(first or {}).items()}

    def describe(self) -> str:
        """One sentence on the latest reading."""
        if not self._history:
            return "No flow reading yet."
        step, r = self._history[-1]
        return (
            f"At step {step}: max block growth {r['max_growth']:.3g}x "
            f"({'over' if r['growth_flag'] else 'under'} {self.growth:g}x), deepest "
            f"gradient {r['deepest_gradient']:.3g} ({'below' if r['floor_flag'] else 'above'} "
            f"{self.floor:g})."
        )


def _median_norm(x: Any) -> Any:
    """Median over the batch (the first dimension) of each sample's norm."""
    return x.detach().flatten(1).norm(dim=1).median() if x.dim() > 1 else x.detach().norm()
