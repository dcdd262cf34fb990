"""List update: ``a[idx] = elt`` on a list of three values.

``task`` the format; ``presets`` the standard and shortformer models; ``claims`` the
chapter's claims; ``hypotheses`` its reading as data; ``analysis`` sources, ablations and
patching pairs; ``exercises`` the copy-source checker.
"""

from toybook.tasks.list_update.task import BOS, LIST_LEN, N_VALUES, NL, ListUpdateTask

TASK = ListUpdateTask

__all__ = ["BOS", "LIST_LEN", "NL", "N_VALUES", "ListUpdateTask", "TASK"]
