"""The addition chapter's implement-exercise: which columns receive a carry."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from toybook.exercises import Case, Feedback, Mistake, check
from toybook.tasks.addition.task import AdditionTask


def reference_carries(x: Tensor, y: Tensor) -> Tensor:
    """``[B, n+1]`` bool: column j receives a carry from column j - 1 (column 0 never; column
    n is the final carry), for operand digits ``x, y [B, n]`` with column 0 the units."""
    carry = torch.zeros(len(x), dtype=torch.long)
    into = [carry.bool()]
    for j in range(x.shape[1]):
        carry = (x[:, j] + y[:, j] + carry) // 10
        into.append(carry.bool())
    return torch.stack(into, 1)


def check_carries(fn: Callable[[Tensor, Tensor], Tensor]) -> Feedback:
    """``fn(x, y) → [B, n+1]`` bool for operand digits ``x, y [B, n]`` (column 0 = units):
    whether each column receives a carry."""
    task = AdditionTask()

    def digits(a: int, b: int) -> tuple[Tensor, Tensor]:
        return task.operand_digits(task.encode([a], [b]))

    cases = [
        Case("no carry: 12,345 + 11,111", digits(12_345, 11_111)),
        Case("one carry: 5 + 5", digits(5, 5)),
        Case("a final carry: 90,000 + 10,000", digits(90_000, 10_000)),
        Case("a cascade: 99,995 + 5", digits(99_995, 5)),
        Case("a sum-9 column without a carry: 45 + 54", digits(45, 54)),
        Case("500 random questions", task.operand_digits(task.generate(500, seed=3))),
    ]

    def no_cascade(x: Tensor, y: Tensor) -> Tensor:
        direct = (x + y) >= 10
        return torch.cat([torch.zeros(len(x), 1, dtype=torch.bool), direct], 1)

    def carry_out(x: Tensor, y: Tensor) -> Tensor:
        into = reference_carries(x, y)
        return torch.cat([into[:, 1:], torch.zeros(len(x), 1, dtype=torch.bool)], 1)

    mistakes = [
        Mistake(no_cascade, "a column that sums to 9 passes on the carry it receives: the "
                "carry cascades (99,995 + 5 carries into every column)"),
        Mistake(carry_out, "this is the carry out of each column; the answer wants the carry "
                "into it, one column further (column 0 never receives one)"),
    ]
    return check("carries", fn, reference_carries, cases, mistakes,
                 "column j receives a carry when x_{j-1} + y_{j-1} + (the carry into j-1) ≥ 10")


__all__ = ["check_carries", "reference_carries"]
