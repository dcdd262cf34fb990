"""Max of 2: the larger of two values (the book's first chapter of circuits read off weights).

``task`` the format; ``presets`` the shipped model's configuration; ``claims`` the
chapter's claims; ``hypotheses`` its reading as data; ``bound`` the accuracy bound proven
from the weights; ``exercises`` the QK checker.
"""

from toybook.tasks.max_of_2.task import EQUALS, N_VALUES, MaxOf2Task

TASK = MaxOf2Task

__all__ = ["EQUALS", "N_VALUES", "MaxOf2Task", "TASK"]
