"""The shipped models: checkpoints inside the package, loadable with no network.

``load_model(name)`` takes a task name (that task's default, best model) or a variant's
name (``TASK_VARIANT``) or a seed model's (``NAME_sN``; with ``N`` the seed ``NAME`` itself was
trained with, it loads ``NAME``). Checkpoints live in ``toybook/checkpoints/`` as ``NAME.safetensors`` +
``NAME.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toybook.errors import UnknownModelError

if TYPE_CHECKING:  # imported when a model loads: name checks answer without torch
    import torch
    from transformer_lens.model_bridge import TransformerBridge

    from toybook.checkpoint import Checkpoint

SHIPPED_DIR = Path(__file__).parent / "checkpoints"
SHIPPED_BUDGET_BYTES = 64 * 10**6  # every shipped checkpoint file together (tested)


@dataclass(frozen=True)
class ModelInfo:
    """A shipped model as `toybook list` shows it (read from its sidecar, weights untouched)."""

    name: str
    task: str
    n_parameters: int
    steps: int
    metrics: dict[str, Any]  # final training-run metrics
    evaluations: dict[str, Any]  # recorded evaluations, e.g. "exhaustive"
    path: Path


def shipped_names() -> list[str]:
    """The shipped models' names, seed models in numeric order (``NAME_s2`` before
    ``NAME_s10``)."""
    def natural(name: str) -> list[Any]:
        return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]

    return sorted((path.stem for path in SHIPPED_DIR.glob("*.json")), key=natural)


def list_models() -> list[ModelInfo]:
    """Every shipped model, with the metrics recorded in its sidecar."""
    from toybook.checkpoint import read_sidecar

    infos = []
    for name in shipped_names():
        meta = read_sidecar(SHIPPED_DIR / name)
        infos.append(
            ModelInfo(
                name=name,
                task=meta["task"]["name"],
                n_parameters=meta["training"]["n_parameters"],
                steps=meta["training"]["steps"],
                metrics=meta["final_metrics"],
                evaluations=meta.get("evaluations", {}),
                path=SHIPPED_DIR / f"{name}.json",
            )
        )
    return infos


def _trained_seed(name: str) -> int | None:
    """The training seed recorded in shipped model ``name``'s sidecar."""
    from toybook.checkpoint import read_sidecar

    return read_sidecar(SHIPPED_DIR / name).get("train_config", {}).get("seed")


def shipped_path(name: str) -> Path:
    """The sidecar path of shipped model ``name``; a clear error if there is none. A seed
    name ``NAME_sN`` with no file of its own is the shipped ``NAME`` when ``NAME`` was trained
    with seed ``N`` (a sweep trains the same preset with only the seed changed):
    ``TASK_s1`` is ``TASK`` when ``TASK`` was trained with seed 1."""
    names = shipped_names()
    if not isinstance(name, str):
        raise UnknownModelError(f"a model name is a string such as one of: {', '.join(names)}; "
                                f"got {type(name).__name__} {name!r}")
    if name in names:
        return SHIPPED_DIR / f"{name}.json"
    seed_of = re.fullmatch(r"(.+)_s(\d+)", name)
    if seed_of and seed_of[1] in names and _trained_seed(seed_of[1]) == int(seed_of[2]):
        return SHIPPED_DIR / f"{seed_of[1]}.json"
    from toybook.registry import list_tasks

    available = ", ".join(names) or "none"
    if name in list_tasks():
        raise UnknownModelError(
            f"task {name!r} has no shipped model yet; shipped models: {available}. "
            f"Train one with `toybook train {name}`."
        )
    raise UnknownModelError(
        f"no shipped model {name!r}; shipped models: {available}; tasks: {', '.join(list_tasks())}"
    )


def load_shipped(name: str, device: str | torch.device = "cpu") -> Checkpoint:
    """A shipped model with its task and metadata (checksum verified)."""
    from toybook.checkpoint import load_checkpoint

    return load_checkpoint(shipped_path(name), device=device)


def load_model(name: str, device: str | torch.device = "cpu") -> TransformerBridge:
    """The trained model ``name`` in eval mode; ``model(tokens)`` gives logits ``[B, T, V]``."""
    return load_shipped(name, device=device).model
