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
from toybook.evaluation import forward_batches
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
    _check_hard_attention(model, tokens, query_pos, key_pos, layer, head)
    hook = hard_attention(query_pos, key_pos, head)
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", hook)])


def _check_hard_attention(model, tokens: Tensor, query_pos, key_pos: Tensor, layer: int, head: int) -> None:
    """Refuse, by name, what would index out of range or be broadcast silently."""
    cfg = model.cfg
    if not 0 <= layer < cfg.n_layers:
        raise ToybookError(f"layer {layer} does not exist: the model has layers 0..{cfg.n_layers - 1}")
    if not 0 <= head < cfg.n_heads:
        raise ToybookError(f"head {head} does not exist: the model has heads 0..{cfg.n_heads - 1}")
    key_pos = torch.as_tensor(key_pos)
    if key_pos.dtype.is_floating_point or key_pos.dtype == torch.bool or key_pos.ndim not in (1, 2):
        raise ToybookError(f"key_pos must be integer positions [B] or [B, Q], got {key_pos.dtype} "
                           f"of shape {list(key_pos.shape)}")
    if len(key_pos) != len(tokens):
        raise ToybookError(f"{len(key_pos)} rows of key positions for {len(tokens)} sequences: "
                           "give one row per sequence")
    queries = [query_pos] if isinstance(query_pos, int) else list(query_pos)
    n = tokens.shape[-1]
    for q in queries:
        if not 0 <= q < n:
            raise ToybookError(f"query position {q} is outside the sequence: positions are 0..{n - 1}")
    keys = key_pos.reshape(len(key_pos), -1)
    if keys.shape[1] == len(queries):
        for column, q in enumerate(queries):
            bad = keys[:, column][(keys[:, column] < 0) | (keys[:, column] > q)]
            if len(bad):
                raise ToybookError(f"the query at position {q} can attend only to positions 0..{q} "
                                   f"(attention is causal); got key position {int(bad[0])}")


@torch.no_grad()
def run_with_shifted_scores(
    model: torch.nn.Module, tokens: Tensor, query_pos: int, shift: Tensor, layer: int = 0, head: int = 0,
) -> Tensor:
    """Logits when the query at ``query_pos`` scores key ``k`` of row ``b`` higher by
    ``shift[b, k]`` (``[B, K]``, K ≤ ``query_pos + 1``) before the softmax: an edit of the QK
    scores and of nothing else. Written on the pattern, since ``softmax(s + d)`` is
    ``p·exp(d)`` renormalised."""
    _check_hard_attention(model, tokens, query_pos, torch.zeros(len(tokens), dtype=torch.long), layer, head)
    if shift.shape[0] != len(tokens) or shift.ndim != 2 or shift.shape[1] > query_pos + 1:
        raise ToybookError(f"shift must be [B, K] with B = {len(tokens)} rows and K ≤ {query_pos + 1} "
                           f"keys (attention is causal), got {list(shift.shape)}")

    def lifted(pattern: Tensor) -> Tensor:  # [B, K]
        row = pattern[:, head, query_pos].double()
        row[:, :shift.shape[1]] *= shift.to(row.device).double().exp()
        return (row / row.sum(-1, keepdim=True)).to(pattern.dtype)

    hook = overwrite_hook((slice(None), head, query_pos), lifted)
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


@torch.no_grad()
def with_uniform_attention(model: torch.nn.Module, tokens: Tensor, layer: int = 0) -> Tensor:
    """Logits ``[B, T, V]`` with every head's pattern in ``layer`` replaced by exactly uniform
    attention over the prefix (weight ``1 / (i + 1)`` on each token ``0..i``), batch by batch."""
    n = tokens.shape[1]
    uniform = torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None]

    def hook(pattern: Tensor, hook=None) -> Tensor:
        return uniform.to(pattern.dtype).expand_as(pattern).clone()
    return torch.cat([logits for _, _, logits in forward_batches(
        model, tokens, run=lambda batch: model.run_with_hooks(
            batch, fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", hook)]))])
