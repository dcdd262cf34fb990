"""Addition: n-digit sums, one answer digit per token.

``task`` the format and question classes; ``presets`` the 2-layer model and the 1-layer
comparison; ``measure`` random questions plus every hand-built set; ``claims`` the
chapter's claims; ``hypotheses`` its reading as data; ``analysis`` the question sets and
accuracy on them; ``circuit`` position and head ablation and column patching;
``exercises`` the carry checker.
"""

from toybook.tasks.addition.task import (
    EQUALS, MINUS, PLUS, AdditionTask, DigitSubtask, QuestionClass, SubTasks,
)

TASK = AdditionTask

__all__ = ["EQUALS", "MINUS", "PLUS", "AdditionTask", "DigitSubtask", "QuestionClass",
           "SubTasks", "TASK"]
