"""The circuits of a one-layer, attention-only transformer, read off its weights.

Without normalization or MLPs, the logits at a query position are an exact sum of paths
(Elhage et al., *A Mathematical Framework for Transformer Circuits*)::

    logits = (E[t_q] + P[q]) U                            direct path
           + sum_k  p_k (E[t_k] + P[k]) W_V W_O U          OV path, weighted by attention
    p = softmax_k( (E[t_q] + P[q]) W_Q W_K^T (E[t_k] + P[k])^T / sqrt(d_head) )   QK

and because the key side is linear, every attention score splits into a token part and a
position part. :func:`one_layer_circuits` computes all these pieces in float64 for one
query (a token at a position), e.g. the separator at a task's last position. Biases are
folded in: ``b_Q`` into the query, ``b_K`` and ``b_V`` into every key position (``b_K``
adds the same score to every key, ``b_V`` the same value), ``b_O`` and ``b_U`` into the
direct path.

The model itself runs in float32. :func:`float32_logit_error` bounds, from the weights
alone, how far its float32 logits can be from the exact ones, so that a proof about the
exact logits can be made to hold for the model as it runs.

Shapes: V_in ``d_vocab``, V ``d_vocab_out``, T ``n_ctx``.
"""

from __future__ import annotations

import math
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


def _require_one_layer(model: torch.nn.Module, what: str) -> None:
    """Refuse, by name, a model whose logits are not the sum of paths above."""
    cfg = model.cfg
    if cfg.n_layers != 1 or not cfg.attn_only:
        raise ToybookError(f"{what} needs a 1-layer attention-only model")
    if getattr(cfg, "normalization_type", None) is not None:
        raise ToybookError(f"{what} needs a model without normalization")
    config = getattr(model, "toybook_config", None)
    if config is not None and config.shortformer:
        raise ToybookError(f"{what} reads positions from the residual stream; this "
                           "model has shortformer positions (on queries and keys only)")


@torch.no_grad()
def one_layer_circuits(
    model: torch.nn.Module, query_token: int, query_pos: int, head: int = 0
) -> OneLayerCircuits:
    """The QK, OV and direct paths of ``head`` for the query ``query_token`` at ``query_pos``."""
    _require_one_layer(model, "one_layer_circuits")
    E, P, U = model.W_E.double(), model.W_pos.double(), model.W_U.double()
    W_Q, W_K, W_V, W_O = (w[0, head].double() for w in (model.W_Q, model.W_K, model.W_V, model.W_O))
    b_Q, b_K, b_V = (b[0, head].double() for b in (model.b_Q, model.b_K, model.b_V))
    b_O, b_U = model.b_O[0].double(), model.b_U.double()
    query = ((E[query_token] + P[query_pos]) @ W_Q + b_Q) / W_Q.shape[-1] ** 0.5
    key_side = query @ W_K.T  # [d_model]: a key's score is key_side · (E[t] + P[k]) + query · b_K
    OV_U = W_V @ W_O @ U
    return OneLayerCircuits(
        qk_token=E @ key_side,
        qk_pos=P @ key_side + query @ b_K,
        ov_token=E @ OV_U,
        ov_pos=P @ OV_U + b_V @ W_O @ U,
        direct=(E[query_token] + P[query_pos]) @ U + b_O @ U + b_U,
        direct_token=E @ U,
        direct_pos=P @ U,
    )


# float32's unit roundoff, and how far torch's CPU exp may be from the true one: its fastest
# kernel (Vectorized::exp_u20, used by softmax) documents 20 ulp; we allow 32 (1 ulp <= 2u)
UNIT_ROUNDOFF = 2.0**-24
EXP_ULPS = 32


