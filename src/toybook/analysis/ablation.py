"""Ablations: replace an activation by zero or by its mean, and see what breaks.

An ablation is a ``{hook_name: replacement}`` mapping, where the replacement is the string
``"zero"`` or a tensor broadcast against the activation (typically a mean from
:func:`mean_activation`). Hook names are TransformerLens names such as
``"blocks.0.hook_attn_out"``, ``"blocks.1.attn.hook_z"`` or ``"hook_pos_embed"``.

Shapes: B batch, T ``n_ctx``, D the activation's trailing dimensions.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from toybook.errors import ToybookError

Replacement = str | Tensor


@torch.no_grad()
def mean_activation(
    model: torch.nn.Module, tokens: Tensor, hook_name: str, dims: Sequence[int] = (0,)
) -> Tensor:
    """The activation ``hook_name`` averaged over ``dims`` of ``[B, T, ...]``, dims kept.

    ``dims=(0,)`` averages over the batch, one mean per position (the usual mean
    ablation); ``dims=(0, 1)`` also over positions, which is what mean-ablating an
    activation that never varies across the batch (``hook_pos_embed``) needs.
    """
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name == hook_name)
    if hook_name not in cache:
        raise ToybookError(f"the model has no activation named {hook_name!r}; hook names look "
                           "like 'blocks.0.hook_attn_out' or 'blocks.1.attn.hook_z'")
    return cache[hook_name].float().mean(dim=tuple(dims), keepdim=True)


def overwrite_hook(index, values: Tensor | Callable[[Tensor], Tensor]):
    """A forward hook that returns a copy of the activation with ``activation[index] =
    values``: the one way the interventions here write into an activation (patching,
    mean-ablation of a position, a head or some neurons, forced attention). ``values`` is
    a tensor that broadcasts to ``activation[index]``, or a function of the activation
    that returns one."""
    def hook(activation: Tensor, hook=None) -> Tensor:
        activation = activation.clone()
        activation[index] = values(activation) if callable(values) else values.to(activation.device)
        return activation

    return hook


def replace_hook(replacement: Replacement):
    """A forward hook that returns ``replacement`` (``"zero"`` or a tensor) in place of the activation."""
    if isinstance(replacement, str) and replacement != "zero":
        raise ToybookError(f"a replacement is 'zero' or a tensor, got {replacement!r}")

    def hook(activation: Tensor, hook=None) -> Tensor:
        if isinstance(replacement, str):
            return torch.zeros_like(activation)
        return replacement.to(activation.device, activation.dtype).expand_as(activation).clone()

    return hook


@torch.no_grad()
def run_with_ablations(
    model: torch.nn.Module, tokens: Tensor, ablations: Mapping[str, Replacement]
) -> Tensor:
    """Logits ``[B, T, V]`` with every activation named in ``ablations`` replaced."""
    hooks = [(name, replace_hook(replacement)) for name, replacement in ablations.items()]
    return model.run_with_hooks(tokens, fwd_hooks=hooks)
