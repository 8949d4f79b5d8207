"""Per-head attention entropies from inside a forward pass (torch), never the maps themselves.

Three ways in, all reducing the probabilities to per-head sums inside the hook:

- ``nn.MultiheadAttention`` (also inside ``nn.TransformerEncoderLayer``, which asks it
  for no weights, and under ``nn.TransformerEncoder``'s fast paths): for the probe
  forward only, a pre-hook asks for per-head weights (``need_weights=True,
  average_attn_weights=False``; a causal mask is built where ``is_causal`` comes without
  one), the forward hook reduces them and hands back ``None`` instead; the encoders'
  nested-tensor path is switched off meanwhile (its layers cannot run hooks).
- Hugging Face models (``config._attn_implementation``): for the probe forward only the
  model's attention is the function ``"wcdfa_entropy"``, registered with transformers'
  ``AttentionInterface``: eager attention (the scores, the additive mask, softmax),
  reduced in place; SDPA and flash attention return no weights, this needs none.
- anything else: a function ``capture(model, batch)`` returning ``{layer: probs}`` or
  ``{layer: (probs, valid_keys)}`` with ``probs`` of shape (batch, heads, queries, keys).

Valid keys come from the masks (a masked key has probability 0, but so can a valid one
in a crystallised head: the count of valid keys, the normaliser, is read from the
masks, never from the probabilities). In self-attention a position whose key is masked
for every query is padding, and as a query it is left out.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "HF_ATTENTION",
    "EntropySink",
    "attention_modules",
    "capturing",
    "is_hf",
    "reduce_entropy",
]

HF_ATTENTION = "wcdfa_entropy"
"""The name of the attention function registered with transformers for the probe."""

_MHA_PARAMS = list(inspect.signature(nn.MultiheadAttention.forward).parameters)[1:]


def reduce_entropy(probs: Tensor, valid_keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-head sum of normalised row entropies and count of valid rows, both ``(heads,)``.

    ``probs`` is ``(batch, heads, queries, keys)``; ``valid_keys`` (bool, broadcastable
    to ``(batch, queries, keys)``) marks what a query may attend (default: every key).
    float64, on ``probs``' device. See :mod:`wcdfa.attention.entropy` for the rules.
    """
    p = probs.detach().to(torch.float64)
    batch, _, queries, keys = p.shape
    if valid_keys is None:
        valid = torch.ones((batch, queries, keys), dtype=torch.bool, device=p.device)
    else:
        valid = valid_keys.to(device=p.device, dtype=torch.bool).expand(batch, queries, keys)
    count = valid.sum(-1)  # (batch, queries): the normaliser's |V|
    rows = count >= 2
    if queries == keys:  # self-attention: a key masked for every query is padding
        rows = rows & valid.any(dim=1)
    terms = torch.where(valid.unsqueeze(1), torch.special.xlogy(p, p), 0.0)
    entropy = -terms.sum(-1) / torch.log(count.clamp(min=2).to(torch.float64)).unsqueeze(1)
    weight = rows.unsqueeze(1).to(torch.float64)  # (batch, 1, queries)
    return (entropy * weight).sum((0, 2)), weight.sum((0, 2)).expand(p.shape[1])


class EntropySink:
    """Where the hooks put each layer's per-head sums, in the order the layers ran.

    ``scale`` maps a layer name to ``(head, omega)``: that head's output is multiplied by
    omega on its way out (the compensation test; attention functions and MHA only).
    """

    def __init__(self, names: dict[int, str] | None = None) -> None:
        self.names = names or {}
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, Tensor] = {}
        self.scale: dict[str, tuple[int, float]] = {}

    def add(self, name: str, probs: Tensor, valid_keys: Tensor | None) -> None:
        """Reduce ``probs`` now and add them to layer ``name``."""
        sums, counts = reduce_entropy(probs, valid_keys)
        if name in self.sums:  # a layer called twice in one forward
            self.sums[name] = self.sums[name] + sums
            self.counts[name] = self.counts[name] + counts
        else:
            self.sums[name], self.counts[name] = sums, counts

    def entropies(self) -> dict[str, list[float]]:
        """Fetch every layer's per-head mean entropy in one transfer (NaN: no valid row)."""
        if not self.sums:
            return {}
        names = list(self.sums)
        means = torch.stack([self.sums[n] / self.counts[n] for n in names]).cpu().tolist()
        return {n: [float(v) for v in row] for n, row in zip(names, means, strict=True)}