@torch.no_grad()
def float32_logit_error(model: torch.nn.Module, query_token: int, query_pos: int) -> Tensor:
    """A bound ``[V]`` on |float32 logit - exact logit| at ``query_pos``, for every input.

    "Exact" is real arithmetic on the stored float32 weights, which is what a proof about
    the circuits reasons about. The bound follows the operations of the forward pass,
    with the standard model of floating point (Higham, *Accuracy and Stability of
    Numerical Algorithms*, ch. 3): each add, multiply or divide errs by at most
    ``u = 2^-24`` relative, and a sum of ``n`` products, in any order and with or without
    fused multiply-adds, by at most ``gamma_n = n u / (1 - n u)`` times the sum of their
    absolute values. With ``X`` an elementwise bound on a quantity and ``dX`` on its
    error, each step maps ``(X, dX)`` forward, worst case over every key (every token at
    every position; the query is fixed):

    - embeddings ``x = E[t] + P[k]``: one rounding, ``dx = u |x|``;
    - a linear map ``y = x W + b`` over ``n`` inputs: ``dy = dx |W| + gamma_{n+1} ((|x| + dx) |W| + |b|)``;
    - scores ``q . k / sqrt(d_head)``: ``ds = (dq . (|k| + dk) + |q| . dk + gamma_{d_head+2} (|q| + dq) . (|k| + dk)) / sqrt(d_head)``
      (the ``+2``: the rounded scale, and the division);
    - softmax: the score errors, the rounding of ``s - max s`` (at most ``2 u S`` for
      scores bounded by ``S``), exp (at most ``EXP_ULPS`` ulp), the sum and the division
      change every weight by a factor within ``exp(+-lam)``,
      ``lam = 2 (ds + 2 u S) + 3 EXP_ULPS 2u + 2 gamma_T + 2u``, so ``|dp_k| <= rho p_k`` with
      ``rho = e^lam - 1``. Since the weights sum to one, what that does to logit ``j`` is at
      most ``rho`` times the largest exact value-path logit ``|(x_k W_V + b_V) W_O W_U|_j``
      of any key, measured in logit space rather than pushed through ``|W_O| |W_U|``;
    - ``z = sum_k p_k v_k``: the values' own errors and the rounding of the sum,
      ``dz = (1 + rho) dv + gamma_T (1 + rho)(|v| + dv)``;
    - the output map, the residual add (one rounding) and the unembedding, as above.

    Assumptions: IEEE float32 arithmetic with round-to-nearest (no reduced-precision
    matmuls, which torch on CPU does not use by default), and an exp within ``EXP_ULPS``
    ulp. Underflow is covered by a small absolute term. The bound is loose (for the
    shipped max-of-2 model it is thousands of times the largest difference seen between
    the float32 and float64 logits) but small against the margins it guards.
    """
    _require_one_layer(model, "float32_logit_error")
    if model.cfg.n_heads != 1:
        raise ToybookError("float32_logit_error needs a model with one attention head")
    u = UNIT_ROUNDOFF

    def gamma(n: int) -> float:
        return n * u / (1 - n * u)

    def linear(X, dX, W, b):
        n = W.shape[0]
        return X @ W.abs() + b.abs(), dX @ W.abs() + gamma(n + 1) * ((X + dX) @ W.abs() + b.abs())

    E, P, U = model.W_E.double(), model.W_pos.double(), model.W_U.double()
    W_Q, W_K, W_V, W_O = (w[0, 0].double() for w in (model.W_Q, model.W_K, model.W_V, model.W_O))
    b_Q, b_K, b_V = (b[0, 0].double() for b in (model.b_Q, model.b_K, model.b_V))
    b_O, b_U = model.b_O[0].double(), model.b_U.double()
    n_ctx, d_head = P.shape[0], W_Q.shape[1]
    X_query = (E[query_token] + P[query_pos]).abs()
    Q, dQ = linear(X_query, u * X_query, W_Q, b_Q)

    def over_keys(W, b):  # linear() for every key (t, k), with |E[t] + P[k]| <= |E[t]| + |P[k]|
        XW = ((E.abs() @ W.abs())[:, None] + (P.abs() @ W.abs())[None]).flatten(0, 1)  # [keys, d_head]
        return XW + b.abs(), u * XW + gamma(W.shape[0] + 1) * ((1 + u) * XW + b.abs())

    K, dK = over_keys(W_K, b_K)
    V, dV = over_keys(W_V, b_V)
    scale = d_head**0.5
    S = float((((K + dK) @ (Q + dQ)) / scale).max()) * (1 + gamma(d_head + 2))  # bounds |computed score|
    d_score = float(((K + dK) @ dQ + dK @ Q + gamma(d_head + 2) * (K + dK) @ (Q + dQ)).max() / scale)
    lam = 2 * (d_score + 2 * u * S) + 3 * EXP_ULPS * 2 * u + 2 * gamma(n_ctx) + 2 * u
    rho = math.expm1(lam)
    OV_U = W_V @ W_O @ U
    value_logits = ((E @ OV_U)[:, None] + (P @ OV_U)[None] + b_V @ W_O @ U).abs().amax((0, 1))  # [V]
    V_max, dV_max = V.amax(0), dV.amax(0)
    dZ = (1 + rho) * dV_max + gamma(n_ctx) * (1 + rho) * (V_max + dV_max)
    # rho's share is already in logit space; it enters below only where a rounding scales
    # with the size of the computed value
    O = V_max @ W_O.abs() + b_O.abs()
    O_rho = rho * V_max @ W_O.abs()
    dO = dZ @ W_O.abs() + gamma(d_head + 1) * ((V_max + dZ + rho * V_max) @ W_O.abs() + b_O.abs())
    R = X_query + O
    dR = u * X_query + dO + u * (X_query * (1 + u) + O + O_rho + dO)
    R_hat = R + O_rho + dR
    dL = dR @ U.abs() + gamma(U.shape[0] + 1) * (R_hat @ U.abs() + b_U.abs())
    return rho * value_logits + dL + 1e-30
