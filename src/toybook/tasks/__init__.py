"""The tasks, one folder each, and the registry that finds them: ``get_task(name)``,
``list_tasks()`` and :func:`task_part`.

A task folder ``toybook/tasks/<name>/`` holds everything the project knows about that task:

============  ===========================================================================
``task.py``   the token format, the seeded generator and the ground truth (the ``Task``)
``presets``   the named training configurations its shipped models come from
``measure``   its chapter's accuracy measurement, where it is not the plain random sample
``claims``    its chapter's circuit claims, per preset
``analysis``  its chapter's own experiments (a folder may hold more, e.g. ``circuit``, ``bound``)
``exercises`` the checkers of its chapter's implement-exercises
============  ===========================================================================

The package's ``__init__`` names the task class as ``TASK``. Nothing outside the folder
lists the tasks: the registries of tasks, presets, claims, measurements and exercise
checkers are discovered here, from the folders, and the generic tools
(:mod:`toybook.analysis`) know no task.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import cache
from types import MappingProxyType, ModuleType
from typing import Any

from toybook.errors import ToybookError, UnknownTaskError
from toybook.tasks.base import Slot, Task


@cache
def _discover() -> MappingProxyType[str, type[Task]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            found.append(importlib.import_module(f"{__name__}.{info.name}").TASK)
    return MappingProxyType({cls.name: cls for cls in sorted(found, key=lambda cls: cls.order)})


def task_names() -> list[str]:
    """The task folders' names, in registry order (without importing the parts)."""
    return list(_discover())


def task_part(name: str, part: str) -> ModuleType | None:
    """Module ``part`` (``"presets"``, ``"claims"``, ``"measure"``, ``"exercises"``, ...) of
    task ``name``'s folder, or ``None`` where the task has none."""
    if name not in _discover():
        raise UnknownTaskError(f"unknown task {name!r}; the tasks are: {', '.join(_discover())}")
    module = f"{__name__}.{name}.{part}"
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


def task_parts(part: str) -> list[ModuleType]:
    """Module ``part`` of every task folder that has one, in registry order."""
    return [module for name in _discover() if (module := task_part(name, part)) is not None]


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    return task_names()


def get_task(name: str, **params: Any) -> Task:
    """The task called ``name``, with parameters other than its defaults where given
    (``get_task(name, n_digits=3)``: the parameters are the task class's fields)."""
    tasks = _discover()
    if not isinstance(name, str) or name not in tasks:
        raise UnknownTaskError(f"unknown task {name!r}; the tasks are: {', '.join(tasks)}")
    try:
        return tasks[name](**params)
    except TypeError as error:
        raise ToybookError(f"bad parameters for task {name!r}: {error}") from None


def __getattr__(name: str) -> Any:
    if name == "TASKS":
        return _discover()
    for cls in _discover().values():  # AdditionTask, MaxOf2Task, ...
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"TASKS"} | {cls.__name__ for cls in _discover().values()})


__all__ = ["Slot", "Task", "get_task", "list_tasks", "task_names", "task_part", "task_parts"]