# ------------------------------------------------------------------ MultiheadAttention
def _key_mask(value: Tensor | None, like: Tensor) -> Tensor | None:
    """Masked (True) from a bool mask (True: masked) or an additive float mask."""
    if value is None:
        return None
    if value.dtype == torch.bool:
        return value
    return value < torch.finfo(value.dtype).min / 2 if value.is_floating_point() else value != 0


def _mha_valid(probs: Tensor, kwargs: dict[str, Any]) -> Tensor:
    batch, heads, queries, keys = probs.shape
    masked = torch.zeros((batch, queries, keys), dtype=torch.bool, device=probs.device)
    attn = _key_mask(kwargs.get("attn_mask"), probs)
    if attn is not None:
        attn = attn.to(probs.device)
        if attn.dim() == 3:  # (batch * heads, Q, K): a key is valid if some head may see it
            attn = attn.view(batch, heads, queries, keys).all(dim=1)
        masked = masked | attn
    pad = _key_mask(kwargs.get("key_padding_mask"), probs)
    if pad is not None:
        masked = masked | pad.to(probs.device).view(batch, 1, keys)
    return ~masked


@contextlib.contextmanager
def _mha_hooks(model: nn.Module, sink: EntropySink) -> Iterator[None]:
    handles = []
    encoders = [m for m in model.modules() if isinstance(m, nn.TransformerEncoder)]
    nested = [(m, getattr(m, "use_nested_tensor", False)) for m in encoders]

    def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = dict(zip(_MHA_PARAMS, args, strict=False)) | kwargs
        bound["need_weights"], bound["average_attn_weights"] = True, False
        if bound.get("is_causal") and bound.get("attn_mask") is None:
            query = bound["query"]
            size = query.shape[1 if module.batch_first and query.dim() == 3 else 0]
            bound["attn_mask"] = nn.Transformer.generate_square_subsequent_mask(
                size, device=query.device, dtype=query.dtype
            )
        if bound.get("attn_mask") is not None:
            bound["is_causal"] = False  # the mask says it; with weights torch wants the mask
        return (), bound

    def post(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        out, weights = output
        if weights is not None:
            weights = weights if weights.dim() == 4 else weights.unsqueeze(0)
            name = sink.names[id(module)]
            sink.add(name, weights, _mha_valid(weights, kwargs))
            if name in sink.scale:
                head, omega = sink.scale[name]
                out = _scaled_output(module, out, weights, kwargs["value"], head, omega)
        return out, None

    try:
        for module in model.modules():
            if isinstance(module, nn.MultiheadAttention):
                handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
                handles.append(module.register_forward_hook(post, with_kwargs=True))
        for encoder in encoders:
            encoder.use_nested_tensor = False
        yield
    finally:
        for handle in handles:
            handle.remove()
        for encoder, flag in nested:
            encoder.use_nested_tensor = flag


def _scaled_output(
    module: nn.MultiheadAttention,
    out: Tensor,
    weights: Tensor,
    value: Tensor,
    head: int,
    omega: float,
) -> Tensor:
    """``out`` as if head ``head``'s output had been multiplied by ``omega`` before ``out_proj``.

    MultiheadAttention applies ``out_proj`` as a function, so no hook sees the heads'
    outputs: head ``head``'s is recomputed from its weights and the value projection,
    and ``(omega - 1)`` times its share of ``out_proj`` added.
    """
    if module.bias_k is not None or module.add_zero_attn:
        msg = "the compensation test does not support bias_k/add_zero_attn attention"
        raise ValueError(msg)
    e, width = module.embed_dim, module.embed_dim // module.num_heads
    rows = slice(2 * e + head * width, 2 * e + (head + 1) * width)
    if module.in_proj_weight is not None:
        w_v = module.in_proj_weight[rows]
    else:
        w_v = module.v_proj_weight[head * width : (head + 1) * width]
    b_v = None if module.in_proj_bias is None else module.in_proj_bias[rows]
    batched = value.dim() == 3
    v = value if batched else value.unsqueeze(1 if not module.batch_first else 0)
    if not module.batch_first:
        v = v.transpose(0, 1)  # (batch, keys, embed)
    head_out = weights[:, head] @ nn.functional.linear(v, w_v, b_v)  # (batch, Q, width)
    delta = (
        (omega - 1.0) * head_out @ module.out_proj.weight[:, head * width : (head + 1) * width].T
    )
    if not module.batch_first:
        delta = delta.transpose(0, 1)
    return out + (delta if batched else delta.squeeze(1 if not module.batch_first else 0))


# ------------------------------------------------------------------ Hugging Face
_SINKS: list[EntropySink] = []  # the sink of the probe forward now running (innermost last)


def _hf_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """Eager attention, its probabilities reduced into the current sink (see the module)."""
    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    valid = None
    if attention_mask is not None:
        mask = attention_mask[..., : key.shape[-2]]
        if mask.dtype == torch.bool:
            valid = mask
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            valid = mask > torch.finfo(mask.dtype).min / 2
            scores = scores + mask
        valid = valid[:, 0] if valid.dim() == 4 else valid  # one mask for every head
    probs = nn.functional.softmax(scores, dim=-1).to(value.dtype)
    sink = _SINKS[-1]
    name = sink.names.get(id(module)) or f"{type(module).__name__}.{module.layer_idx}"
    sink.add(name, probs, valid)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()  # (batch, Q, heads, dim)
    if name in sink.scale:
        head, omega = sink.scale[name]
        out[:, :, head] *= omega
    return out, None


def _register_hf() -> bool:
    try:
        from transformers import AttentionInterface  # noqa: PLC0415 - optional
        from transformers.masking_utils import (  # noqa: PLC0415
            ALL_MASK_ATTENTION_FUNCTIONS,
            eager_mask,
        )
    except ImportError:
        return False
    AttentionInterface.register(HF_ATTENTION, _hf_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(HF_ATTENTION, eager_mask)
    return True


@contextlib.contextmanager
def _hf_attention_swap(model: Any, sink: EntropySink) -> Iterator[None]:
    if not _register_hf():
        msg = "a Hugging Face model needs transformers to be importable"
        raise RuntimeError(msg)
    before = model.config._attn_implementation
    model.set_attn_implementation(HF_ATTENTION)
    _SINKS.append(sink)
    try:
        yield
    finally:
        _SINKS.pop()
        model.set_attn_implementation(before)


def is_hf(model: nn.Module) -> bool:
    """Whether ``model`` dispatches its attention through transformers' interface."""
    config = getattr(model, "config", None)
    return hasattr(config, "_attn_implementation") and callable(
        getattr(model, "set_attn_implementation", None)
    )


def attention_modules(model: nn.Module) -> dict[int, str]:
    """``id(module) -> qualified name`` of the attention modules a probe can read."""
    names = {}
    hf = is_hf(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            names[id(module)] = name
        elif hf and _calls_attention_interface(module):
            names[id(module)] = name
    return names


def _calls_attention_interface(module: nn.Module) -> bool:
    """Tell a Hugging Face attention module: it has a config, heads and a layer index."""
    return (
        hasattr(module, "config")
        and hasattr(module, "layer_idx")
        and any(hasattr(module, a) for a in ("num_heads", "num_attention_heads", "head_dim"))
    )


@contextlib.contextmanager
def capturing(model: nn.Module, sink: EntropySink) -> Iterator[None]:
    """Route every readable attention of ``model`` into ``sink`` for the block inside."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_mha_hooks(model, sink))
        if is_hf(model):
            stack.enter_context(_hf_attention_swap(model, sink))
        yield
