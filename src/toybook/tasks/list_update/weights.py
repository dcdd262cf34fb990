"""The list-update circuit read off the weights, next to what path patching measures.

The reference tutorial for this task reads its model's algorithm largely from the weights:
the OV circuits copy (the full OV circuit of layer 1, and the virtual head through both
layers), and the QK circuit, fed by layer 0 (K-composition), moves layer 1's attention to
the updated value. :func:`weight_reading` makes the same readings on any model of this
task, in units that can be set side by side: for each answer ``b_k`` (its query at position
``7 + k``), how many points of attention score a term adds to the position the model reads
an updated ``b_k`` from (``elt`` at 6; for ``b2``, 6 or the second ``NL`` at 7, as
:func:`~toybook.tasks.list_update.analysis.b2_route` finds) over ``a_k``'s position
(``1 + k``):

- **positional default**: ``W_pos W_QK W_posᵀ`` alone, query ``7 + k`` against the two keys
  (negative: by position alone layer 1 prefers ``a_k``);
- **K-composition**: what ``idx = k`` rather than another index adds, when layer 0's OV
  circuit writes the ``idx`` token into the key at the source (layer 0 there attending to
  ``idx``), times layer 0's measured attention on ``idx`` from the source;
- **Q-composition**: the same, when layer 0 writes ``idx`` into the query at ``7 + k``,
  times layer 0's attention on ``idx`` from there.

And the OV circuits' diagonals: the share of the 50 values that layer 1's full OV circuit
(``W_E W_OV¹ W_U``), the virtual head (``W_E W_OV⁰ W_OV¹ W_U``) and layer 0's own OV circuit
(``W_E W_OV⁰ W_U``) map to themselves more than to any other value.

Every term reads the direct path into the receiving layer (a token's embedding plus its
position); what else reaches it is what path patching measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from toybook.tasks.list_update.analysis import ELT_POS, IDX_POS, QUERY_POS, b2_route
from toybook.tasks.list_update.task import LIST_LEN, N_VALUES, NL, ListUpdateTask


@dataclass(frozen=True)
class WeightReading:
    """One model's circuit read off its weights (scores in points of attention logit)."""

    positional_qk: tuple[Tensor, Tensor]  # [11, 11] per layer: W_pos W_QK W_posᵀ / √d_head
    positional_default: tuple[float, ...]  # per b_k: elt's score over a_k's, positions alone
    k_composition: Tensor  # [3 answers, 3 idx values]: elt's key score over a_k's, per idx written by L0
    q_composition: Tensor  # [3 answers, 3 idx values]: the same through the query at 7 + k
    key_attention: tuple[float, ...]  # per b_k: layer 0's mean attention on idx from b_k's source position
    query_attention: tuple[float, ...]  # per b_k: the same from its query position 7 + k
    b2_source: int  # where the model reads an updated b2 (b2_route): 6, or 7 (the second NL)
    ov_copies: float  # share of values whose L1 OV row peaks on itself
    virtual_copies: float  # the same for the L0 → L1 virtual head
    l0_copies: float  # the same for layer 0's OV circuit alone

    def contrast(self, matrix: Tensor, k: int) -> float:
        """What ``idx = k`` adds over the other indices, for answer ``b_k``."""
        others = [i for i in range(LIST_LEN) if i != k]
        return float(matrix[k, k] - matrix[k, others].mean())

    @property
    def k_contrast(self) -> tuple[float, ...]:
        """Per b_k: K-composition's push towards elt when idx = k, times L0's attention on idx."""
        return tuple(self.key_attention[k] * self.contrast(self.k_composition, k) for k in range(LIST_LEN))

    @property
    def q_contrast(self) -> tuple[float, ...]:
        """Per b_k: Q-composition's push towards elt when idx = k, times L0's attention on idx."""
        return tuple(self.query_attention[k] * self.contrast(self.q_composition, k) for k in range(LIST_LEN))


def _diagonal_share(circuit: Tensor) -> float:
    return (circuit.argmax(1) == torch.arange(len(circuit))).double().mean().item()


@torch.no_grad()
def weight_reading(model: nn.Module, task: ListUpdateTask, n_inputs: int = 1000, seed: int = 0) -> WeightReading:
    """Read ``model``'s circuit off its weights; layer 0's attention on ``idx`` (the one
    measured factor) is averaged over ``n_inputs`` random inputs."""
    E, P, U = model.W_E.double(), model.W_pos.double(), model.W_U.double()
    W_Q, W_K, W_V, W_O = ([w[layer, 0].double() for layer in range(2)] for w in (model.W_Q, model.W_K, model.W_V, model.W_O))
    scale = W_Q[0].shape[-1] ** -0.5
    positional_qk = tuple((P @ W_Q[layer]) @ (P @ W_K[layer]).T * scale for layer in range(2))
    values = E[:N_VALUES]
    queries = [E[NL] if k == 0 else values.mean(0) for k in range(LIST_LEN)]  # what stands at 7, 8, 9
    ov0 = W_V[0] @ W_O[0]
    idx_written = E[:LIST_LEN] @ ov0  # [3, d]: layer 0's output on attending to idx = 0, 1, 2
    tokens = task.generate(n_inputs, seed=seed)
    sources = (ELT_POS, ELT_POS, b2_route(model, tokens))
    k_composition = torch.stack([
        ((queries[k] + P[QUERY_POS[k]]) @ W_Q[1]) @ (idx_written @ W_K[1]).T * scale for k in range(LIST_LEN)])
    q_composition = torch.stack([
        (idx_written @ W_Q[1]) @ ((P[sources[k]] - P[1 + k]) @ W_K[1]) * scale for k in range(LIST_LEN)])
    _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    to_idx = cache["blocks.0.attn.hook_pattern"][:, 0, :, IDX_POS].mean(0)
    ov1 = W_V[1] @ W_O[1]
    return WeightReading(
        positional_qk=positional_qk,
        b2_source=sources[-1],
        positional_default=tuple(float(positional_qk[1][QUERY_POS[k], sources[k]] - positional_qk[1][QUERY_POS[k], 1 + k])
                                 for k in range(LIST_LEN)),
        k_composition=k_composition,
        q_composition=q_composition,
        key_attention=tuple(float(to_idx[source]) for source in sources),
        query_attention=tuple(float(to_idx[q]) for q in QUERY_POS),
        ov_copies=_diagonal_share(values @ ov1 @ U),
        virtual_copies=_diagonal_share(values @ ov0 @ ov1 @ U),
        l0_copies=_diagonal_share(values @ ov0 @ U),
    )
