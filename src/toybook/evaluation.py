"""Batched evaluation of a model on a task: exact-match accuracy and loss.

Shapes: N sequences, T ``n_ctx``, A answer positions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from toybook.tasks import Task


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of a model on ``n`` sequences."""

    n: int
    n_wrong: int  # sequences with at least one wrong answer
    acc: float  # whole-sequence exact match
    acc_per_pos: list[float]  # one per answer position
    wrong_per_pos: list[int]
    loss: float  # mean float64 cross-entropy over answers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, task: Task, tokens: Tensor, batch_size: int = 8192
) -> EvalResult:
    """Run ``model`` on ``tokens [N, T]`` in batches and compare with the task's targets."""
    task.validate(tokens)
    device = next(model.parameters()).device
    wrong_rows, loss_sum = 0, 0.0
    wrong_per_pos = torch.zeros(task.n_answers, dtype=torch.long)
    for start in range(0, len(tokens), batch_size):
        batch = tokens[start : start + batch_size].to(device)
        logits = model(batch)
        correct = task.correct(logits, batch).cpu()
        wrong_rows += int((~correct.all(-1)).sum())
        wrong_per_pos += (~correct).sum(0)
        loss_sum += float(task.token_losses(logits, batch).sum())
    n = len(tokens)
    return EvalResult(
        n=n,
        n_wrong=wrong_rows,
        acc=1 - wrong_rows / n,
        acc_per_pos=(1 - wrong_per_pos.double() / n).tolist(),
        wrong_per_pos=wrong_per_pos.tolist(),
        loss=loss_sum / (n * task.n_answers),
    )
