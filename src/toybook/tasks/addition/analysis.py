"""Addition question sets built by construction, one per question class, and accuracy on them.

Random questions rarely contain the hard cases: a cascade of two or more sum-9 columns
fed by a carry (e.g. 00555 + 00445) is a few percent of uniform questions, and depth 4
(e.g. 44445 + 55555) far rarer. :func:`question_sets` builds each class on purpose: it
chooses where the carries and sum-9 columns are (every placement the class allows, in
turn) and fills each column with a random digit pair of the required kind.

Shapes: B questions, n digits per operand (column 0 = units).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import torch
from torch import Tensor

from toybook.evaluation import batch_rows, forward_batches, fresh_inputs
from toybook.tasks.addition.task import AdditionTask

# digit pairs (x_j, y_j) by what the column does: no carry and not 9, exactly 9, a carry
_PAIRS = {
    kind: torch.tensor([(a, b) for a in range(10) for b in range(10) if test(a + b)])
    for kind, test in (("plain", lambda s: s <= 8), ("nine", lambda s: s == 9), ("carry", lambda s: s >= 10))
}


def _fill(layouts: list[list[str]], per_layout: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Operand digits ``x, y [len(layouts) * per_layout, n]`` with column j of every question
    drawn from the pairs of kind ``layout[j]``."""
    xs, ys = [], []
    for layout in layouts:
        x = torch.empty(per_layout, len(layout), dtype=torch.long)
        y = torch.empty_like(x)
        for j, kind in enumerate(layout):
            pairs = _PAIRS[kind]
            chosen = pairs[torch.randint(0, len(pairs), (per_layout,), generator=generator)]
            x[:, j], y[:, j] = chosen[:, 0], chosen[:, 1]
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def _cascade_layouts(n: int, depth: int) -> list[list[str]]:
    """A carry in column c followed by ``depth`` sum-9 columns, every c that fits."""
    layouts = []
    for carry in range(n - depth):
        layout = ["plain"] * n
        layout[carry] = "carry"
        for j in range(carry + 1, carry + 1 + depth):
            layout[j] = "nine"
        layouts.append(layout)
    return layouts


def question_sets(task: AdditionTask, per_layout: int = 200, seed: int = 0) -> dict[str, Tensor]:
    """Questions ``[B, 3n+3]`` by class, ``per_layout`` random fillings of every layout:

    - ``BA``: no column carries and none sums to 9 (one layout);
    - ``UC1``: carries in every non-empty set of columns, no column sums to 9, so carries
      are used but never cascade (2^n − 1 layouts);
    - ``SimpleUS9``: one carry, then exactly one sum-9 column that passes it on (n − 1);
    - ``Cascade2``, ``Cascade3``, ``Cascade4``: one carry, then 2, 3 or 4 sum-9 columns in a
      row (n − d layouts each; d ≤ n − 1).
    """
    n = task.n_digits
    generator = torch.Generator().manual_seed(seed)
    layouts = {
        "BA": [["plain"] * n],
        "UC1": [
            ["carry" if j in chosen else "plain" for j in range(n)]
            for size in range(1, n + 1) for chosen in combinations(range(n), size)
        ],
        "SimpleUS9": _cascade_layouts(n, 1),
        **{f"Cascade{d}": _cascade_layouts(n, d) for d in range(2, min(4, n - 1) + 1)},
    }
    return {
        name: task.encode_digits(*_fill(class_layouts, per_layout, generator))
        for name, class_layouts in layouts.items()
    }


@dataclass(frozen=True)
class AdditionAccuracy:
    """Wrong answers of an addition model on random questions and on each question set."""

    n_random: int
    seed: int
    random_wrong: int  # questions with any wrong digit
    random_wrong_per_digit: list[int]  # answer order, A_n first
    sets: dict[str, list[int]]  # name → [questions, wrong questions]

    @property
    def summary(self) -> str:
        wrong_sets = sum(wrong for _, wrong in self.sets.values())
        n_sets = sum(n for n, _ in self.sets.values())
        return (f"{self.random_wrong:,} wrong of {self.n_random:,} random; "
                f"{wrong_sets:,} wrong of {n_sets:,} hand-built (BA, UC1, US9, cascades)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


@torch.no_grad()
def addition_accuracy(
    model: torch.nn.Module, task: AdditionTask, n_random: int = 1_000_000, seed: int = 12345,
    per_layout: int = 200, batch_size: int | None = None, progress: bool = False,
) -> AdditionAccuracy:
    """Accuracy on ``n_random`` uniform random questions and on :func:`question_sets`."""
    wrong_rows, wrong_per_digit = 0, torch.zeros(task.n_answers, dtype=torch.long)
    for _, tokens, logits in forward_batches(
        model, fresh_inputs(task, seed), n_random, batch_size or batch_rows(task.n_ctx), progress,
        desc="random questions",
    ):
        wrong = (~task.correct(logits, tokens)).cpu()
        wrong_rows += int(wrong.any(1).sum())
        wrong_per_digit += wrong.sum(0)
    sets = {}
    for name, tokens in question_sets(task, per_layout, seed).items():
        wrong = sum(
            int((~task.correct(logits, batch)).any(1).sum())
            for _, batch, logits in forward_batches(model, tokens, batch_size=batch_size)
        )
        sets[name] = [len(tokens), wrong]
    return AdditionAccuracy(n_random, seed, wrong_rows, wrong_per_digit.tolist(), sets)
