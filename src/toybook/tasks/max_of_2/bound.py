"""Proofs of max-of-2 accuracy, at four costs, that hold for the float32 model as it runs.

In the spirit of Gross et al., *Compact Proofs of Model Performance via Mechanistic
Interpretability*: a *strategy* certifies a set of inputs as answered correctly, and its
cost is counted in scalar operations. A cheaper proof must use more of the reading (the
circuits of :mod:`toybook.analysis.circuits`) and gives up some inputs to worst cases.

For an input with larger token ``m`` at position ``i``, smaller token ``t < m`` at the
other position and ``=`` at position 2, and any wrong answer ``j``::

    logit[j] - logit[m] = D_j + p_m A_j + p_t B_j(t) + p_= C_j

with ``D`` the direct path, ``A, B, C`` the OV-path differences of the three keys, and
attention ``p`` from the QK circuit. For all ``t <= k`` at once:

- ``p_m >= p_lo = 1 / (1 + exp(max_{t<=k} s_t - s_m) + exp(s_= - s_m))`` (scores are
  additive, so the worst ``t`` is the one with the highest score);
- ``p_t B_j + p_= C_j <= (1 - p_m) max(max_{t<=k} B_j(t), C_j)`` (``p_t + p_= = 1 - p_m``);
- the result is linear in ``p_m`` on ``[p_lo, 1]``, so it is largest at an end point.

The strategies (:data:`STRATEGIES`):

``brute_force``
    run the model on all ``V^2`` inputs; cost: its forward pass, counted from the config.
``coarse``
    the bound above with ``D``, ``A`` and the worst of ``B, C`` each maximised over ``j``
    separately: ``O(V^2)`` operations, sub-cubic (the circuits it reads cost ``O(V^2 d)``,
    and dominate at this size).
``grouped``
    the bound above for every ``j``: ``O(V^3)``.
``grouped_exact``
    ``grouped``, then every input it leaves is checked one by one from the circuits:
    ``O(V^3)`` plus ``O(V)`` per input left.

All but ``brute_force`` check the 64 inputs ``a == b`` one by one from the circuits.

**Float-sound.** The bounds reason about exact arithmetic on the float32 weights; the
model runs in float32. :func:`toybook.analysis.circuits.float32_logit_error` bounds, from
the weights, how far any float32 logit can be from the exact one (``eps_j``; the
derivation is in its docstring). A strategy certifies an input only if the exact margin
of the right answer over every wrong ``j`` exceeds ``eps_m + eps_j`` plus a reserve of
``1e-9`` times the size of the logits for the bound's own float64 arithmetic (a few dozen
operations per quantity at relative error ``2^-53`` err by under ``1e-13`` of it). The
brute force sees float32 logits from one machine, within ``eps`` of the exact ones, so it
needs a margin of ``2 (eps_m + eps_j)`` for the answer to hold on any machine. A tie
counts as wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from toybook.analysis.circuits import (
    OneLayerCircuits, float32_logit_error, one_layer_circuits,
)
from toybook.errors import ToybookError
from toybook.tasks.max_of_2.task import EQUALS, N_VALUES

STRATEGIES = ("brute_force", "coarse", "grouped", "grouped_exact")
FLOAT64_RESERVE = 1e-9


@dataclass(frozen=True)
class MaxOf2Bound:
    """What a strategy proved: ``certified[a, b]`` means input ``(a, b)`` is answered correctly."""

    strategy: str
    certified: Tensor  # [64, 64] bool
    cost: int  # scalar operations, the rounding-error bound included
    rounding: Tensor  # [64] float: eps_j, the float32 error bound of each logit

    @property
    def n_certified(self) -> int:
        return int(self.certified.sum())

    @property
    def accuracy_bound(self) -> float:
        return self.n_certified / self.certified.numel()

    @property
    def min_gap(self) -> Tensor:
        """``[64, 2]``: per larger token ``m`` and its position, the smallest gap ``g`` such
        that every input with smaller token ``<= m - g`` is certified (65: none)."""
        V = self.certified.shape[0]
        gaps = torch.full((V, 2), V + 1, dtype=torch.long)
        for m in range(1, V):
            for position, row in enumerate((self.certified[m, :m], self.certified[:m, m])):
                longest = int(row.long().cumprod(0).sum())
                if longest:
                    gaps[m, position] = m - longest + 1
        return gaps


@torch.no_grad()
def max_of_2_bound(model: torch.nn.Module, strategy: str = "grouped", float_sound: bool = True) -> MaxOf2Bound:
    """Certify max-of-2 inputs of a 1-layer, 1-head attention-only model by ``strategy``.

    ``float_sound=False`` runs the same proof in exact arithmetic with no rounding margin:
    not a certificate for the model as it runs, only a way to show what the margin is for
    (see :func:`with_near_tie`)."""
    if strategy not in STRATEGIES:
        raise ToybookError(f"unknown proof strategy {strategy!r}; the strategies are {', '.join(STRATEGIES)}")
    eps = float32_logit_error(model, EQUALS, 2)
    if not float_sound:
        return _certify(model, strategy, torch.zeros_like(eps), reserve=0.0)
    return _certify(model, strategy, eps)


def _certify(model: torch.nn.Module, strategy: str, eps: Tensor, reserve: float = FLOAT64_RESERVE) -> MaxOf2Bound:
    cfg = model.cfg
    cost = _rounding_cost(cfg)
    V = N_VALUES
    if strategy == "brute_force":
        inputs = torch.cartesian_prod(torch.arange(V), torch.arange(V))
        inputs = torch.cat([inputs, torch.full((V * V, 1), EQUALS)], 1)
        logits = model(inputs)[:, -1].double()
        certified = _margin_exceeds(logits, inputs[:, :2].max(1).values, eps, 2).reshape(V, V)
        return MaxOf2Bound(strategy, certified, cost + V * V * (_forward_cost(cfg) + 3 * V), eps)
    c = one_layer_circuits(model, query_token=EQUALS, query_pos=2)
    cost += _circuits_cost(cfg)
    size = float(c.direct.abs().max() + c.ov_token.abs().max() + c.ov_pos.abs().max())
    slack = eps + reserve * size
    certified = torch.zeros(V, V, dtype=torch.bool)
    diagonal = torch.stack([torch.arange(V), torch.arange(V), torch.full((V,), EQUALS)], 1)
    certified[torch.arange(V), torch.arange(V)] = _margin_exceeds(c.logits(diagonal), torch.arange(V), slack, 1)
    cost += V * _per_input_cost(V)
    for m_pos in (0, 1):
        ok, group_cost = (_coarse if strategy == "coarse" else _grouped)(c, m_pos, slack)
        cost += group_cost
        below = torch.ones(V, V, dtype=torch.bool).tril(-1)  # [m, t]: t < m
        grid = ok.T & below  # ok[t, m]: every t' <= t certified for larger token m
        certified |= grid if m_pos == 0 else grid.T
    if strategy == "grouped_exact":
        left = torch.nonzero(~certified)
        inputs = torch.cat([left, torch.full((len(left), 1), EQUALS)], 1)
        certified[left[:, 0], left[:, 1]] = _margin_exceeds(c.logits(inputs), left.max(1).values, slack, 1)
        cost += len(left) * _per_input_cost(V)
    return MaxOf2Bound(strategy, certified, cost, eps)


def _terms(c: OneLayerCircuits, m_pos: int, slack: Tensor):
    """The pieces of the bound for larger token ``m`` at ``m_pos``: ``D [m, j]`` (with the
    rounding slack), scores and values of the two other keys, and ``p_lo [k, m]``."""
    V = N_VALUES
    s_m = c.qk_token[:V] + c.qk_pos[m_pos]  # [m]
    s_t = c.qk_token[:V] + c.qk_pos[1 - m_pos]  # [t]
    s_eq = c.qk_token[EQUALS] + c.qk_pos[2]
    v_m = c.ov_token[:V] + c.ov_pos[m_pos]  # [m, j]: logits written when attending to m
    v_t = c.ov_token[:V] + c.ov_pos[1 - m_pos]  # [t, j]
    v_eq = c.ov_token[EQUALS] + c.ov_pos[2]  # [j]
    diag = torch.arange(V)
    D = (c.direct + slack)[None, :] - (c.direct - slack)[:, None]  # [m, j]
    A = v_m - v_m[diag, diag][:, None]  # [m, j]
    C = v_eq[None, :] - v_eq[:, None]  # [m, j]
    worst_s = s_t.cummax(0).values  # [k]: the highest score among t <= k
    p_lo = 1 / (1 + torch.exp(worst_s[:, None] - s_m[None, :]) + torch.exp(s_eq - s_m)[None, :])  # [k, m]
    return D, A, C, v_t, p_lo


def _grouped(c: OneLayerCircuits, m_pos: int, slack: Tensor) -> tuple[Tensor, int]:
    """``ok [k, m]``: every input with larger ``m`` at ``m_pos`` and smaller ``t <= k`` is
    certified, from the bound for every wrong answer ``j`` (``[k, m, j]``, cubic)."""
    V = N_VALUES
    D, A, C, v_t, p_lo = _terms(c, m_pos, slack)
    B = (v_t[:, None, :] - v_t[:, :, None]).cummax(0).values  # [k, m, j]: max_{t<=k} v_t[j] - v_t[m]
    M = torch.maximum(B, C[None])
    p = p_lo[:, :, None]
    worst = torch.maximum(D + p * A + (1 - p) * M, (D + A)[None])
    worst[:, torch.arange(V), torch.arange(V)] = -torch.inf
    return (worst < 0).all(-1), 12 * V**3 + 10 * V**2


def _coarse(c: OneLayerCircuits, m_pos: int, slack: Tensor) -> tuple[Tensor, int]:
    """As :func:`_grouped`, with ``D``, ``A`` and ``max(B, C)`` each maximised over ``j``
    on its own (a looser bound, ``[k, m]``, quadratic)."""
    V = N_VALUES
    D, A, C, v_t, p_lo = _terms(c, m_pos, slack)
    wrong = ~torch.eye(V, dtype=torch.bool)
    D_max, A_max, C_max = (x.where(wrong, -torch.inf).amax(1) for x in (D, A, C))  # [m]
    B_max = (v_t.amax(1, keepdim=True) - v_t).cummax(0).values  # [k, m]: max_{t<=k, j} v_t[j] - v_t[m]
    M = torch.maximum(B_max, C_max[None])
    worst = D_max + torch.maximum(p_lo * A_max + (1 - p_lo) * M, A_max[None])
    return worst < 0, 30 * V**2


@torch.no_grad()
def with_near_tie(model: torch.nn.Module, answer: int = 63, rival: int = 62, delta: float = 1e-7) -> torch.nn.Module:
    """A copy of ``model`` whose logit ``rival`` is ``logit[answer] - delta`` on every input:
    its unembedding column is ``answer``'s and its bias ``-delta``. In exact arithmetic the
    inputs whose answer is ``answer`` keep a margin of ``delta``; in float32, with logits
    of tens, ``delta = 1e-7`` is below half an ulp and the two logits tie, so those inputs
    are answered ``rival`` (arg-max takes the first). A proof that ignores rounding
    certifies them."""
    from toybook.model import copy_to

    copy = copy_to(model, "cpu")
    state = {name: value.clone() for name, value in copy.state_dict().items()}
    state["unembed.weight"][rival] = state["unembed.weight"][answer]
    state["unembed.bias"][rival] = state["unembed.bias"][answer] - delta
    copy.load_state_dict(state)
    return copy


def _margin_exceeds(logits: Tensor, correct: Tensor, eps: Tensor, factor: int) -> Tensor:
    """``[B]``: the right logit beats every other by more than ``factor (eps_right + eps_j)``
    (``eps`` a bound ``[V]`` per logit, or that plus a reserve)."""
    rows = torch.arange(len(correct))
    need = factor * (eps[correct][:, None] + eps[None, :])
    gap = logits[rows, correct][:, None] - logits - need
    gap[rows, correct] = torch.inf
    return (gap > 0).all(1)


def _forward_cost(cfg) -> int:
    """Scalar operations of one forward pass over all positions (1 layer, attention only)."""
    T, d, h, H, V = cfg.n_ctx, cfg.d_model, cfg.d_head, cfg.n_heads, cfg.d_vocab_out
    return (T * d  # embeddings
            + 3 * T * H * (2 * d * h + h)  # q, k, v
            + H * T * T * (2 * h + 1 + 5)  # scores, scale, softmax
            + H * T * T * 2 * h  # pattern @ v
            + T * (2 * H * h * d + d) + T * d  # output, residual
            + T * (2 * d * V + V))  # unembedding


def _circuits_cost(cfg) -> int:
    """Scalar operations of :func:`one_layer_circuits`."""
    T, d, h, Vi, V = cfg.n_ctx, cfg.d_model, cfg.d_head, cfg.d_vocab, cfg.d_vocab_out
    return (d + 2 * d * h + h + 2 * h * d  # query, key side
            + 2 * Vi * d + 2 * T * d  # QK token and position parts
            + 2 * d * h * d + 2 * d * d * V  # W_V W_O W_U
            + 2 * Vi * d * V + 2 * T * d * V + 2 * d * V)  # OV token, position parts; direct path


def _rounding_cost(cfg) -> int:
    """Scalar operations of :func:`float32_logit_error`."""
    T, d, h, Vi, V = cfg.n_ctx, cfg.d_model, cfg.d_head, cfg.d_vocab, cfg.d_vocab_out
    keys = Vi * T
    return (2 * 2 * (Vi + T) * d * h + 2 * keys * 6 * h  # |x| |W_K|, |x| |W_V| over every key
            + 2 * 8 * d * h + keys * 6 * h  # the query; scores
            + 2 * d * h * d + 2 * d * d * V + 2 * (Vi + T) * d * V + 2 * keys * V  # value-path logits
            + 8 * h * d + 8 * d * V)  # output, residual, unembedding


def _per_input_cost(V: int) -> int:
    """Scalar operations to rebuild one input's logits from the circuits and check them."""
    return 3 * (3 + 2 * V) + 10 + 4 * V


__all__ = ["MaxOf2Bound", "STRATEGIES", "max_of_2_bound", "with_near_tie"]
