"""Retrain a shipped model from its recorded configuration and compare it with the original.

What "reproduced" means depends on where the rerun happens (see
:mod:`toybook.environment`):

- **bit-identical**: in the recorded environment (torch version, CPU kernels, thread
  count), the retrained weights must equal the shipped ones bit for bit;
- **behaviour**: anywhere else the floats drift apart from the first steps on, and the
  rerun must instead work the same way: an accuracy at least as perfect as recorded
  (exhaustive where the task's inputs can be enumerated, the recorded sample otherwise)
  and every circuit claim of :mod:`toybook.claims`.

Either way the report shows the largest logit difference on a fixed input set.

    from toybook.reproduce import reproduce
    report = reproduce(toybook.zoo.shipped_path(name), out_dir="checkpoints/reproduced")
    print(report)     # one screen: environment, weights, logits, accuracy, claims, verdict
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from toybook.checkpoint import (
    Checkpoint, check_writable, checkpoint_files, load_checkpoint, save_checkpoint,
)
from toybook.claims import ClaimResult, check_claims, has_claims
from toybook.environment import bit_identity_mismatch, current_environment, describe
from toybook.errors import ToybookError
from toybook.measurement import remeasure
from toybook.model import ModelConfig
from toybook.task import Task
from toybook.training import TrainConfig, train

FIXED_INPUTS = 4096  # the logit comparison's inputs: all of them where there are fewer
FIXED_SEED = 20261125


@dataclass(frozen=True)
class AccuracyCheck:
    """The same accuracy measurement on the shipped and the retrained model."""

    what: str  # e.g. "all 4,096 inputs"
    shipped_wrong: int | None  # None: not recorded
    retrained_wrong: int
    seconds: float

    @property
    def holds(self) -> bool:
        """A perfect shipped model must be matched by a perfect retrained one; an imperfect
        one is judged by its claims (e.g. "fails on cascades"), not by its error count."""
        return self.shipped_wrong != 0 or self.retrained_wrong == 0


@dataclass(frozen=True)
class Reproduction:
    """What a rerun of one shipped model found."""

    name: str
    recorded_environment: dict[str, Any]
    environment: dict[str, Any]
    mismatch: list[str]  # why bit-identity is not expected here; empty: it is
    bit_identical: bool
    max_logit_diff: float
    answers_agree: float  # fraction of fixed-input answers on which both models agree
    n_fixed: int
    accuracy: AccuracyCheck | None  # None where bit-identical: the recorded results hold
    claims: list[ClaimResult]
    train_seconds: float
    steps: int
    checkpoint: Path

    @property
    def level(self) -> str:
        return "bit-identity" if not self.mismatch else "behaviour"

    @property
    def reproduced(self) -> bool:
        claims_hold = all(result.holds for result in self.claims)
        if not self.mismatch:
            return self.bit_identical and claims_hold
        return claims_hold and (self.accuracy is None or self.accuracy.holds)

    @property
    def verdict(self) -> str:
        if not self.reproduced:
            return "NOT REPRODUCED"
        if self.bit_identical:
            return "REPRODUCED, bit-identical"
        return "REPRODUCED in behaviour (bit-identity is not expected on this machine)"

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.verdict}"]
        lines.append(f"  recorded     {describe(self.recorded_environment)}")
        lines.append(f"  here         {describe(self.environment)}")
        if self.mismatch:
            lines.append("  differs      " + "; ".join(self.mismatch))
        lines.append(f"  checked      {self.level}")
        lines.append(f"  training     {self.steps} steps in {self.train_seconds:.1f} s"
                     f" → {self.checkpoint}")
        lines.append("  weights      " + ("bit-identical to the shipped checkpoint"
                                          if self.bit_identical else "differ"))
        lines.append(f"  logits       max |Δ| {self.max_logit_diff:.3g} on {self.n_fixed:,} "
                     f"fixed inputs; answers agree on {self.answers_agree:.2%}")
        if self.accuracy is None:
            lines.append("  accuracy     same weights: the recorded evaluations hold unchanged")
        else:
            shipped = "not recorded" if self.accuracy.shipped_wrong is None else (
                f"{self.accuracy.shipped_wrong:,} wrong")
            lines.append(f"  accuracy     {self.accuracy.what}: shipped {shipped}, retrained "
                         f"{self.accuracy.retrained_wrong:,} wrong ({self.accuracy.seconds:.0f} s)")
        if self.claims:
            held = sum(result.holds for result in self.claims)
            lines.append(f"  claims       {held}/{len(self.claims)} hold")
            lines += [f"    {result}" for result in self.claims]
        else:
            lines.append("  claims       none defined for this model")
        return "\n".join(lines)


def reproduce(
    path: str | Path, out_dir: str | Path, device: str = "cpu", progress: bool = True,
    log: Callable[[str], None] = lambda line: None,
) -> Reproduction:
    """Retrain the checkpoint at ``path`` from its recorded configs into ``out_dir`` and
    compare. Where bit-identity is possible here, training uses the recorded thread count
    (then restores it); where something else already rules it out (the CPU kernels, the
    torch version), training uses this machine's threads, which is faster."""
    shipped = load_checkpoint(path, device=device)
    out = Path(out_dir) / shipped.name
    if checkpoint_files(out)[1].resolve() == shipped.path.resolve():
        raise ToybookError(f"--out {out_dir} would overwrite the checkpoint being reproduced; "
                           f"choose another folder")
    check_writable(out)  # before training, not after it
    recorded = shipped.metadata["training"].get("environment") or {}
    threads = torch.get_num_threads()
    ruled_out = [reason for reason in bit_identity_mismatch(recorded, current_environment(device))
                 if not reason.startswith("threads:")]
    if ruled_out:
        log(f"{shipped.name}: bit-identity is not expected here ({'; '.join(ruled_out)}), "
            f"so training uses this machine's {threads} threads")
    elif isinstance(recorded.get("threads"), int):
        torch.set_num_threads(recorded["threads"])
    try:
        environment = current_environment(device)
        log(f"{shipped.name}: retraining for {shipped.metadata['training']['steps']} steps "
            f"({describe(environment)})")
        result = train(
            shipped.task,
            ModelConfig.from_dict(shipped.metadata["model_config"]),
            TrainConfig.from_dict(shipped.metadata["train_config"]),
            device=device, progress=progress,
        )
    finally:
        torch.set_num_threads(threads)
    save_checkpoint(result, out)
    retrained = load_checkpoint(out, device=device)
    mismatch = bit_identity_mismatch(recorded, environment)
    identical = same_weights(shipped, retrained)
    max_diff, agree, n_fixed = compare_logits(shipped, retrained)
    accuracy = None
    if not identical:
        log(f"{shipped.name}: weights differ; measuring accuracy as recorded")
        accuracy = accuracy_check(retrained, shipped.metadata.get("evaluations", {}), progress)
    claims = check_claims(shipped.name, retrained.model) if has_claims(shipped.name) else []
    return Reproduction(
        name=shipped.name, recorded_environment=recorded, environment=environment,
        mismatch=mismatch, bit_identical=identical, max_logit_diff=max_diff,
        answers_agree=agree, n_fixed=n_fixed, accuracy=accuracy, claims=claims,
        train_seconds=result.wall_time_s, steps=result.train_config.steps,
        checkpoint=checkpoint_files(out)[1],
    )


