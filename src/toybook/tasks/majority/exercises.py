"""The majority chapter's implement-exercise: the running histogram attention computes."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from toybook.exercises import Case, Feedback, Mistake, check
from toybook.tasks.majority.task import MajorityTask


def check_running_histogram(fn: Callable[[Tensor], Tensor]) -> Feedback:
    """``fn(tokens [B, T]) → [B, T, 10]``: the fraction of each value among tokens 0..i."""
    from toybook.tasks.majority.attention import running_histogram

    task = MajorityTask()

    def reference(tokens: Tensor) -> Tensor:
        return running_histogram(task, tokens)

    cases = [
        Case("one value repeated", (torch.full((1, task.n_ctx), 3),)),
        Case("two values alternating", (torch.arange(task.n_ctx)[None] % 2 * 7,)),
        Case("50 random sequences", (task.generate(50, seed=4),)),
    ]

    def counts(tokens: Tensor) -> Tensor:
        return task.running_counts(tokens).double()

    def exclusive(tokens: Tensor) -> Tensor:
        shifted = torch.cat([torch.zeros_like(counts(tokens)[:, :1]), counts(tokens)[:, :-1]], 1)
        return shifted / torch.arange(1, tokens.shape[1] + 1, dtype=torch.double)[None, :, None]

    mistakes = [
        Mistake(counts, "these are counts; attention averages, so the histogram is the count "
                "divided by the number of tokens so far, i + 1"),
        Mistake(exclusive, "position i attends to itself too: count tokens 0..i, not 0..i-1"),
    ]
    return check("running histogram", fn, reference, cases, mistakes,
                 "histogram[b, i, v] = (number of v among tokens[b, 0..i]) / (i + 1)",
                 tolerance=1e-6)


__all__ = ["check_running_histogram"]
