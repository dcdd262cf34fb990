"""Checkers for the book's implement-exercises: each runs the reader's function on the cases
that matter, edge cases included, against the shipped models, and answers with specific
feedback — which case, what was expected, what came back, and a hint. A hint names the
mistake where the answer matches a known one (e.g. a carry rule that forgets cascades).

    from toybook.exercises import check_carries
    check_carries(my_carries)     # Feedback: "✓ all 6 cases pass" or what went wrong

No network and no training: every check runs in a second or two on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from toybook.tasks import get_task


@dataclass(frozen=True)
class Feedback:
    """The verdict on one exercise; shows itself as its message in a notebook."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    def _repr_markdown_(self) -> str:
        return "\n".join(f"    {line}" for line in self.message.splitlines())


@dataclass(frozen=True)
class Case:
    name: str  # what makes this case matter, e.g. "a cascade: 99,995 + 5"
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer, as a function of the same arguments, and what to say."""

    answer: Callable[..., Tensor]
    hint: str


@torch.no_grad()
def check(
    exercise: str, fn: Callable[..., Any], reference: Callable[..., Tensor], cases: list[Case],
    mistakes: list[Mistake], hint: str, tolerance: float | None = None,
) -> Feedback:
    """Run ``fn`` on every case and compare with ``reference``: exact comparison, or within
    ``tolerance`` (absolute, relative to the largest expected value) for floats."""
    for case in cases:
        expected = reference(*case.args)
        try:
            got = fn(*case.args)
        except Exception as error:  # the reader's code: report, never raise
            return _fail(exercise, case, f"your function raised {type(error).__name__}: {error}",
                         "run it on this case by hand and read the traceback")
        got = torch.as_tensor(got) if not isinstance(got, Tensor) else got
        if tuple(got.shape) != tuple(expected.shape):
            return _fail(exercise, case, f"expected shape {list(expected.shape)}, got "
                         f"{list(got.shape)}", hint)
        if _same(got, expected, tolerance):
            continue
        known = next((m.hint for m in mistakes if _same(got, m.answer(*case.args), tolerance)), hint)
        return _fail(exercise, case, _difference(got, expected, tolerance), known)
    names = "; ".join(case.name for case in cases)
    return Feedback(True, f"✓ {exercise}: all {len(cases)} cases pass ({names})")


def _mismatch(got: Tensor, expected: Tensor, tolerance: float | None) -> Tensor:
    """Where ``got`` differs from ``expected`` (same shapes), as a bool tensor."""
    if tolerance is None:
        return got.double() != expected.double()
    scale = float(expected.abs().max()) or 1.0
    return (got.double() - expected.double()).abs() > tolerance * scale


def _same(got: Tensor, expected: Tensor, tolerance: float | None) -> bool:
    return got.shape == expected.shape and not bool(_mismatch(got, expected, tolerance).any())


def _difference(got: Tensor, expected: Tensor, tolerance: float | None) -> str:
    wrong = _mismatch(got, expected, tolerance)
    where = tuple(int(i) for i in wrong.nonzero()[0])
    return (f"{int(wrong.sum())} of {wrong.numel()} entries differ; first at index {list(where)}: "
            f"expected {_show(expected[where])}, got {_show(got[where])}")


def _show(value: Tensor) -> str:
    value = value.item() if value.numel() == 1 else value.tolist()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fail(exercise: str, case: Case, what: str, hint: str) -> Feedback:
    return Feedback(False, f"✗ {exercise}, case {case.name}:\n  {what}\n  hint: {hint}")


# ---- list update: where layer 1 copies from --------------------------------------------------

def check_copy_sources(fn: Callable[[Tensor], Tensor]) -> Feedback:
    """``fn(tokens [B, 11]) → [B, 3]``: for each answer ``b_k``, the position layer 1 should
    copy from according to the chapter's reading."""
    from toybook.analysis.list_update import hypothesised_sources

    task = get_task("list_update")

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


# ---- addition: which columns receive a carry -------------------------------------------------

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
    task = get_task("addition")

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


# ---- majority: the running histogram ------------------------------------------------------

def check_running_histogram(fn: Callable[[Tensor], Tensor]) -> Feedback:
    """``fn(tokens [B, T]) → [B, T, 10]``: the fraction of each value among tokens 0..i."""
    from toybook.analysis.majority import running_histogram

    task = get_task("majority")

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


# ---- max of 2: the QK circuit -------------------------------------------------------------

def check_qk_token_scores(fn: Callable[[torch.nn.Module], Tensor]) -> Feedback:
    """``fn(model) → [d_vocab]``: the attention score each key token gets from the query
    ``=`` at position 2 through its embedding alone, scaled as the model scales it."""
    import toybook
    from toybook.analysis.circuits import one_layer_circuits
    from toybook.tasks.max_of_2 import EQUALS

    model = toybook.load_model("max_of_2")
    query_pos = get_task("max_of_2").n_ctx - 1

    def reference(model: torch.nn.Module) -> Tensor:
        return one_layer_circuits(model, EQUALS, query_pos).qk_token

    def unscaled(model: torch.nn.Module) -> Tensor:
        return reference(model) * model.cfg.d_head**0.5

    def no_query_position(model: torch.nn.Module) -> Tensor:
        E, W_Q, W_K = model.W_E.double(), model.W_Q[0, 0].double(), model.W_K[0, 0].double()
        return E @ W_K @ W_Q.T @ E[EQUALS] / model.cfg.d_head**0.5

    cases = [Case("the shipped max_of_2 model", (model,))]
    mistakes = [
        Mistake(unscaled, "the scores are divided by sqrt(d_head) before the softmax"),
        Mistake(no_query_position, "the query is the '=' token at position 2: its residual "
                "stream is W_E[=] + W_pos[2], not the token embedding alone"),
    ]
    return check("QK token scores", fn, reference, cases, mistakes,
                 "score(t) = (W_E[=] + W_pos[2]) W_Q W_K^T W_E[t]^T / sqrt(d_head)",
                 tolerance=1e-4)


__all__ = [
    "Feedback", "check", "check_carries", "check_copy_sources", "check_qk_token_scores",
    "check_running_histogram", "reference_carries",
]
