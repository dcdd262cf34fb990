"""Interventions on attention: replace a pattern, remove a head's output, remove positions.

Each ``run_*`` function runs the model once with hooks (via ``run_with_hooks``) and
returns logits ``[B, T, V]``; the hooks are removed afterwards.

Shapes: B batch, T ``n_ctx``, H heads, V ``d_vocab_out``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from toybook.analysis.ablation import overwrite_hook
from toybook.errors import ToybookError


def hard_attention(query_pos: int | Sequence[int], key_pos: Tensor, head: int = 0) -> Callable:
    """A ``hook_pattern`` hook: each query in ``query_pos`` attends only to its key.

    ``key_pos`` is ``[B]`` for one query position, or ``[B, Q]`` for ``Q`` query positions.
    """
    queries = [query_pos] if isinstance(query_pos, int) else list(query_pos)
    keys = key_pos.reshape(len(key_pos), -1)
    if keys.shape[1] != len(queries):
        raise ToybookError(f"{keys.shape[1]} key positions per row for {len(queries)} query "
                           "positions: give key_pos [B] for one query position, [B, Q] for Q")

    def one_hot(pattern: Tensor) -> Tensor:  # pattern [B, H, Q, K] → [B, len(queries), K]
        rows = torch.zeros_like(pattern[:, head, queries])
        return rows.scatter_(-1, keys.to(pattern.device).unsqueeze(-1), 1.0)

    return overwrite_hook((slice(None), head, queries), one_hot)


@torch.no_grad()
def run_with_hard_attention(
    model: torch.nn.Module, tokens: Tensor, query_pos: int | Sequence[int], key_pos: Tensor,
    layer: int = 0, head: int = 0,
) -> Tensor:
    """Logits when each query in ``query_pos`` attends only to its key in ``key_pos``."""
    hook = hard_attention(query_pos, key_pos, head)
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", hook)])


@torch.no_grad()
def run_without_attention_output(model: torch.nn.Module, tokens: Tensor, layer: int = 0) -> Tensor:
    """Logits with layer ``layer``'s attention output zeroed (the OV path removed)."""
    zero = lambda output, hook=None: torch.zeros_like(output)  # noqa: E731
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_attn_out", zero)])


@torch.no_grad()
def run_without_positional_embeddings(model: torch.nn.Module, tokens: Tensor) -> Tensor:
    """Logits with the positional embeddings zeroed everywhere (attention and residual)."""
    zero = lambda output, hook=None: torch.zeros_like(output)  # noqa: E731
    return model.run_with_hooks(tokens, fwd_hooks=[("hook_pos_embed", zero)])
