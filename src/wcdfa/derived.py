"""‖ΔW‖ of the step just taken, derived from the optimizer's own state: no snapshot.

After ``optimizer.step()`` the parameters and the optimizer's state hold everything
needed to recompute the update that was applied. With ``p`` the parameters after
the step, ``g`` the gradient (negated under ``maximize``), ``lr`` and the other
hyper-parameters read from each param group *at the step*:

SGD (``torch.optim.SGD``), with ``b`` the momentum buffer after the step:

- momentum, no Nesterov:  ``ΔW = −lr · b`` (the first step too: ``b = g + wd·p_prev``);
- no momentum: ``g' = (g + wd·p) / (1 − lr·wd)`` and ``ΔW = −lr · g'``;
- Nesterov: ``g' = (g + wd·(p + lr·μ·b)) / (1 − lr·wd)`` and ``ΔW = −lr · (g' + μ·b)``,

where the weight-decay term refers to the pre-step weights ``p_prev = p − ΔW``,
solved for in closed form.

Adam / AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``), with ``m``, ``v`` (and
``v_max`` under AMSGrad) after the step and ``t`` its step count:
``u = lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)``. The L2 decay of Adam
is already inside ``m`` and ``v``, so ``ΔW = −u``. AdamW's decoupled decay scales the
pre-step weights: ``p = (1 − lr·wd)·p_prev − u``, so
``ΔW = −(u + lr·wd·p) / (1 − lr·wd)``.

Only per-tensor norms are formed (with transient temporaries); nothing parameter-sized
is kept between steps. Any other optimizer or option falls back to the snapshot, with
a message that says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch

from wcdfa._dist import all_reduce
from wcdfa.tracking import local_part, reduce_key

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DerivedUpdate", "unsupported_reason"]


def unsupported_reason(optimizer: torch.optim.Optimizer) -> str | None:
    """Why ΔW cannot be derived from ``optimizer``'s state (``None`` if it can)."""
    name = type(optimizer).__name__
    if type(optimizer) not in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        return f"{name} is not SGD, Adam or AdamW"
    for i, group in enumerate(optimizer.param_groups):
        on_device = any(p.device.type != "cpu" for p in group["params"])
        if isinstance(optimizer, torch.optim.Adam) and (
            group.get("capturable") or (group.get("fused") and on_device)
        ):
            return (
                f"param group {i} of {name} keeps its step counts on the device "
                "(capturable or fused): reading them would synchronise every step"
            )
        if group.get("differentiable"):
            return f"param group {i} of {name} has differentiable=True"
        if isinstance(group.get("lr"), torch.Tensor) and group["lr"].requires_grad:
            return f"param group {i} of {name} has a learning rate that requires grad"
        if (
            isinstance(optimizer, torch.optim.SGD)
            and group["weight_decay"]
            and (float(group["lr"]) * float(group["weight_decay"]) >= 1.0)
        ):
            return f"param group {i} of {name} has lr * weight_decay >= 1"
        if (
            isinstance(optimizer, torch.optim.Adam)
            and _decoupled(optimizer, group)
            and (float(group["lr"]) * float(group["weight_decay"]) >= 1.0)
        ):
            return f"param group {i} of {name} has lr * weight_decay >= 1"
    return None


