"""Activation patching: copy one activation from a clean run into a corrupted run.

Clean and corrupted inputs differ in one thing (say, ``idx``). Patching the clean value
of one activation at one position into the corrupted run and measuring how far the
output moves back towards the clean answer says whether that activation, there, carries
the difference. :func:`patching_grid` does this for every (activation, position) pair.

Shapes: B batch, T ``n_ctx``, N hook names, M metric outputs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from toybook.analysis.ablation import overwrite_hook

Metric = Callable[[Tensor], Tensor]  # logits [B, T, V] -> [M]


@torch.no_grad()
def patching_grid(
    model: torch.nn.Module, clean: Tensor, corrupted: Tensor, hook_names: Sequence[str],
    metric: Metric,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(patched [N, T, M], clean [M], corrupted [M])`` values of ``metric``.

    ``patched[n, t]`` is the metric of the corrupted run with activation ``hook_names[n]``
    at position ``t`` taken from the clean run (all batch rows at once).
    """
    if clean.shape != corrupted.shape:
        raise ValueError(f"clean {list(clean.shape)} and corrupted {list(corrupted.shape)} differ in shape")
    names = set(hook_names)
    clean_logits, cache = model.run_with_cache(clean, names_filter=lambda name: name in names)
    missing = names - set(cache.keys())
    if missing:
        raise KeyError(f"the model has no activations named {sorted(missing)}")
    clean_metric = metric(clean_logits)
    corrupted_metric = metric(model(corrupted))
    n_ctx = clean.shape[1]
    patched = torch.empty(len(hook_names), n_ctx, *clean_metric.shape)
    for n, name in enumerate(hook_names):
        for position in range(n_ctx):
            hook = overwrite_hook((slice(None), position), cache[name][:, position])
            patched[n, position] = metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)]))
    return patched, clean_metric, corrupted_metric


def recovered_fraction(patched: Tensor, clean: Tensor, corrupted: Tensor) -> Tensor:
    """``(patched - corrupted) / (clean - corrupted)``: 0 = no effect, 1 = fully clean."""
    return (patched - corrupted) / (clean - corrupted)
