"""toybook: train, load and probe small transformers trained on algorithmic tasks.

The public contract::

    import toybook
    toybook.list_tasks()                 # ['list_update', 'addition', 'majority', 'max_of_2']
    task = toybook.get_task("max_of_2")  # token format, generator, loss, accuracy
    model = toybook.load_model("max_of_2")   # shipped, checksum-verified, eval mode
    logits = model(task.all_inputs())    # [batch, pos, d_vocab_out]

``import toybook`` itself is instant: each name below is imported from its module on first
use, so torch and TransformerLens load only when something needs them (the ``toybook``
command's ``--help`` answers without them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from toybook._version import __version__
from toybook.errors import (
    CheckpointError,
    ConfigError,
    InvalidTokensError,
    TooLargeError,
    ToybookError,
    UnknownModelError,
    UnknownTaskError,
    WrongModelError,
)

_LAZY = {
    "toybook.checkpoint": ("Checkpoint", "load_checkpoint", "save_checkpoint"),
    "toybook.evaluation": ("EvalResult", "evaluate"),
    "toybook.model": ("ModelConfig", "attach_task", "build_model", "off_format"),
    "toybook.configs": ("Preset",),
    "toybook.registry": ("get_preset", "get_task", "list_tasks"),
    "toybook.task": ("Task",),
    "toybook.training": ("TrainConfig", "TrainResult", "train"),
    "toybook.zoo": ("list_models", "load_model", "load_shipped"),
    "toybook.analysis.faithfulness": ("faithfulness_report",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from toybook.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from toybook.evaluation import EvalResult, evaluate
    from toybook.model import ModelConfig, attach_task, build_model, off_format
    from toybook.configs import Preset
    from toybook.registry import get_preset, get_task, list_tasks
    from toybook.task import Task
    from toybook.training import TrainConfig, TrainResult, train
    from toybook.zoo import list_models, load_model, load_shipped
    from toybook.analysis.faithfulness import faithfulness_report


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'toybook' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "Checkpoint", "CheckpointError", "ConfigError", "EvalResult", "InvalidTokensError", "ModelConfig",
    "Preset", "Task", "TooLargeError", "ToybookError", "TrainConfig", "TrainResult",
    "UnknownModelError", "UnknownTaskError", "WrongModelError", "__version__", "attach_task",
    "build_model", "evaluate", "faithfulness_report", "get_preset", "get_task", "list_models", "list_tasks",
    "load_checkpoint", "load_model", "load_shipped", "off_format", "save_checkpoint", "train",
]
