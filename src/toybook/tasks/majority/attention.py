"""What the majority model's attention computes: the running histogram of the prefix (its
order irrelevant, tested by patching in shuffled prefixes), and each component's share of
the logits (direct logit attribution with the final LayerNorm folded in).

Shapes: B batch, T = 128 positions, V = 10 values, D ``d_model``, C components.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from toybook.analysis.patching import Patch, run_with_patches
from toybook.evaluation import batched_cache
from toybook.tasks.majority.task import MajorityTask

ATTN_OUT = "blocks.0.hook_attn_out"
COMPONENTS = ("hook_embed", "hook_pos_embed", "blocks.0.hook_attn_out", "blocks.0.hook_mlp_out")


def running_histogram(task: MajorityTask, tokens: Tensor) -> Tensor:
    """``[B, T, V]``: the fraction of each value in ``tokens[:, :i+1]`` (counts / (i + 1))."""
    counts = task.running_counts(tokens).double()
    return counts / torch.arange(1, tokens.shape[1] + 1, dtype=torch.double)[None, :, None]


def permuted_prefixes(
    tokens: Tensor, position: int, seed: int = 0, keep_current: bool = False
) -> Tensor:
    """``tokens`` with ``tokens[:, :position+1]`` shuffled in each row: the running histogram
    at ``position`` (and the answer there) is unchanged, the order is not. With
    ``keep_current`` only ``tokens[:, :position]`` are shuffled: the token at ``position``
    itself stays."""
    generator = torch.Generator().manual_seed(seed)
    length = position if keep_current else position + 1
    order = torch.rand(tokens.shape[0], length, generator=generator).argsort(1)
    shuffled = tokens.clone()
    shuffled[:, :length] = tokens[:, :length].gather(1, order)
    return shuffled


def patch_attention_output(
    model: torch.nn.Module, tokens: Tensor, donor: Tensor, position: int
) -> Tensor:
    """Logits of ``tokens`` with the attention output at ``position`` taken from ``donor``."""
    return run_with_patches(model, tokens, [Patch(ATTN_OUT, (position,))], source=donor)


def _unembedding(model: torch.nn.Module) -> tuple[Tensor, Tensor]:
    """``(direction [V, D], biases [V])``: each answer's direction in the residual stream with
    the final LayerNorm's weight folded in, and its bias (the LayerNorm's bias and ``b_U``)."""
    return (model.ln_final.w[:, None] * model.W_U).T, model.ln_final.b @ model.W_U + model.b_U


def _folded_contributions(cache: Any, rows: Any, direction: Tensor, bias: Tensor) -> tuple[list[str], Tensor]:
    """``(names, [R, C])``: each of :data:`COMPONENTS` at ``rows`` of the cache (``...`` for all),
    centred and divided by the final LayerNorm's scale there, projected on ``direction
    [R, D]``; the biases' share ``bias [R]`` is the last component."""
    scale = cache["ln_final.hook_scale"][rows]  # [R, 1]
    parts = []
    for name in COMPONENTS:
        component = cache[name][rows]
        component = (component - component.mean(-1, keepdim=True)) / scale
        parts.append((component * direction).sum(-1))
    parts.append(bias)
    return [*COMPONENTS, "biases"], torch.stack(parts, 1)


@torch.no_grad()
def logit_contributions(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor
) -> tuple[list[str], Tensor]:
    """``(names, [B, C, T])``: each component's share of the correct logit minus the mean
    logit, with the final LayerNorm folded in.

    The final LayerNorm is linear once its scale (cached per position) is fixed: each
    component is centred, divided by that scale, multiplied by the LayerNorm weight and
    unembedded. The LayerNorm bias and ``b_U`` make the last component, "biases". The
    contributions add up to the model's own correct-minus-mean logit.
    """
    wanted = set(COMPONENTS) | {"ln_final.hook_scale"}
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in wanted)
    targets = task.targets(tokens)  # [B, T]
    direction, biases = _unembedding(model)
    correct_direction = direction[targets] - direction.mean(0)  # [B, T, D]
    return _folded_contributions(cache, ..., correct_direction, (biases - biases.mean())[targets])


@torch.no_grad()
def tie_contributions(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, min_position: int = 16
) -> tuple[list[str], Tensor]:
    """``(names, [R, C])``: at every position ≥ ``min_position`` where exactly two values tie
    for the lead (R of them), each component's share of the smaller tied value's logit minus
    the larger's, with the final LayerNorm folded in as in :func:`logit_contributions`."""
    cache = batched_cache(model, tokens, [*COMPONENTS, "ln_final.hook_scale"])
    counts = task.running_counts(tokens)
    top = counts.max(-1, keepdim=True).values
    tied = counts == top
    rows = (tied.sum(-1) == 2)
    rows[:, :min_position] = False
    values = torch.arange(task.d_vocab_out)
    smaller = torch.where(tied, values, task.d_vocab_out).min(-1).values[rows]
    larger = torch.where(tied, values, -1).max(-1).values[rows]
    direction, biases = _unembedding(model)
    difference = direction[smaller] - direction[larger]  # [R, D]
    return _folded_contributions(cache, rows, difference, biases[smaller] - biases[larger])


__all__ = ["ATTN_OUT", "COMPONENTS", "logit_contributions", "patch_attention_output",
           "permuted_prefixes", "running_histogram", "tie_contributions"]