def same_weights(a: Checkpoint, b: Checkpoint) -> bool:
    left, right = a.model.state_dict(), b.model.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def fixed_inputs(task: Task) -> torch.Tensor:
    """Every input where there are at most :data:`FIXED_INPUTS`, else a seeded sample."""
    if task.n_inputs is not None and task.n_inputs <= FIXED_INPUTS:
        return task.inputs()
    return task.generate(FIXED_INPUTS, seed=FIXED_SEED)


@torch.no_grad()
def compare_logits(a: Checkpoint, b: Checkpoint) -> tuple[float, float, int]:
    """Largest absolute logit difference at the answer positions, and the fraction of
    answers on which the two models agree, on :func:`fixed_inputs`."""
    tokens = fixed_inputs(a.task)
    device = next(a.model.parameters()).device
    left = a.task.answer_logits(a.model(tokens.to(device))).double()
    right = a.task.answer_logits(b.model(tokens.to(device))).double()
    agree = (left.argmax(-1) == right.argmax(-1)).double().mean().item()
    return (left - right).abs().max().item(), agree, len(tokens)


def accuracy_check(checkpoint: Checkpoint, recorded: dict[str, Any], progress: bool) -> AccuracyCheck:
    """The measurement the shipped model's accuracy was recorded with, on ``checkpoint``."""
    measurement, shipped_wrong = remeasure(checkpoint.model, checkpoint.task, recorded, progress)
    return AccuracyCheck(measurement.what, shipped_wrong, measurement.n_wrong,
                         measurement.seconds)
