"""Checkers for the book's implement-exercises: each runs the reader's function on the cases
that matter, edge cases included, against the shipped models, and answers with specific
feedback — which case, what was expected, what came back, and a hint. A hint names the
mistake where the answer matches a known one (e.g. a carry rule that forgets cascades).

    from toybook.exercises import check_carries
    check_carries(my_carries)     # Feedback: "✓ all 6 cases pass" or what went wrong

No network and no training: every check runs in a second or two on a CPU. This module
holds the generic machinery (:func:`check`, :class:`Case`, :class:`Mistake`); each checker
lives in its task's folder (``toybook/tasks/<task>/exercises.py``) and is found here by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from toybook.registry import exercise_checkers


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
        if got is None:
            return _fail(exercise, case, "your function returned None", "return the tensor "
                         "(a function without a `return` statement returns None)")
        try:
            got = torch.as_tensor(got) if not isinstance(got, Tensor) else got
        except (TypeError, ValueError, RuntimeError) as error:
            return _fail(exercise, case, f"your function returned a {type(got).__name__}, which "
                         f"is not a tensor of numbers ({error})", hint)
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
    """Where ``got`` differs from ``expected`` (same shapes), as a bool tensor; a NaN where
    a number is expected always differs (``NaN > tolerance`` is False, so say it)."""
    got, expected = got.double(), expected.double()
    nan = got.isnan() & ~expected.isnan()
    if tolerance is None:
        return (got != expected) | nan
    scale = float(expected.abs().max()) or 1.0
    return ((got - expected).abs() > tolerance * scale) | nan


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


def __getattr__(name: str) -> Any:
    """``from toybook.exercises import check_carries``: the checkers live in their task's folder."""
    if name.startswith("__"):  # e.g. the import system asking for __path__
        raise AttributeError(name)
    checkers = exercise_checkers()
    if name in checkers:
        return checkers[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(exercise_checkers()))


__all__ = ["Case", "Feedback", "Mistake", "check"]
