"""The max-of-2 chapter's reading as a program: the head at `=` writes what depends only on
the larger operand's value (it attends to the larger operand and copies its value vector)."""

from __future__ import annotations

from toybook.analysis.faithfulness import Feature, Part, Reading
from toybook.analysis.patching import head
from toybook.tasks.max_of_2.presets import MAX_OF_2


def larger_operand(tokens):
    """``[B]``: the larger of the two operands (what the head at `=` is read as copying)."""
    return tokens[:, :2].max(1).values


def larger_slot(tokens):
    """``[B]``: which slot holds the larger operand (0 or 1; ties read as 0)."""
    return tokens[:, :2].argmax(1)


def readings(model=None) -> tuple[Reading, ...]:
    """The chapter's reading, the head at `=` scrubbed by the larger operand, and a coarser
    one that must fail: scrubbed by which slot holds it (the value then comes from another
    input)."""
    at_equals = head(0, 2, 0)
    return (
        Reading("copies_the_larger", "the head at `=` writes what depends only on the larger "
                "operand's value", (Part(at_equals, Feature("the larger operand", larger_operand)),),
                headline=True),
        Reading("which_slot", "the head at `=` writes what depends only on which slot holds the "
                "larger operand", (Part(at_equals, Feature("the larger slot", larger_slot)),)),
    )


READINGS = {MAX_OF_2.name: readings}
