"""Checkpoints: safetensors weights plus a JSON sidecar that makes them self-describing.

A checkpoint ``NAME`` is two files (three with snapshots) in one folder:

- ``NAME.safetensors``: the weights, keyed as ``model.state_dict()`` (TransformerLens
  names such as ``blocks.0.attn.q.weight``);
- ``NAME.json``: the task and its parameters, the model and training configs, the
  training record (steps, wall time, the environment the floats depend on — see
  :mod:`toybook.environment` — and the history of metrics), the final metrics,
  any recorded evaluations, and the SHA-256 of every weights file;
- ``NAME.snapshots.safetensors`` (optional): weights during training, keyed
  ``"<step>/<parameter>"``.

Loading recomputes the checksums and checks every parameter's shape against the config,
so a corrupted file, a tampered file or a sidecar from another model fails with a
:class:`~toybook.errors.CheckpointError` that says which.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from toybook._version import __version__
from toybook.environment import current_environment
from toybook.errors import CheckpointError, ToybookError
from toybook.model import ModelConfig, build_model, count_parameters
from toybook.tasks import Task, get_task
from toybook.training import TrainResult, check_compatible

FORMAT = "toybook-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode) with its task, config and metadata."""

    model: TransformerBridge
    task: Task
    model_config: ModelConfig
    metadata: dict[str, Any]
    path: Path  # the sidecar

    @property
    def name(self) -> str:
        return self.metadata["name"]


