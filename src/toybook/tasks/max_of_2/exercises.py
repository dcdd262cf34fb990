"""The max-of-2 chapter's implement-exercise: the QK circuit's score for each key token."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from toybook.exercises import Case, Feedback, Mistake, check
from toybook.tasks.max_of_2.presets import MAX_OF_2
from toybook.tasks.max_of_2.task import EQUALS, MaxOf2Task


def check_qk_token_scores(fn: Callable[[torch.nn.Module], Tensor]) -> Feedback:
    """``fn(model) → [d_vocab]``: the attention score each key token gets from the query
    ``=`` at position 2 through its embedding alone, scaled as the model scales it."""
    from toybook.analysis.circuits import one_layer_circuits
    from toybook.zoo import load_model

    model = load_model(MAX_OF_2.name)
    query_pos = MaxOf2Task().n_ctx - 1
    narrow = _narrow_heads_model()

    def reference(model: torch.nn.Module) -> Tensor:
        return one_layer_circuits(model, EQUALS, query_pos).qk_token

    def unscaled(model: torch.nn.Module) -> Tensor:
        return reference(model) * model.cfg.d_head**0.5

    def no_query_position(model: torch.nn.Module) -> Tensor:
        E, W_Q, W_K = model.W_E.double(), model.W_Q[0, 0].double(), model.W_K[0, 0].double()
        return E @ W_K @ W_Q.T @ E[EQUALS] / model.cfg.d_head**0.5

    def scaled_by_d_model(model: torch.nn.Module) -> Tensor:
        return unscaled(model) / model.cfg.d_model**0.5

    # the shipped model has d_head = d_model, where dividing by the wrong size passes
    cases = [Case("the shipped max_of_2 model", (model,)),
             Case("an untrained model with d_head 8 < d_model 32", (narrow,))]
    mistakes = [
        Mistake(unscaled, "the scores are divided by sqrt(d_head) before the softmax"),
        Mistake(scaled_by_d_model, "the scale is sqrt(d_head), the size of a query and a key, "
                "not sqrt(d_model)"),
        Mistake(no_query_position, "the query is the '=' token at position 2: its residual "
                "stream is W_E[=] + W_pos[2], not the token embedding alone"),
    ]
    return check("QK token scores", fn, reference, cases, mistakes,
                 "score(t) = (W_E[=] + W_pos[2]) W_Q W_K^T W_E[t]^T / sqrt(d_head)",
                 tolerance=1e-4)


def _narrow_heads_model() -> torch.nn.Module:
    """An untrained max-of-2-shaped model whose head is narrower than its residual stream."""
    from toybook.configs import ModelConfig
    from toybook.model import attach_task, build_model

    task = MaxOf2Task()
    config = ModelConfig.for_task(task, n_layers=1, n_heads=1, d_model=32, d_head=8,
                                  normalization_type=None, use_biases=False)
    return attach_task(build_model(config, seed=1), task).eval()


__all__ = ["check_qk_token_scores"]
