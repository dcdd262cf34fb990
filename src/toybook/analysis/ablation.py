"""Ablations: replace an activation by zero, by its mean or by its value on other inputs
(resampling), and see what breaks.

An ablation is a ``{hook_name: replacement}`` mapping, where the replacement is the string
``"zero"`` or a tensor broadcast against the activation (a mean from
:func:`mean_activation`, or another input's activation from :func:`resampled_activation`).
Zeroing gives later layers an input they never saw in training; a mean keeps the
activation's typical size but removes what varies with the input; resampling puts in a
real activation of another input, so what follows acts on that input's information.
Hook names are TransformerLens names such as ``"blocks.0.hook_attn_out"``,
``"blocks.1.attn.hook_z"`` or ``"hook_pos_embed"``.

Shapes: B batch, T ``n_ctx``, D the activation's trailing dimensions.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from toybook.errors import ToybookError
from toybook.evaluation import activations, require_hooks
from toybook.resources import INT64_BYTES, check_fits

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
    activation = activations(model, tokens, [hook_name])[hook_name]
    if not all(not isinstance(d, bool) and isinstance(d, int) and -activation.ndim <= d < activation.ndim for d in dims):
        raise ToybookError(f"dims {tuple(dims)} do not fit {hook_name!r}, which has "
                           f"{activation.ndim} dimensions {list(activation.shape)}; dims=(0,) "
                           "averages over the batch, (0, 1) also over positions")
    return activation.float().mean(dim=tuple(dims), keepdim=True)


@torch.no_grad()
def resampled_activation(
    model: torch.nn.Module, tokens: Tensor, hook_name: str, seed: int = 0
) -> Tensor:
    """The activation ``hook_name`` ``[B, T, ...]`` of the rows of ``tokens`` taken in a
    seeded random order: row ``i`` gets another row's value (a resample ablation; no row
    keeps its own, as the order is one random cycle through all rows)."""
    require_hooks(model, [hook_name])
    order = resample_order(len(tokens), seed)
    return activations(model, tokens[order.to(tokens.device)], [hook_name])[hook_name]


def resample_order(n: int, seed: int = 0) -> Tensor:
    """``[n]``: the row each of ``n`` rows takes its resampled activation from (row ``i``
    from ``order[i]``): one seeded random cycle through all rows, so no row gets its own."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ToybookError(f"resampling needs at least 2 inputs to take activations from, got {n!r}")
    check_fits("resample_order", n, "rows", 3 * INT64_BYTES)
    cycle = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    order = torch.empty_like(cycle)
    order[cycle] = cycle.roll(-1)
    return order


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


def replace_hook(replacement: Replacement, name: str = "the activation"):
    """A forward hook that returns ``replacement`` (``"zero"`` or a tensor) in place of the activation."""
    if not (replacement == "zero" if isinstance(replacement, str) else isinstance(replacement, Tensor)):
        raise ToybookError(f"a replacement is 'zero' or a tensor, got {replacement!r}")

    def hook(activation: Tensor, hook=None) -> Tensor:
        if isinstance(replacement, str):
            return torch.zeros_like(activation)
        try:
            return replacement.to(activation.device, activation.dtype).expand_as(activation).clone()
        except RuntimeError:
            raise ToybookError(f"a replacement of shape {list(replacement.shape)} does not "
                               f"broadcast to {name}, shape {list(activation.shape)}; "
                               "mean_activation gives one that does") from None

    return hook


@torch.no_grad()
def run_with_ablations(
    model: torch.nn.Module, tokens: Tensor, ablations: Mapping[str, Replacement]
) -> Tensor:
    """Logits ``[B, T, V]`` with every activation named in ``ablations`` replaced."""
    require_hooks(model, list(ablations))
    hooks = [(name, replace_hook(replacement, repr(name))) for name, replacement in ablations.items()]
    return model.run_with_hooks(tokens, fwd_hooks=hooks)
