"""The task registry: ``get_task(name)`` and ``list_tasks()``."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from toybook.errors import ToybookError, UnknownTaskError
from toybook.tasks.addition import AdditionTask
from toybook.tasks.base import Slot, Task
from toybook.tasks.list_update import ListUpdateTask
from toybook.tasks.majority import MajorityTask
from toybook.tasks.max_of_2 import MaxOf2Task

TASKS = MappingProxyType(
    {cls.name: cls for cls in (ListUpdateTask, AdditionTask, MajorityTask, MaxOf2Task)}
)


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    return list(TASKS)


def get_task(name: str, **params: Any) -> Task:
    """The task called ``name``, e.g. ``get_task("addition", n_digits=3)``."""
    if name not in TASKS:
        raise UnknownTaskError(f"unknown task {name!r}; the tasks are: {', '.join(TASKS)}")
    try:
        return TASKS[name](**params)
    except TypeError as error:
        raise ToybookError(f"bad parameters for task {name!r}: {error}") from None


__all__ = [
    "AdditionTask", "ListUpdateTask", "MajorityTask", "MaxOf2Task", "Slot", "Task",
    "TASKS", "get_task", "list_tasks",
]
