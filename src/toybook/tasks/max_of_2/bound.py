"""A lower bound on max-of-2 accuracy computed from the weights alone.

In the spirit of Gross et al., *Compact Proofs of Model Performance via Mechanistic
Interpretability*: instead of running the model on all 4096 inputs, bound the logit
difference of every wrong answer from the decomposed circuits (see
:mod:`toybook.analysis.circuits`) with worst cases over groups of inputs.

For an input with larger token ``m`` at position ``i``, smaller token ``t < m`` at the
other position and ``=`` at position 2, and any wrong answer ``j``::

    logit[j] - logit[m] = D_j + p_m A_j + p_t B_j(t) + p_= C_j

with ``D`` the direct path, ``A, B, C`` the OV-path differences of the three keys, and
attention ``p`` from the QK circuit. For all ``t`` up to ``m - g`` at once:

- ``p_m >= p_lo = 1 / (1 + exp(max_t s_t - s_m) + exp(s_= - s_m))`` (scores are additive,
  so the worst ``t`` is the one with the highest score);
- ``p_t B_j + p_= C_j <= (1 - p_m) max(max_t B_j(t), C_j)`` (``p_t + p_= = 1 - p_m``);
- the result is linear in ``p_m`` on ``[p_lo, 1]``, so it is largest at an end point.

If that worst case is negative for every ``j != m``, every input of the group is
answered correctly. For each ``(m, i)`` the smallest gap ``g`` that can be certified is
found; inputs ``a == b`` (64 of them) are checked one by one from the circuits. The
bound counts everything not certified as wrong.

What it assumes: exact real arithmetic on the stored float32 weights (it computes in
float64; the model itself runs in float32, so a case within rounding error of a tie
could differ), and that a tie in the arg-max counts as wrong.

Cost: O(V^3) scalar operations on V = 64 (a few hundred thousand), no forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from toybook.analysis.circuits import OneLayerCircuits, one_layer_circuits
from toybook.tasks.max_of_2.task import EQUALS, N_VALUES


@dataclass(frozen=True)
class MaxOf2Bound:
    certified: Tensor  # [64, 64] bool: input (a, b) proven correct
    min_gap: Tensor  # [64, 2] smallest certified gap per (max m, position of m); 65 = none

    @property
    def n_certified(self) -> int:
        return int(self.certified.sum())

    @property
    def accuracy_bound(self) -> float:
        return self.n_certified / self.certified.numel()


@torch.no_grad()
def max_of_2_bound(model: torch.nn.Module) -> MaxOf2Bound:
    """Certify max-of-2 inputs from the weights of a 1-layer attention-only model."""
    c = one_layer_circuits(model, query_token=EQUALS, query_pos=2)
    V = N_VALUES
    certified = torch.zeros(V, V, dtype=torch.bool)
    min_gap = torch.full((V, 2), V + 1, dtype=torch.long)
    diagonal = c.logits(torch.stack([torch.arange(V), torch.arange(V), torch.full((V,), EQUALS)], 1))
    certified[torch.arange(V), torch.arange(V)] = _margin_positive(diagonal, torch.arange(V))
    s_eq = c.qk_token[EQUALS] + c.qk_pos[2]
    v_eq = c.ov_token[EQUALS] + c.ov_pos[2]  # [V]
    for m_pos in (0, 1):
        t_pos = 1 - m_pos
        s_t = c.qk_token[:V] + c.qk_pos[t_pos]  # [V] score of each smaller token
        v_t = c.ov_token[:V] + c.ov_pos[t_pos]  # [V, V] values of each smaller token
        for m in range(1, V):
            s_m = c.qk_token[m] + c.qk_pos[m_pos]
            v_m = c.ov_token[m] + c.ov_pos[m_pos]
            D = c.direct - c.direct[m]
            A = v_m - v_m[m]
            C = v_eq - v_eq[m]
            # groups t in 0..m-g for g = m..1, i.e. prefixes of 0..m-1 of growing length
            worst_s = s_t[:m].cummax(0).values  # [m]: max score over t <= m-g
            worst_B = (v_t[:m] - v_t[:m, m : m + 1]).cummax(0).values  # [m, V]
            p_lo = 1 / (1 + torch.exp(worst_s - s_m) + torch.exp(s_eq - s_m))  # [m]
            M = torch.maximum(worst_B, C)
            at_p_lo = D + p_lo[:, None] * A + (1 - p_lo[:, None]) * M
            worst = torch.maximum(at_p_lo, (D + A).expand_as(at_p_lo))
            worst[:, m] = -torch.inf
            ok = (worst < 0).all(1)  # [m]: prefix t <= k certified
            if not bool(ok.any()):
                continue
            # the longest certified prefix; a prefix of a certified prefix is certified too
            longest = int(torch.nonzero(ok).max()) + 1
            min_gap[m, m_pos] = m - longest + 1
            small = torch.arange(longest)
            if m_pos == 0:
                certified[m, small] = True
            else:
                certified[small, m] = True
    return MaxOf2Bound(certified=certified, min_gap=min_gap)


def _margin_positive(logits: Tensor, correct: Tensor) -> Tensor:
    wrong = logits.clone()
    wrong[torch.arange(len(correct)), correct] = -torch.inf
    return logits[torch.arange(len(correct)), correct] > wrong.max(-1).values


__all__ = ["MaxOf2Bound", "max_of_2_bound", "OneLayerCircuits"]
