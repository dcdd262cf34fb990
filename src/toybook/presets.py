"""Named training presets: the task, architecture and optimisation of each shipped model.

``toybook train NAME`` runs ``PRESETS[NAME]``; the shipped checkpoint of the same name was
made with it (its sidecar records the exact configs). Each task folder's ``presets``
module defines its presets as module constants and lists them in ``PRESETS``; this module
collects them, in task order. Every preset is shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from toybook.errors import ToybookError
from toybook.configs import ModelConfig, TrainConfig
from toybook.tasks import Task, task_parts


@dataclass(frozen=True)
class Preset:
    """Everything needed to train one named model."""

    name: str  # the checkpoint it produces, e.g. the task's name or a variant of it
    task: Task
    model: ModelConfig
    train: TrainConfig
    summary: str  # one line for `toybook list`


@cache
def _presets() -> MappingProxyType[str, Preset]:
    return MappingProxyType(
        {preset.name: preset for module in task_parts("presets") for preset in module.PRESETS}
    )


def get_preset(name: str) -> Preset:
    presets = _presets()
    if not isinstance(name, str) or name not in presets:
        raise ToybookError(f"no training preset {name!r}; the presets are: {', '.join(presets)}")
    return presets[name]


def __getattr__(name: str) -> Any:
    if name == "PRESETS":
        return _presets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PRESETS", "Preset", "get_preset"]
