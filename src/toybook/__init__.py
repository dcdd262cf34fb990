"""toybook: train, load and probe small transformers trained on algorithmic tasks.

The public contract::

    import toybook
    toybook.list_tasks()                 # ['list_update', 'addition', 'majority', 'max_of_2']
    task = toybook.get_task("max_of_2")  # token format, generator, loss, accuracy
    model = toybook.load_model("max_of_2")   # shipped, checksum-verified, eval mode
    logits = model(task.all_inputs())    # [batch, pos, d_vocab_out]
"""

from toybook._version import __version__
from toybook.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from toybook.errors import (
    CheckpointError,
    InvalidTokensError,
    ToybookError,
    UnknownModelError,
    UnknownTaskError,
)
from toybook.evaluation import EvalResult, evaluate
from toybook.model import ModelConfig, attach_task, build_model, off_format
from toybook.presets import PRESETS, Preset, get_preset
from toybook.tasks import Task, get_task, list_tasks
from toybook.training import TrainConfig, TrainResult, train
from toybook.zoo import list_models, load_model, load_shipped

__all__ = [
    "Checkpoint", "CheckpointError", "EvalResult", "InvalidTokensError", "ModelConfig",
    "PRESETS", "Preset", "Task", "ToybookError", "TrainConfig", "TrainResult",
    "UnknownModelError", "UnknownTaskError", "__version__", "attach_task", "build_model", "evaluate",
    "get_preset", "get_task", "list_models", "list_tasks", "load_checkpoint", "load_model",
    "load_shipped", "off_format", "save_checkpoint", "train",
]
