"""Seed sweeps: train a preset with other seeds and put every seed model through the checks
its chapter puts the shipped model through — the chapter's accuracy measurement, every
circuit claim of :mod:`toybook.claims`, and when it generalised.

    toybook sweep NAME --seeds 1-10 --out checkpoints/seeds

Seed ``s`` of preset ``P`` is the checkpoint ``OUT/P_s<s>`` (``toybook train P --seed s``
reproduces it on the same kind of machine). Its accuracy is recorded in its own sidecar;
the claims and the generalisation step of all seeds go to ``OUT/sweeps/P.json``. A sweep
is resumable: a seed whose checkpoint exists is not trained again, and one whose sidecar
already holds its measurement is not measured again. With ``--ray`` the seeds run in
parallel as Ray tasks (:mod:`toybook.scale`), on this machine or on a cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from toybook.errors import ToybookError
from toybook.checkpoint import checkpoint_bytes, write_checkpoint_bytes
from toybook.scale import RayOptions, require_ray, run_jobs

GENERALISED = 0.99  # eval accuracy that counts as "generalised" (grokked, for max_of_2)


@dataclass(frozen=True)
class SeedResult:
    """What one seed model did: its accuracy, each claim's value, when it generalised."""

    seed: int
    name: str
    measurement: dict[str, Any]  # label, what, n, n_wrong
    claims: dict[str, dict[str, Any]]  # claim name → value, holds, low, high
    generalised_step: int | None  # first logged step with eval accuracy ≥ GENERALISED
    steps: int
    train_seconds: float
    weights_sha256: str = ""  # of the weights file: identifies a model that is not shipped
    device: str = "cpu"  # where it was trained
    trained_on: str = ""  # torch version and device (see toybook.environment.describe)
    threads: int | None = None  # torch CPU threads it was trained with, where recorded

    @property
    def command(self) -> str:
        """The command that trains this model again: bit for bit on the same kind of CPU; on a
        GPU, whose kernels need not be deterministic, in behaviour."""
        preset = re.sub(r"_s\d+$", "", self.name)
        device = "" if self.device == "cpu" else f" --device {self.device}"
        threads = f" --threads {self.threads}" if self.device == "cpu" and self.threads else ""
        return f"toybook train {preset} --seed {self.seed}{device}{threads}"

    @property
    def all_claims_hold(self) -> bool:
        return all(claim["holds"] for claim in self.claims.values())

    @property
    def seed_claims_hold(self) -> bool:
        """Whether every claim said to hold for all seeds (``Claim.all_seeds``) holds."""
        return all(claim["holds"] for claim in self.claims.values() if claim.get("all_seeds", True))


def seed_name(preset: str, seed: int) -> str:
    return f"{preset}_s{seed}"


