"""The list-update chapter's implement-exercise: where layer 1 copies each answer from."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from toybook.exercises import Case, Feedback, Mistake, check
from toybook.tasks.list_update.task import ListUpdateTask


def check_copy_sources(fn: Callable[[Tensor], Tensor]) -> Feedback:
    """``fn(tokens [B, 11]) → [B, 3]``: for each answer ``b_k``, the position layer 1 should
    copy from according to the chapter's reading."""
    from toybook.tasks.list_update.analysis import hypothesised_sources

    task = ListUpdateTask()

    def encode(a: list[list[int]], idx: list[int], elt: list[int]) -> Tensor:
        return task.encode(torch.tensor(a), torch.tensor(idx), torch.tensor(elt))
    cases = [
        Case("idx = 0 (b0 is updated, b1 and b2 are kept)", (encode([[17, 3, 42]], [0], [8]),)),
        Case("idx = 1", (encode([[17, 3, 42]], [1], [8]),)),
        Case("idx = 2 (b2 is updated)", (encode([[17, 3, 42]], [2], [8]),)),
        Case("elt equal to the value it replaces", (encode([[5, 5, 5]], [1], [5]),)),
        Case("300 random inputs", (task.generate(300, seed=11),)),
    ]
    mistakes = [
        Mistake(lambda tokens: torch.tensor([1, 2, 3]).expand(len(tokens), 3),
                "this always copies a_k; where idx = k, b_k is elt, not a_k"),
        Mistake(lambda tokens: hypothesised_sources(tokens) - 1,
                "positions count from 0 and BOS holds position 0, so a_k sits at 1 + k"),
        Mistake(lambda tokens: torch.where(tokens[:, 5:6] == torch.arange(3), 6,
                                           torch.arange(1, 4)),
                "right for b0 and b1; for b2 the chapter found that layer 1 reads elt from the "
                "second NL (position 7), where layer 0 put it, not from elt itself"),
    ]
    return check("copy sources", fn, hypothesised_sources, cases, mistakes,
                 "b_k is a_k (position 1 + k) unless idx = k; then it is elt, which layer 1 "
                 "finds at position 6 for b0 and b1 and at position 7 for b2")


__all__ = ["check_copy_sources"]
