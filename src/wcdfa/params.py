"""Which parameters are measured, and how they are grouped (torch).

Trainable parameters of a model or an optimizer, their optimizer param group (for
``normalize="lr"``), their module or user-named group (for ``groups=``), and the
current learning rates. Imported only once torch is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "layer_names",
    "learning_rates",
    "model_groups",
    "optimizer_groups",
    "trainable_parameters",
]


def trainable_parameters(model: torch.nn.Module) -> list[Tensor]:
    """Return the parameters of ``model`` that currently require a gradient, in order."""
    return [p for p in model.parameters() if p.requires_grad]


def optimizer_groups(optimizer: torch.optim.Optimizer) -> tuple[list[Tensor], list[int]]:
    """Trainable parameters of ``optimizer`` and the index of their param group."""
    params: list[Tensor] = []
    ids: list[int] = []
    for g, group in enumerate(optimizer.param_groups):
        for p in group["params"]:
            if p.requires_grad:
                params.append(p)
                ids.append(g)
    return params, ids


def model_groups(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[list[Tensor], list[int], int]:
    """Trainable parameters of ``model`` grouped by the optimizer's param groups.

    Parameters the optimizer does not hold form one extra, last group.
    """
    group_of = {id(p): g for g, grp in enumerate(optimizer.param_groups) for p in grp["params"]}
    extra = len(optimizer.param_groups)
    params = trainable_parameters(model)
    return params, [group_of.get(id(p), extra) for p in params], extra + 1


def learning_rates(optimizer: torch.optim.Optimizer) -> list[float]:
    """Return the current learning rate of each param group, as Python floats."""
    return [float(group["lr"]) for group in optimizer.param_groups]


def layer_names(spec: object, model: torch.nn.Module | None) -> tuple[list[str], dict[int, int]]:
    """Names of the parameter groups of ``spec`` and the group of each parameter id.

    ``spec`` is ``"module"`` (one group per module that owns parameters, named as in
    ``model.named_modules()``) or a mapping ``name -> parameters`` (a module, a tensor
    or an iterable of tensors); parameters in no group form a last group ``"other"``.
    """
    owner: dict[int, int] = {}
    names: list[str] = []
    if spec == "module":
        if model is None:
            msg = (
                "Argument `groups='module'` needs the model to name the groups: pass it to "
                "update(model) or attach(optimizer, model=model)"
            )
            raise ValueError(msg)
        for name, module in model.named_modules():
            direct = list(module.parameters(recurse=False))
            if direct:
                names.append(name or "(root)")
                owner.update((id(p), len(names) - 1) for p in direct)
        return names, owner
    for name, members in dict(spec).items():  # type: ignore[call-overload]
        names.append(str(name))
        if isinstance(members, torch.nn.Module):
            members = members.parameters()
        elif isinstance(members, torch.Tensor):
            members = [members]
        owner.update((id(p), len(names) - 1) for p in members)
    names.append("other")
    return names, owner