def checkpoint_files(path: str | Path) -> tuple[Path, Path, Path]:
    """``(weights, sidecar, snapshots)`` paths for ``dir/NAME`` with or without a suffix."""
    path = Path(path)
    stem = path.name
    for suffix in (".snapshots.safetensors", ".safetensors", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    folder = path.parent
    return (
        folder / f"{stem}.safetensors",
        folder / f"{stem}.json",
        folder / f"{stem}.snapshots.safetensors",
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    result: TrainResult, path: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``result`` as checkpoint ``path`` (``dir/NAME``); returns the sidecar path."""
    weights_path, sidecar_path, snapshots_path = checkpoint_files(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(_plain(result.model.state_dict()), weights_path)
    snapshots = None
    if result.snapshots:
        flat = {
            f"{step}/{key}": value
            for step, state in result.snapshots.items()
            for key, value in state.items()
        }
        safetensors.torch.save_file(_plain(flat), snapshots_path)
        snapshots = {
            "file": snapshots_path.name,
            "sha256": sha256_file(snapshots_path),
            "steps": sorted(result.snapshots),
        }
    elif snapshots_path.exists():
        snapshots_path.unlink()
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": weights_path.stem,
        "task": {"name": result.task.name, "params": result.task.params()},
        "model_config": result.model_config.to_dict(),
        "train_config": result.train_config.to_dict(),
        "training": {
            "steps": result.train_config.steps,
            "wall_time_s": round(result.wall_time_s, 2),
            "device": result.device,
            "n_parameters": count_parameters(result.model),
            "environment": result.environment or current_environment(result.device),
        },
        "final_metrics": result.final_metrics,
        "evaluations": {},
        "toybook_version": __version__,
        "weights": {"file": weights_path.name, "sha256": sha256_file(weights_path)},
        "snapshots": snapshots,
        "history": result.history,
        **(extra or {}),
    }
    write_sidecar(sidecar_path, metadata)
    return sidecar_path


def write_sidecar(path: Path, metadata: dict[str, Any]) -> None:
    """JSON with two-space indentation, except one line per history row (keeps it small)."""
    history = metadata.get("history", [])
    body = {key: value for key, value in metadata.items() if key != "history"}
    text = json.dumps(_rounded(body), indent=2)
    rows = ",\n".join("    " + json.dumps(_rounded(row)) for row in history)
    text = text[:-2] + ',\n  "history": [\n' + rows + "\n  ]\n}\n"
    Path(path).write_text(text)


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar's metadata, checked for format; does not touch the weights."""
    _, sidecar_path, _ = checkpoint_files(path)
    if not sidecar_path.exists():
        raise CheckpointError(f"checkpoint sidecar {sidecar_path} does not exist")
    try:
        metadata = json.loads(sidecar_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint sidecar {sidecar_path} is not valid JSON: {error}")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar_path} is not a toybook checkpoint sidecar")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{sidecar_path} has format version {metadata.get('format_version')}; this "
            f"toybook reads version {FORMAT_VERSION}"
        )
    for key in ("name", "task", "model_config", "weights"):
        if key not in metadata:
            raise CheckpointError(f"checkpoint sidecar {sidecar_path} has no {key!r} entry")
    return metadata


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and verify a checkpoint; the model comes back in eval mode."""
    weights_path, sidecar_path, _ = checkpoint_files(path)
    metadata = read_sidecar(sidecar_path)
    state = _verified_tensors(weights_path, metadata["weights"]["sha256"])
    try:
        task = get_task(metadata["task"]["name"], **metadata["task"].get("params", {}))
        model_config = ModelConfig.from_dict(metadata["model_config"])
        check_compatible(task, model_config)
    except (ToybookError, TypeError) as error:
        raise CheckpointError(f"checkpoint {sidecar_path}: invalid configuration: {error}")
    model = build_model(model_config, device=device)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint/config mismatch in {weights_path.name}: the config needs "
            f"parameters the weights lack {missing[:5]} or the weights hold parameters "
            f"the config has no place for {unexpected[:5]}"
        )
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"checkpoint/config mismatch in {weights_path.name}: parameter {key!r} has "
                f"shape {tuple(state[key].shape)} in the weights but {tuple(value.shape)} "
                f"in the model built from the config"
            )
    model.load_state_dict(state, strict=True)
    model.eval()
    model.toybook_task = task
    model.toybook_name = metadata["name"]
    return Checkpoint(model, task, model_config, metadata, sidecar_path)


def load_snapshots(path: str | Path) -> dict[int, dict[str, Tensor]]:
    """The training snapshots of a checkpoint: step → state dict (verified checksum)."""
    _, sidecar_path, snapshots_path = checkpoint_files(path)
    metadata = read_sidecar(sidecar_path)
    if not metadata.get("snapshots"):
        raise CheckpointError(f"checkpoint {metadata['name']!r} has no training snapshots")
    flat = _verified_tensors(snapshots_path, metadata["snapshots"]["sha256"])
    snapshots: dict[int, dict[str, Tensor]] = {}
    for key, value in flat.items():
        step, name = key.split("/", 1)
        snapshots.setdefault(int(step), {})[name] = value
    return dict(sorted(snapshots.items()))


def record_evaluation(path: str | Path, name: str, result: dict[str, Any]) -> None:
    """Store an evaluation result (e.g. an exhaustive check) in the checkpoint's sidecar."""
    _, sidecar_path, _ = checkpoint_files(path)
    metadata = read_sidecar(sidecar_path)
    metadata.setdefault("evaluations", {})[name] = result
    write_sidecar(sidecar_path, metadata)


def summarize_evaluation(result: dict[str, Any]) -> str:
    """One line for a recorded evaluation: its own ``summary`` if it has one, else
    ``"correct/n correct"`` from ``n`` and ``n_wrong``."""
    if "summary" in result:
        return str(result["summary"])
    if "n" in result and "n_wrong" in result:
        return f"{result['n'] - result['n_wrong']:,}/{result['n']:,} correct"
    return "recorded (no summary)"


def _verified_tensors(path: Path, expected_sha256: str) -> dict[str, Tensor]:
    if not path.exists():
        raise CheckpointError(f"checkpoint weights {path} do not exist")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise CheckpointError(
            f"checksum mismatch for {path.name}: SHA-256 is {actual[:16]}…, the sidecar "
            f"records {str(expected_sha256)[:16]}…; the file is corrupted or was modified"
        )
    try:
        return safetensors.torch.load_file(path)
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path.name} as safetensors: {error}")


def _plain(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}


def _rounded(value: Any) -> Any:
    """Floats to 7 significant digits: the sidecar stays small and readable."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    return value


__all__ = [
    "Checkpoint", "checkpoint_files", "load_checkpoint", "load_snapshots",
    "read_sidecar", "record_evaluation", "save_checkpoint", "summarize_evaluation",
]