def _decoupled(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> bool:
    return bool(group.get("decoupled_weight_decay", isinstance(optimizer, torch.optim.AdamW)))


class DerivedUpdate:
    """Per-group squared norms of the last step's update, from the optimizer state.

    Parameters
    ----------
    optimizer : torch.optim.SGD, torch.optim.Adam or torch.optim.AdamW
        Supported as :func:`unsupported_reason` says.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        reason = unsupported_reason(optimizer)
        if reason is not None:
            raise ValueError(reason)
        self.optimizer = optimizer
        # per layout (owners, reduce keys): the index and masks, built once
        self._layouts: dict[tuple[Any, ...], tuple[Tensor, list[tuple[Any, Tensor]]]] = {}
        self._joined = False  # the first collective checks that every rank is here

    @torch.no_grad()
    def step(self, ids: Sequence[int], n_groups: int) -> Tensor | None:
        """Squared norms per group of the update just applied (float64, on the device).

        ``ids`` gives the group of each trainable parameter in the order of
        :func:`wcdfa.tracking.optimizer_groups`. Returns ``None`` before the first
        step (no state yet).
        """
        norms: list[Tensor] = []
        owners: list[int] = []
        keys: list[tuple[Any, ...]] = []
        position = 0
        sgd = isinstance(self.optimizer, torch.optim.SGD)
        for group in self.optimizer.param_groups:
            params = [p for p in group["params"] if p.requires_grad]
            # the tensors this step updated: a gradient, and the state the step created
            # (plain SGD keeps none; SGD with momentum a buffer; Adam its moments)
            needed = "momentum_buffer" if sgd and group["momentum"] else None if sgd else "step"
            stepped = [
                i
                for i, p in enumerate(params)
                if p.grad is not None and (needed is None or needed in self.optimizer.state[p])
            ]
            if stepped:
                chosen = [params[i] for i in stepped]
                part = (self._sgd if sgd else self._adam)(group, chosen)
                norms += part
                owners += [ids[position + i] for i in stepped]
                keys += [reduce_key(p) for p in chosen]
            position += len(params)
        if not norms:
            return None
        device = norms[0].device
        squares = torch.stack([n.to(device, torch.float64) for n in norms]).square()
        layout = (n_groups, device, tuple(owners), tuple(keys))
        if layout not in self._layouts:  # one host-to-device copy per layout, not per step
            index = torch.tensor(owners, dtype=torch.long, device=device)
            masks = [
                (key, torch.tensor([k == key for k in keys], device=device))
                for key in dict.fromkeys(keys)
            ]
            self._layouts[layout] = (index, masks)
        index, masks = self._layouts[layout]
        # the squares per group, then the count of tensors lacking a baseline (none:
        # the optimizer's state is the baseline), as DeltaTracker.step returns them
        out = torch.zeros(n_groups + 1, dtype=torch.float64, device=device)
        if len(masks) == 1 and not masks[0][0]:
            return out.index_add_(0, index, squares)
        for key, mask in masks:  # sharded tensors: sum over their ranks
            summed = torch.zeros_like(out).index_add_(0, index, torch.where(mask, squares, 0.0))
            for process_group in key:
                all_reduce(summed, process_group, check=not self._joined)
            out += summed
        self._joined = True
        return out

    @torch.no_grad()
    def deltas(self, params: Sequence[Tensor]) -> list[Tensor | None]:
        """ΔW of each tensor, whole (this rank's part), by the formulas above; None if not stepped.

        One temporary per tensor, for the few steps that need the update itself (the
        credit alignment of :mod:`wcdfa.alignment`); :meth:`step` forms norms only.
        """
        group_of = {id(p): g for g in self.optimizer.param_groups for p in g["params"]}
        return [self._delta(group_of[id(p)], p) if id(p) in group_of else None for p in params]

    def _delta(self, group: dict[str, Any], p: Tensor) -> Tensor | None:
        state = self.optimizer.state.get(p, {})
        lp = local_part(p)
        work = torch.float64 if lp.dtype == torch.float64 else torch.float32
        lr, wd = float(group["lr"]), float(group["weight_decay"])
        if isinstance(self.optimizer, torch.optim.SGD):
            momentum, nesterov = float(group["momentum"]), bool(group["nesterov"])
            if p.grad is None or (momentum and "momentum_buffer" not in state):
                return None
            buf = local_part(state["momentum_buffer"]).to(work) if momentum else None
            if buf is not None and not nesterov:
                return buf * -lr
            g = local_part(p.grad).to(work) * (-1.0 if group["maximize"] else 1.0)
            if wd:
                shifted = lp.to(work) if buf is None else lp.to(work) + lr * momentum * buf
                g = (g + wd * shifted) / (1.0 - lr * wd)
            return -lr * (g if buf is None else g + momentum * buf)
        if p.grad is None or "step" not in state:
            return None
        beta1, beta2 = group["betas"]
        t = float(state["step"])
        m = local_part(state["exp_avg"]).to(work)
        v = local_part(state["max_exp_avg_sq" if group["amsgrad"] else "exp_avg_sq"]).to(work)
        step_size = lr / (1.0 - float(beta1) ** t)
        eps = float(group["eps"])
        u: Tensor = step_size * m / (v.sqrt() / (1.0 - float(beta2) ** t) ** 0.5 + eps)
        if wd and _decoupled(self.optimizer, group):
            return -(u + lr * wd * lp.to(work)) / (1.0 - lr * wd)
        return -u

    def _sgd(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        lr, wd = float(group["lr"]), float(group["weight_decay"])
        momentum, nesterov = float(group["momentum"]), bool(group["nesterov"])
        sign = -1.0 if group["maximize"] else 1.0
        local = [local_part(p) for p in params]
        if momentum and not nesterov:
            bufs = [local_part(self.optimizer.state[p]["momentum_buffer"]) for p in params]
            return list(torch._foreach_mul(_norms(bufs), lr))
        # large CPU tensors chunk by chunk (no parameter-sized temporary), the rest
        # (small ones, device ones) with foreach kernels over all of them at once
        out: list[Tensor | None] = [None] * len(params)
        large = [i for i, lp in enumerate(local) if _chunked(lp)]
        state = self.optimizer.state
        for i in large:
            p, lp = params[i], local[i]
            grad = local_part(cast("Tensor", p.grad))
            buf = local_part(state[p]["momentum_buffer"]) if nesterov else None

            def chunk(
                sl: slice,
                out_: Tensor,
                grad: Tensor = grad,
                lp: Tensor = lp,
                buf: Tensor | None = buf,
            ) -> None:
                torch.mul(_flat(grad)[sl], sign, out=out_)
                if wd:
                    shifted = _flat(lp)[sl]
                    if buf is not None:
                        shifted = shifted + lr * momentum * _flat(buf)[sl]
                    out_.add_(shifted, alpha=wd).div_(1.0 - lr * wd)
                if buf is not None:
                    out_.add_(_flat(buf)[sl], alpha=momentum)

            out[i] = _chunked_norm(lp, chunk) * lr
        small = [i for i in range(len(params)) if out[i] is None]
        if small:
            for i, n in zip(
                small, self._sgd_foreach(group, [params[i] for i in small]), strict=True
            ):
                out[i] = n
        return cast("list[Tensor]", out)

    def _sgd_foreach(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        lr, wd = float(group["lr"]), float(group["weight_decay"])
        momentum, nesterov = float(group["momentum"]), bool(group["nesterov"])
        sign = -1.0 if group["maximize"] else 1.0
        local = [local_part(p) for p in params]
        # new tensors, so modifiable: the gradients with the sign of the step
        grads = list(torch._foreach_mul([local_part(cast("Tensor", p.grad)) for p in params], sign))
        if wd:
            if nesterov:
                bufs = [local_part(self.optimizer.state[p]["momentum_buffer"]) for p in params]
                shifted = torch._foreach_add(local, bufs, alpha=lr * momentum)
                torch._foreach_add_(grads, shifted, alpha=wd)
            else:
                torch._foreach_add_(grads, local, alpha=wd)
            torch._foreach_div_(grads, 1.0 - lr * wd)
        if nesterov:
            bufs = [local_part(self.optimizer.state[p]["momentum_buffer"]) for p in params]
            torch._foreach_add_(grads, bufs, alpha=momentum)
        return list(torch._foreach_mul(_norms(grads), lr))

    def _adam(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        state = self.optimizer.state
        beta1, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], float(group["weight_decay"])
        # tensors of one group may have taken different numbers of steps (host
        # tensors: reading them does not synchronise a device)
        by_step: dict[float, list[Tensor]] = {}
        for p in params:
            by_step.setdefault(float(state[p]["step"]), []).append(p)
        norms_of: dict[int, Tensor] = {}
        second = "max_exp_avg_sq" if group["amsgrad"] else "exp_avg_sq"
        decoupled = bool(wd) and _decoupled(self.optimizer, group)
        for t, chunk in by_step.items():
            bc2s = (1.0 - float(beta2) ** t) ** 0.5
            step_size = float(lr) / (1.0 - float(beta1) ** t)
            decay = float(lr) * wd
            large = [p for p in chunk if _chunked(local_part(p))]
            if large:
                for p in large:
                    m, v = local_part(state[p]["exp_avg"]), local_part(state[p][second])
                    lp = local_part(p)

                    def part(
                        sl: slice,
                        out_: Tensor,
                        m: Tensor = m,
                        v: Tensor = v,
                        lp: Tensor = lp,
                        bc2s: float = bc2s,
                        step_size: float = step_size,
                        decay: float = decay,
                    ) -> None:
                        torch.sqrt(_flat(v)[sl], out=out_)
                        out_.div_(bc2s).add_(eps)
                        torch.div(_flat(m)[sl], out_, out=out_)
                        if decoupled:
                            out_.mul_(step_size).add_(_flat(lp)[sl], alpha=decay)

                    scale = 1.0 / (1.0 - decay) if decoupled else step_size
                    norms_of[id(p)] = _chunked_norm(lp, part) * scale
                chunk = [p for p in chunk if id(p) not in norms_of]
                if not chunk:
                    continue
            exp_avg = [local_part(state[p]["exp_avg"]) for p in chunk]
            denom = torch._foreach_sqrt([local_part(state[p][second]) for p in chunk])
            torch._foreach_div_(denom, bc2s)
            torch._foreach_add_(denom, eps)
            update = torch._foreach_div(exp_avg, denom)  # u / step_size
            if decoupled:
                torch._foreach_mul_(update, step_size)
                torch._foreach_add_(update, [local_part(p) for p in chunk], alpha=decay)
                scale = 1.0 / (1.0 - decay)
            else:
                scale = step_size
            for p, n in zip(chunk, torch._foreach_mul(_norms(update), scale), strict=True):
                norms_of[id(p)] = n
        return [norms_of[id(p)] for p in params]


_CHUNK = 1 << 18
"""Elements per chunk on the CPU: the temporaries stay in cache, and none is larger."""


def _chunked(t: Tensor) -> bool:
    """Whether ``t`` is measured chunk by chunk: a large CPU tensor (else: foreach)."""
    return t.device.type == "cpu" and t.numel() >= _CHUNK


def _flat(t: Tensor) -> Tensor:
    return t.view(-1) if t.is_contiguous() else t.reshape(-1)


def _chunked_norm(like: Tensor, fill: Any) -> Tensor:
    """2-norm of a vector of ``like``'s size produced chunk by chunk by ``fill``.

    ``fill(slice, out)`` writes the chunk into ``out`` (a reused float32 or float64
    scratch buffer of at most _CHUNK elements); the squares are summed with ``dot``.
    """
    n = like.numel()
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    scratch = torch.empty(min(n, _CHUNK), dtype=dtype)
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, n, _CHUNK):
        out = scratch[: min(_CHUNK, n - start)]
        fill(slice(start, start + out.numel()), out)
        total += torch.dot(out, out)
    return total.sqrt()


def _norms(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Per-tensor 2-norms, accumulated in float32 at least."""
    low = any(t.dtype in (torch.float16, torch.bfloat16) for t in tensors)
    if low:
        return list(torch._foreach_norm(list(tensors), 2, dtype=torch.float32))
    return list(torch._foreach_norm(list(tensors), 2))
