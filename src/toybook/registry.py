"""The registry: the tasks and everything their folders hold, found in the folders.

A task folder ``toybook/tasks/<name>/`` holds everything the project knows about that task:

==============  =========================================================================
``__init__``    names the task class as ``TASK``
``task.py``     the token format, the seeded generator and the ground truth (the ``Task``)
``presets``     ``PRESETS``: the named training configurations its shipped models come from
``measure``     ``SAMPLED``: its chapter's accuracy measurement, where not the plain sample
``claims``      ``CLAIMS``: its chapter's circuit claims, per preset
``hypotheses``  ``READINGS``: its chapter's readings as programs, per preset (a function of
                the model); optionally ``ANSWER_GROUPS``, the kinds of answer scored apart
``analysis``    its chapter's own experiments (a folder may hold more, e.g. ``circuit``)
``exercises``   the checkers of its chapter's implement-exercises (its ``__all__``)
==============  =========================================================================

Nothing outside the folders lists the tasks, and this is the one module that imports
them: the generic tools know no task, and the folders are found (``importlib``) rather
than imported by name. Every registry is one :func:`collect` of a part, cached.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import cache
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

from toybook.errors import ToybookError, UnknownTaskError

if TYPE_CHECKING:
    from toybook.claims import Claim
    from toybook.configs import Preset
    from toybook.measurement import SampledMeasurement
    from toybook.task import Task

PACKAGE = "toybook.tasks"


@cache
def tasks() -> MappingProxyType[str, type[Task]]:
    """Task name → task class, in the book's order (each class's ``order``)."""
    folders = importlib.import_module(PACKAGE).__path__
    found = [importlib.import_module(f"{PACKAGE}.{info.name}").TASK
             for info in pkgutil.iter_modules(folders) if info.ispkg]
    return MappingProxyType({cls.name: cls for cls in sorted(found, key=lambda cls: cls.order)})


def list_tasks() -> list[str]:
    """Names of the registered tasks, in the book's order."""
    return list(tasks())


def get_task(name: str, **params: Any) -> Task:
    """The task called ``name``, with parameters other than its defaults where given
    (``get_task(name, n_digits=3)``: the parameters are the task class's fields)."""
    known = tasks()
    if not isinstance(name, str) or name not in known:
        raise UnknownTaskError(f"unknown task {name!r}; the tasks are: {', '.join(known)}")
    try:
        return known[name](**params)
    except TypeError as error:
        raise ToybookError(f"bad parameters for task {name!r}: {error}") from None


def task_part(name: str, part: str) -> ModuleType | None:
    """Module ``part`` (``"presets"``, ``"claims"``, ``"measure"``, ...) of task ``name``'s
    folder, or ``None`` where the folder has none."""
    if name not in tasks():
        raise UnknownTaskError(f"unknown task {name!r}; the tasks are: {', '.join(tasks())}")
    module = f"{PACKAGE}.{name}.{part}"
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


@cache
def collect(part: str, name: str) -> MappingProxyType[str, Any]:
    """Task name → attribute ``name`` of its folder's module ``part``, for every folder that
    has that module, in task order: ``collect("measure", "SAMPLED")``."""
    found = {}
    for task in tasks():
        module = task_part(task, part)
        if module is not None:
            found[task] = getattr(module, name)
    return MappingProxyType(found)


def _merged(part: str, name: str) -> MappingProxyType[str, Any]:
    return MappingProxyType({key: value for table in collect(part, name).values()
                             for key, value in table.items()})


@cache
def presets() -> MappingProxyType[str, Preset]:
    """Preset name → :class:`~toybook.configs.Preset`, every task folder's, in task order."""
    return MappingProxyType({preset.name: preset for table in collect("presets", "PRESETS").values()
                             for preset in table})


def get_preset(name: str) -> Preset:
    """The training preset ``name`` (``toybook train NAME`` runs it)."""
    known = presets()
    if not isinstance(name, str) or name not in known:
        raise ToybookError(f"no training preset {name!r}; the presets are: {', '.join(known)}")
    return known[name]


@cache
def claims() -> MappingProxyType[str, tuple[Claim, ...]]:
    """Preset name → the claims its models are held to (each folder's ``claims.CLAIMS``)."""
    return _merged("claims", "CLAIMS")


@cache
@cache
def readings() -> MappingProxyType[str, Any]:
    """Preset name → the function giving its chapter's readings of a model as programs
    (``hypotheses.READINGS``: ``readings(model) -> tuple[Reading, ...]``, some chosen on
    the model itself, on inputs the score is not measured on)."""
    return _merged("hypotheses", "READINGS")


def sampled_measurement(task: str) -> SampledMeasurement | None:
    """Task ``task``'s own sampled measurement (its folder's ``measure.SAMPLED``), if any."""
    return collect("measure", "SAMPLED").get(task)


@cache
def exercise_checkers() -> MappingProxyType[str, Any]:
    """Checker name → checker, from every folder's ``exercises.__all__``."""
    return MappingProxyType({checker: getattr(task_part(task, "exercises"), checker)
                             for task, names in collect("exercises", "__all__").items()
                             for checker in names})


__all__ = ["claims", "collect", "exercise_checkers", "get_preset", "get_task", "readings",
           "list_tasks", "presets", "sampled_measurement", "task_part", "tasks"]
