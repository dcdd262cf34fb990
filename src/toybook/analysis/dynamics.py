"""Training dynamics: when a metric first crosses a threshold, and models at snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from transformer_lens.model_bridge import TransformerBridge

from toybook.checkpoint import load_snapshots, read_sidecar
from toybook.errors import ToybookError
from toybook.model import ModelConfig, attach_task, build_model
from toybook.registry import get_task


def first_step_at_least(history: Sequence[dict[str, Any]], metric: str, threshold: float) -> int | None:
    """The first logged step whose ``metric`` is ``>= threshold`` (e.g. the grokking epoch)."""
    if history and metric not in history[0]:
        raise ToybookError(f"no metric {metric!r} in the history; it has {sorted(history[0])}")
    return next((row["step"] for row in history if row[metric] >= threshold), None)


def snapshot_models(path: str | Path) -> dict[int, TransformerBridge]:
    """Step → the model with that training snapshot's weights (eval mode)."""
    metadata = read_sidecar(path)
    config = ModelConfig.from_dict(metadata["model_config"])
    task = get_task(metadata["task"]["name"], **metadata["task"].get("params", {}))
    models = {}
    for step, state in load_snapshots(path).items():
        model = attach_task(build_model(config), task)
        model.load_state_dict(state, strict=True)
        models[step] = model.eval()
    return models