def parse_seeds(text: str) -> list[int]:
    """``"1-10"``, ``"3"`` or ``"1,4,7"`` → seeds; named errors otherwise."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None:
            raise ToybookError(f"seeds must look like 1-10, 3 or 1,4,7; got {text!r}")
        first, last = int(match[1]), int(match[2] or match[1])
        seeds += range(first, last + 1)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ToybookError(f"seeds must be distinct non-negative integers; got {text!r}")
    return seeds


def summary_path(out_dir: Path, preset: str) -> Path:
    return out_dir / "sweeps" / f"{preset}.json"


def read_sweep(out_dir: str | Path, preset: str) -> list[SeedResult]:
    """The recorded results of a sweep, seed by seed."""
    path = summary_path(Path(out_dir), preset)
    if not path.exists():
        raise ToybookError(f"no sweep of {preset!r} recorded in {out_dir} (no {path})")
    return [SeedResult(**row) for row in json.loads(path.read_text())["seeds"]]


def sweep(
    preset_name: str, seeds: Sequence[int], out_dir: str | Path, device: str = "cpu",
    progress: bool = True, log: Callable[[str], None] = print, ray: RayOptions | None = None,
    threads: int | None = None,
) -> list[SeedResult]:
    """Train (where needed) and check every seed of ``preset_name``; record and return.

    With ``ray``, each seed is a Ray task (:mod:`toybook.scale`) that gets the seed's
    checkpoint files where they exist and returns them trained and measured; the driver
    writes them into ``out_dir`` and records each seed as it finishes, so a stopped sweep
    resumes as a sequential one does. ``threads`` sets torch's CPU threads for each seed
    (a Ray task's default: its CPUs); the record names them, as they change the weights'
    last bits. Given the same threads, a sweep's record is the same whichever way it ran,
    but for the training times.
    """
    from toybook.checkpoint import check_writable, read_sidecar
    from toybook.config_checks import check_integer
    from toybook.registry import get_preset
    from toybook.zoo import shipped_path

    get_preset(preset_name)
    check_integer("sweep", "threads", threads, minimum=1, optional=True)
    out_dir = Path(out_dir)
    recorded = read_sidecar(shipped_path(preset_name)).get("evaluations", {})
    for seed in seeds:  # every output checked before any training
        path = out_dir / seed_name(preset_name, seed)
        if not path.with_suffix(".json").exists():
            check_writable(path)
    previous = {r.seed: r for r in read_sweep(out_dir, preset_name)} \
        if summary_path(out_dir, preset_name).exists() else {}
    if ray is None:
        jobs = [(preset_name, seed, str(out_dir), None, recorded, device, threads, progress, log)
                for seed in seeds]
    else:
        require_ray()
        jobs = [(preset_name, seed, None, checkpoint_bytes(out_dir / seed_name(preset_name, seed)),
                 recorded, device, threads or ray.cpus, False, None) for seed in seeds]
    done: dict[int, SeedResult] = {}
    for index, (files, row, lines) in run_jobs(_check_seed, jobs, ray):
        seed = seeds[index]
        if files is not None:
            write_checkpoint_bytes(out_dir / seed_name(preset_name, seed), files)
        for line in lines:
            log(line)
        done[seed] = SeedResult(**row)
        _write_summary(out_dir, preset_name, {**previous, **done})
    return [done[seed] for seed in seeds]


def _check_seed(
    preset_name: str, seed: int, folder: str | None, files: dict[str, bytes] | None,
    recorded: dict[str, Any], device: str, threads: int | None, progress: bool,
    log: Callable[[str], None] | None,
) -> tuple[dict[str, bytes] | None, dict[str, Any], list[str]]:
    """One seed of a sweep: train it unless its checkpoint exists, measure it unless its
    sidecar holds the measurement, check every claim. Works in ``folder``, or (a Ray task)
    in a temporary folder holding ``files`` (the checkpoint's, if any), whose files it
    returns. Returns ``(files, SeedResult as a dict, log lines not yet logged)``."""
    import tempfile

    import torch

    lines: list[str] = []
    say = log or lines.append
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if folder is not None:
            return None, asdict(_measure_seed(preset_name, seed, Path(folder), recorded,
                                              device, progress, say)), lines
        with tempfile.TemporaryDirectory(prefix="toybook-seed-") as here:
            path = Path(here) / seed_name(preset_name, seed)
            if files:
                write_checkpoint_bytes(path, files)
            result = _measure_seed(preset_name, seed, Path(here), recorded, device, progress, say)
            return checkpoint_bytes(path), asdict(result), lines
    finally:
        torch.set_num_threads(previous_threads)


def _measure_seed(
    preset_name: str, seed: int, out_dir: Path, recorded: dict[str, Any], device: str,
    progress: bool, log: Callable[[str], None],
) -> SeedResult:
    from toybook.analysis.dynamics import first_step_at_least
    from toybook.checkpoint import load_checkpoint, record_evaluation, save_checkpoint
    from toybook.claims import check_claims
    from toybook.environment import describe
    from toybook.measurement import remeasure
    from toybook.registry import get_preset
    from toybook.training import train

    preset = get_preset(preset_name)
    name, path = seed_name(preset_name, seed), out_dir / seed_name(preset_name, seed)
    if path.with_suffix(".json").exists():
        log(f"{name}: checkpoint exists, not retrained")
        train_seconds = None
    else:
        config = dataclasses.replace(preset.train, seed=seed, snapshot_every=None)
        started = time.perf_counter()
        save_checkpoint(train(preset.task, preset.model, config, device=device,
                              progress=progress), path)
        train_seconds = time.perf_counter() - started
        log(f"{name}: trained in {train_seconds:.0f} s")
    checkpoint = load_checkpoint(path, device=device)
    if checkpoint.metadata["train_config"]["seed"] != seed:
        raise ToybookError(f"{path} was trained with seed "
                           f"{checkpoint.metadata['train_config']['seed']}, not {seed}")
    evaluations = checkpoint.metadata.get("evaluations", {})
    mine = _same_measurement(evaluations, recorded)
    if mine is None:
        measurement, _ = remeasure(checkpoint.model, checkpoint.task, recorded, progress)
        record_evaluation(path, measurement.label, measurement.result)
        mine = (measurement.label, measurement.what, measurement.n, measurement.n_wrong)
        log(f"{name}: {measurement.n_wrong:,} wrong of {measurement.n:,} ({measurement.what})")
    claims = {
        result.claim.name: {"value": result.value, "holds": result.holds,
                            "low": result.claim.low, "high": result.claim.high,
                            "all_seeds": result.claim.all_seeds}
        for result in check_claims(preset_name, checkpoint.model)
    }
    history = checkpoint.metadata["history"]
    if train_seconds is None:  # trained earlier: the sidecar's own record
        train_seconds = float(checkpoint.metadata["training"]["wall_time_s"])
    result = SeedResult(
        seed=seed, name=name,
        measurement=dict(zip(("label", "what", "n", "n_wrong"), mine)),
        claims=claims,
        generalised_step=first_step_at_least(history, "eval_acc", GENERALISED),
        steps=checkpoint.metadata["training"]["steps"], train_seconds=train_seconds,
        weights_sha256=checkpoint.metadata["weights"]["sha256"],
        device=checkpoint.metadata["training"]["device"],
        trained_on=describe(checkpoint.metadata["training"].get("environment") or {}),
        threads=(checkpoint.metadata["training"].get("environment") or {}).get("threads"),
    )
    log(f"{name}: {sum(c['holds'] for c in claims.values())} of {len(claims)} claims hold; "
        f"generalised at step {result.generalised_step}")
    return result


def recorded_not_shipped() -> list[SeedResult]:
    """Seed models whose sweep the package records but whose weights it does not ship (too
    large to ship); each result names its weights' SHA-256 and its command."""
    from toybook.zoo import SHIPPED_DIR, shipped_names

    shipped = set(shipped_names())
    return [result for path in sorted((SHIPPED_DIR / "sweeps").glob("*.json"))
            for result in read_sweep(SHIPPED_DIR, path.stem) if result.name not in shipped]


def _same_measurement(evaluations: dict[str, Any], recorded: dict[str, Any]):
    """``(label, what, n, n_wrong)`` where a seed's sidecar already holds the measurement
    the shipped model recorded, else ``None``."""
    from toybook.measurement import describe_record

    for label in recorded:
        if label in evaluations:
            return describe_record(label, evaluations[label])
    return None


def _write_summary(out_dir: Path, preset: str, results: dict[int, SeedResult]) -> None:
    path = summary_path(out_dir, preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(results[seed]) for seed in sorted(results)]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"preset": preset, "seeds": rows}, indent=1) + "\n")
    temporary.replace(path)


__all__ = ["SeedResult", "parse_seeds", "read_sweep", "recorded_not_shipped", "seed_name", "sweep"]
