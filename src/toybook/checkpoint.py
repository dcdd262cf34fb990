"""Checkpoints: safetensors weights plus a JSON sidecar that makes them self-describing.

A checkpoint ``NAME`` is two files (three with snapshots) in one folder:

- ``NAME.safetensors``: the weights, keyed as ``model.state_dict()`` (TransformerLens
  names such as ``blocks.0.attn.q.weight``);
- ``NAME.json``: the task and its parameters, the model and training configs, the
  training record (steps, wall time, the environment the floats depend on — see
  :mod:`toybook.environment` — and the history of metrics), the final metrics,
  any recorded evaluations, the SHA-256 of every weights file, and ``checksums``: the
  SHA-256 of every field above, so that an edit by hand is caught and named;
- ``NAME.snapshots.safetensors`` (optional): weights during training, keyed
  ``"<step>/<parameter>"``.

Loading recomputes the checksums and checks every parameter's shape against the config,
so a corrupted file, a tampered file or a sidecar from another model fails with a
:class:`~toybook.errors.CheckpointError` that says which. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toybook._version import __version__
from toybook.configs import ModelConfig
from toybook.errors import CheckpointError, ToybookError
from toybook.registry import get_task
from toybook.task import Task

if TYPE_CHECKING:
    import torch
    from torch import Tensor
    from transformer_lens.model_bridge import TransformerBridge

# torch, safetensors and TransformerLens are imported by the functions that read or write
# weights, not here: ``toybook list`` reads sidecars only

if TYPE_CHECKING:
    from toybook.training import TrainResult

FORMAT = "toybook-checkpoint"
FORMAT_VERSION = 2  # 2: checksums over every sidecar field


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


def checkpoint_bytes(path: str | Path) -> dict[str, bytes] | None:
    """The checkpoint ``path``'s files that exist, by suffix (``".json"``, ...), as bytes:
    what a job on another machine needs to load it. ``None`` where there is none."""
    path = Path(path)
    files = {file.name[len(path.name):]: file.read_bytes()
             for file in checkpoint_files(path) if file.exists()}
    return files or None


def write_checkpoint_bytes(path: str | Path, files: dict[str, bytes]) -> None:
    """Write the files of :func:`checkpoint_bytes` as checkpoint ``path``, each atomically
    and the sidecar last: a checkpoint exists once its sidecar does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in sorted(files, key=lambda suffix: suffix == ".json"):
        final = path.with_name(path.name + suffix)
        temporary = _temporary(final)
        temporary.write_bytes(files[suffix])
        os.replace(temporary, final)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    result: TrainResult, path: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``result`` as checkpoint ``path`` (``dir/NAME``); returns the sidecar path.

    Every file is written next to its destination under a temporary name and renamed into
    place only once all of them are complete, sidecar last: a save interrupted while
    writing leaves the previous checkpoint as it was. (The renames themselves, one per
    file, are the only step that is not atomic across files.)"""
    import safetensors.torch

    from toybook.environment import current_environment
    from toybook.model import count_parameters

    weights_path, sidecar_path, snapshots_path = checkpoint_files(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []  # (temporary, final)
    try:
        weights_tmp = _stage(weights_path, staged)
        safetensors.torch.save_file(_plain(result.model.state_dict()), weights_tmp)
        snapshots = None
        if result.snapshots:
            flat = {
                f"{step}/{key}": value
                for step, state in result.snapshots.items()
                for key, value in state.items()
            }
            snapshots_tmp = _stage(snapshots_path, staged)
            safetensors.torch.save_file(_plain(flat), snapshots_tmp)
            snapshots = {
                "file": snapshots_path.name,
                "sha256": sha256_file(snapshots_tmp),
                "steps": sorted(result.snapshots),
            }
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
            "weights": {"file": weights_path.name, "sha256": sha256_file(weights_tmp)},
            "snapshots": snapshots,
            "history": result.history,
            **(extra or {}),
        }
        _stage(sidecar_path, staged).write_text(sidecar_text(metadata))
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, final in staged:
        os.replace(temporary, final)
    if not result.snapshots and snapshots_path.exists():
        snapshots_path.unlink()
    return sidecar_path


def check_writable(path: str | Path, overwrite: bool = True) -> Path:
    """Fail before long work, not after it: the checkpoint ``path`` (``dir/NAME``) can be
    written there, and does not exist already unless ``overwrite``. Returns the sidecar path."""
    weights_path, sidecar_path, _ = checkpoint_files(path)
    if not overwrite and (weights_path.exists() or sidecar_path.exists()):
        raise CheckpointError(
            f"checkpoint {sidecar_path.with_suffix('')} already exists; choose another path "
            f"or allow overwriting it (toybook train --force)"
        )
    folder = weights_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temporary(folder / f"{weights_path.stem}.write-test")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CheckpointError(
            f"cannot write a checkpoint into {folder}: {error.strerror or error}; "
            f"choose another folder"
        ) from None
    return sidecar_path


def sidecar_text(metadata: dict[str, Any]) -> str:
    """The sidecar as written: floats to 7 significant digits, a ``checksums`` entry,
    two-space indentation except one line per history row (keeps it small)."""
    data = _rounded({key: value for key, value in metadata.items() if key != "checksums"})
    data["checksums"] = field_checksums(data)
    history = data.pop("history", [])
    text = json.dumps(data, indent=2)
    rows = ",\n".join("    " + json.dumps(row) for row in history)
    return text[:-2] + ',\n  "history": [\n' + rows + "\n  ]\n}\n"


def write_sidecar(path: Path, metadata: dict[str, Any]) -> None:
    """Write (atomically) and sign the sidecar ``path``."""
    path = Path(path)
    temporary = _temporary(path)
    try:
        temporary.write_text(sidecar_text(metadata))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def field_checksums(data: dict[str, Any]) -> dict[str, str]:
    """SHA-256 of each field's canonical JSON, one level deep (``model_config.act_fn``,
    ``training.environment``, ``evaluations.exhaustive``, ``history``, ...), so that a
    changed sidecar names the field that changed."""
    fields = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            for sub, item in value.items():
                fields[f"{key}.{sub}"] = _digest(item)
        else:
            fields[key] = _digest(value)
    return fields


def sign_sidecar(path: str | Path) -> Path:
    """Recompute a sidecar's checksums after a deliberate edit by hand (and upgrade a
    version-1 sidecar, which had none). Check the contents first: after this, toybook
    trusts them."""
    _, sidecar_path, _ = checkpoint_files(path)
    metadata = _parse_sidecar(sidecar_path)
    metadata["format_version"] = FORMAT_VERSION
    write_sidecar(sidecar_path, metadata)
    return sidecar_path


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar's metadata, its format and checksums verified (the ``checksums`` entry
    is not returned); does not touch the weights."""
    _, sidecar_path, _ = checkpoint_files(path)
    metadata = _parse_sidecar(sidecar_path)
    if metadata.get("format_version") != FORMAT_VERSION:
        hint = (" (version 1 sidecars have no checksums over their contents: check the "
                "contents, then toybook.checkpoint.sign_sidecar(path) upgrades it)"
                if metadata.get("format_version") == 1 else "")
        raise CheckpointError(
            f"{sidecar_path} has format version {metadata.get('format_version')}; this "
            f"toybook reads version {FORMAT_VERSION}{hint}"
        )
    recorded = metadata.pop("checksums", None)
    if not isinstance(recorded, dict):
        raise CheckpointError(f"checkpoint sidecar {sidecar_path} has no 'checksums' entry")
    actual = field_checksums(metadata)
    changed = sorted(key for key in recorded.keys() & actual.keys() if recorded[key] != actual[key])
    added, removed = sorted(actual.keys() - recorded.keys()), sorted(recorded.keys() - actual.keys())
    if changed or added or removed:
        found = [f"{what}: {', '.join(keys)}" for what, keys in
                 (("changed", changed), ("added", added), ("removed", removed)) if keys]
        raise CheckpointError(
            f"checkpoint sidecar {sidecar_path} was modified outside toybook "
            f"({'; '.join(found)}); its checksums cover the task, configs, training record, "
            f"environment and recorded evaluations. If the edit was deliberate, "
            f"toybook.checkpoint.sign_sidecar(path) re-signs it"
        )
    for key in ("name", "task", "model_config", "weights"):
        if key not in metadata:
            raise CheckpointError(f"checkpoint sidecar {sidecar_path} has no {key!r} entry")
    return metadata


def _parse_sidecar(sidecar_path: Path) -> dict[str, Any]:
    if not sidecar_path.exists():
        raise CheckpointError(f"checkpoint sidecar {sidecar_path} does not exist")
    try:
        metadata = json.loads(sidecar_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint sidecar {sidecar_path} is not valid JSON: {error}")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar_path} is not a toybook checkpoint sidecar")
    return metadata


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and verify a checkpoint; the model comes back in eval mode."""
    from toybook.model import attach_task, build_model, check_compatible

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
    attach_task(model, task)
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
    import safetensors
    import safetensors.torch

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


def _temporary(final: Path) -> Path:
    """A temporary name beside ``final`` (same folder, so the rename is atomic)."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def _stage(final: Path, staged: list[tuple[Path, Path]]) -> Path:
    staged.append((_temporary(final), final))
    return staged[-1][0]


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    "Checkpoint", "check_writable", "checkpoint_files", "load_checkpoint", "load_snapshots", "read_sidecar",
    "record_evaluation", "save_checkpoint", "sign_sidecar", "summarize_evaluation",
]
