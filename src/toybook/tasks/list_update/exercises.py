"""The list-update chapter's implement-exercise: where layer 1 copies each answer from."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from toybook.exercises import Case, Feedback, Mistake, check
from toybook.tasks.list_update.task import ListUpdateTask


def check_copy_sources(fn: Callable[[Tensor], Tensor], model: str = "list_update") -> Feedback:
    """``fn(tokens [B, 11]) → [B, 3]``: for each answer ``b_k``, the position layer 1 copies it
    from in the shipped model ``model`` (default the chapter's, ``"list_update"``; any shipped
    list-update model, seeds and the shortformer included).

    The expected answer is measured on that model, not written down: ``a_k`` (position 1 + k)
    where ``idx != k``, else ``elt``, read where the model reads it for ``b2`` (elt itself,
    position 6, or the second ``NL``, position 7, which layer 0 fills with elt; seeds differ,
    :func:`~toybook.tasks.list_update.analysis.b2_route`). These are the positions its
    layer-1 head attends to most on every case (``tests/test_exercises.py``)."""
    from toybook.errors import ToybookError
    from toybook.tasks.list_update.analysis import (
        ELT_POS, NL_POS, b2_route, hypothesised_sources, reference_sources,
    )
    from toybook.zoo import load_shipped

    checkpoint = load_shipped(model)
    if not isinstance(checkpoint.task, ListUpdateTask):
        raise ToybookError(f"check_copy_sources checks against a list-update model; {model!r} "
                           f"is a {checkpoint.task.name!r} model")
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
    reads_elt = b2_route(checkpoint.model, task.generate(300, seed=11)) == ELT_POS
    expected, other = (reference_sources, hypothesised_sources) if reads_elt \
        else (hypothesised_sources, reference_sources)
    where = (f"{model} reads elt itself (position {ELT_POS}) for b2 too, not the second NL "
             f"(position {NL_POS}); seeds differ here") if reads_elt else (
             f"for b2 {model} reads elt from the second NL (position {NL_POS}), where layer 0 "
             f"put it, not from elt itself (position {ELT_POS})")
    mistakes = [
        Mistake(lambda tokens: torch.tensor([1, 2, 3]).expand(len(tokens), 3),
                "this always copies a_k; where idx = k, b_k is elt, not a_k"),
        Mistake(lambda tokens: expected(tokens) - 1,
                "positions count from 0 and BOS holds position 0, so a_k sits at 1 + k"),
        Mistake(other, f"right for b0 and b1; {where}"),
    ]
    b2_at = ELT_POS if reads_elt else NL_POS
    return check(f"copy sources ({model})", fn, expected, cases, mistakes,
                 f"b_k is a_k (position 1 + k) unless idx = k; then it is elt, which layer 1 of "
                 f"{model} finds at position {ELT_POS} for b0 and b1 and at position {b2_at} for b2")


__all__ = ["check_copy_sources"]
