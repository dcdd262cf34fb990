"""The chapters' key circuit claims, as checks that run on any model of the right task.

A claim is one sentence of a chapter, a number measured on a model by an intervention
(attention forcing, ablation, activation patching) or a weight reading, and the range
that number must fall in for the claim to hold. The tests assert every claim on the
shipped models; ``toybook reproduce`` checks them on a retrained model, where bit-identity
cannot be expected, to show that the retrained model works the same way. Claims with
``all_seeds=False`` describe the shipped model only: other seeds of its preset (see
:mod:`toybook.sweep`) do it differently, and the chapter's seed section says how.

    from toybook.claims import check_claims
    for result in check_claims(name, model):   # a shipped name, e.g. a seed NAME_s3
        print(result)     # "pass  qk_monotone  1 in [1, 1]  the QK score grows with ..."

Thresholds are the tests' thresholds: loose enough for sampling noise, tight enough to
fail a model that works differently. Each claim takes seconds on a CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Callable

import torch
from torch import nn

from toybook.errors import UnknownModelError


@dataclass(frozen=True)
class Claim:
    """One claim: ``low <= measure(model) <= high`` must hold."""

    name: str
    text: str  # the chapter's sentence
    measure: Callable[[nn.Module], float]
    low: float = float("-inf")
    high: float = float("inf")
    all_seeds: bool = True  # the chapter says it holds for every seed, not only the shipped one


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    value: float

    @property
    def holds(self) -> bool:
        return self.claim.low <= self.value <= self.claim.high

    def __str__(self) -> str:
        bounds = f"[{self.claim.low:.3g}, {self.claim.high:.3g}]"
        return (f"{'pass' if self.holds else 'FAIL'}  {self.claim.name:<22} "
                f"{self.value:.4g} in {bounds:<14} {self.claim.text}")


def accuracy(task, logits, tokens) -> float:
    """Exact-match accuracy of ``logits`` on ``tokens``, as a float."""
    return task.correct(logits, tokens).double().mean().item()


@cache
def _claims() -> MappingProxyType[str, Callable[[], tuple[Claim, ...]]]:
    """Preset name → the factory of its claims, from every task folder's ``claims.CLAIMS``."""
    from toybook.tasks import task_parts

    return MappingProxyType({name: factory for module in task_parts("claims")
                             for name, factory in module.CLAIMS.items()})


def __getattr__(name: str) -> Any:
    if name == "CLAIMS":
        return _claims()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def has_claims(name: str) -> bool:
    """Whether models named ``name`` (a preset or its seed, ``NAME_sN``) are held to claims."""
    return isinstance(name, str) and re.sub(r"_s\d+$", "", name) in _claims()


def claims_for(name: str) -> tuple[Claim, ...]:
    """The claims a model of shipped name ``name`` is held to; a seed model (``NAME_s3``,
    see :mod:`toybook.sweep`) is held to its preset's."""
    claims = _claims()
    preset = re.sub(r"_s\d+$", "", name) if isinstance(name, str) else None
    if preset not in claims:
        raise UnknownModelError(
            f"no circuit claims for {name!r}; claims exist for: {', '.join(claims)} "
            "(and their seed models, NAME_sN)"
        )
    return claims[preset]()


def check_claims(name: str, model: nn.Module) -> list[ClaimResult]:
    """Measure every claim of ``name`` on ``model`` (no gradients), on the CPU: a model on
    another device is measured as a CPU copy (the claims build their inputs on the CPU)."""
    from toybook.model import check_model_fits, cpu_copy
    from toybook.presets import PRESETS

    claims = claims_for(name)
    preset = PRESETS.get(re.sub(r"_s\d+$", "", name))
    if preset is not None:
        check_model_fits(f"check_claims({name!r})", model, preset.task, preset.model)
    model = cpu_copy(model)
    with torch.no_grad():
        return [ClaimResult(claim, float(claim.measure(model))) for claim in claims]


__all__ = ["CLAIMS", "Claim", "ClaimResult", "accuracy", "check_claims", "claims_for", "has_claims"]
