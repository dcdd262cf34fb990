"""Direct logit attribution: how much each residual-stream component adds to the answer.

Without normalization the final residual stream is a plain sum (embedding + positional
embedding + each layer's attention output [+ MLP outputs]) and the logits are that sum
times ``W_U`` (plus ``b_U``), so each component's share of a logit is exact.

Shapes: B batch, C components, A answer positions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from toybook.errors import ToybookError
from toybook.task import Task


def residual_components(model: torch.nn.Module) -> list[str]:
    """Hook names of the terms that add up to the final residual stream, in order."""
    names = ["hook_embed", "hook_pos_embed"]
    for layer in range(model.cfg.n_layers):
        names.append(f"blocks.{layer}.hook_attn_out")
        if not model.cfg.attn_only:
            names.append(f"blocks.{layer}.hook_mlp_out")
    return names


@torch.no_grad()
def answer_logit_attribution(
    model: torch.nn.Module, task: Task, tokens: Tensor
) -> tuple[list[str], Tensor]:
    """``(component names, attribution [B, C, A])`` for the correct answers of ``tokens``.

    The attribution is each component's contribution to the correct answer's logit minus
    the mean logit (a shift shared by all logits changes no prediction). Summed over
    components it equals the model's own correct-minus-mean logit, up to ``b_U``.
    """
    if getattr(model.cfg, "normalization_type", None) is not None:
        raise ToybookError(
            "direct logit attribution here needs a model without normalization "
            f"(this one uses {model.cfg.normalization_type})"
        )
    if (task.d_vocab_out, task.n_ctx) != (model.cfg.d_vocab_out, model.cfg.n_ctx):
        raise ToybookError(
            f"the task {task.name!r} does not fit this model: the task has {task.d_vocab_out} "
            f"answers and {task.n_ctx} positions, the model {model.cfg.d_vocab_out} and "
            f"{model.cfg.n_ctx}; pass the task the model was trained on")
    names = residual_components(model)
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in set(names))
    answers = task.answer_positions
    targets = task.targets(tokens)  # [B, A]
    unembed = model.W_U  # [d_model, V]
    correct_direction = unembed.T[targets] - unembed.mean(1)  # [B, A, d_model]
    stack = torch.stack([cache[name][:, answers] for name in names], 1)  # [B, C, A, d_model]
    return names, (stack * correct_direction[:, None]).sum(-1)
