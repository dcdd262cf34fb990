"""The circuits of a one-layer, attention-only transformer, read off its weights.

Without normalization or MLPs, the logits at a query position are an exact sum of paths
(Elhage et al., *A Mathematical Framework for Transformer Circuits*)::

    logits = (E[t_q] + P[q]) U                            direct path
           + sum_k  p_k (E[t_k] + P[k]) W_V W_O U          OV path, weighted by attention
    p = softmax_k( (E[t_q] + P[q]) W_Q W_K^T (E[t_k] + P[k])^T / sqrt(d_head) )   QK

and because the key side is linear, every attention score splits into a token part and a
position part. :func:`one_layer_circuits` computes all these pieces in float64 for one
query (a token at a position), e.g. the separator at a task's last position.

Shapes: V_in ``d_vocab``, V ``d_vocab_out``, T ``n_ctx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from toybook.errors import ToybookError


@dataclass(frozen=True)
class OneLayerCircuits:
    """Every path of a 1-layer attention-only head, for one query token at one position."""

    qk_token: Tensor  # [V_in] score contribution of each key token
    qk_pos: Tensor  # [T] score contribution of each key position
    ov_token: Tensor  # [V_in, V] logits written when attending to each key token
    ov_pos: Tensor  # [T, V] logits written when attending to each key position
    direct: Tensor  # [V] logits from the query's own embedding + position, bypassing attention
    direct_token: Tensor  # [V_in, V] the direct path W_E W_U of every token
    direct_pos: Tensor  # [T, V] the direct path W_pos W_U of every position

    def logits(self, tokens: Tensor) -> Tensor:
        """Rebuild the query position's logits ``[B, V]`` from the paths (keys = ``tokens [B, T]``)."""
        positions = torch.arange(tokens.shape[1])
        scores = self.qk_token[tokens] + self.qk_pos[positions]
        pattern = scores.softmax(-1)
        values = self.ov_token[tokens] + self.ov_pos[positions]
        return self.direct + torch.einsum("bk,bkv->bv", pattern, values)


@torch.no_grad()
def one_layer_circuits(
    model: torch.nn.Module, query_token: int, query_pos: int, head: int = 0
) -> OneLayerCircuits:
    """The QK, OV and direct paths of ``head`` for the query ``query_token`` at ``query_pos``."""
    cfg = model.cfg
    if cfg.n_layers != 1 or not cfg.attn_only:
        raise ToybookError("one_layer_circuits needs a 1-layer attention-only model")
    if getattr(cfg, "normalization_type", None) is not None:
        raise ToybookError("one_layer_circuits needs a model without normalization")
    config = getattr(model, "toybook_config", None)
    if config is not None and config.shortformer:
        raise ToybookError("one_layer_circuits reads positions from the residual stream; this "
                           "model has shortformer positions (on queries and keys only)")
    E, P, U = model.W_E.double(), model.W_pos.double(), model.W_U.double()
    W_Q, W_K, W_V, W_O = (w[0, head].double() for w in (model.W_Q, model.W_K, model.W_V, model.W_O))
    query = (E[query_token] + P[query_pos]) @ W_Q / W_Q.shape[-1] ** 0.5
    key_side = query @ W_K.T  # [d_model]: a key's score is key_side · (E[t] + P[k])
    OV_U = W_V @ W_O @ U
    return OneLayerCircuits(
        qk_token=E @ key_side,
        qk_pos=P @ key_side,
        ov_token=E @ OV_U,
        ov_pos=P @ OV_U,
        direct=(E[query_token] + P[query_pos]) @ U,
        direct_token=E @ U,
        direct_pos=P @ U,
    )
