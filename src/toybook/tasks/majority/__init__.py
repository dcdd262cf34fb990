"""Majority: the most frequent value so far, at every position.

``task`` the format; ``presets`` the shipped model; ``measure`` accuracy by position and
margin; ``claims`` the chapter's claims; ``hypotheses`` its reading as data; ``analysis``
the histogram, logit contributions and value neurons; ``exercises`` the running-histogram
checker.
"""

from toybook.tasks.majority.task import N_VALUES, SEQ_LEN, MajorityTask

TASK = MajorityTask

__all__ = ["N_VALUES", "SEQ_LEN", "MajorityTask", "TASK"]
