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

Each task folder's ``claims`` module is a table: a tuple of :class:`Claim` per preset, whose
``measure`` is a named function of the model with its other arguments bound
(``partial(uniformity, inputs=PROBE)``), on seeded :class:`Inputs`. A variant's claims are
its base preset's with some restated by name (:func:`restated`); measurements that several
claims share are computed once per model (:func:`per_model`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch
from torch import nn

from toybook import registry
from toybook.errors import ToybookError, UnknownModelError
from toybook.model import check_model_fits, cpu_copy

if TYPE_CHECKING:
    from torch import Tensor

    from toybook.task import Task


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


@dataclass(frozen=True)
class Inputs:
    """A seeded sample of a task's inputs: the claims choose components on one sample and
    test them on another."""

    n: int
    seed: int

    def of(self, task: Task) -> Tensor:
        """The sample, ``[n, T]``: ``task.generate(n, seed)``, the same on every call."""
        return task.generate(self.n, seed=self.seed)


_SHARED: list[dict[Any, Any]] = []  # the caches of per_model, emptied by check_claims


def per_model(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function(model, *args)``, computed once per arguments for the last model it was
    called with: several claims read one expensive measurement (a ranking of neurons, a
    table of ablations). :func:`check_claims` forgets them before and after each model, so a
    model changed in place between two checks is measured afresh."""
    last: dict[Any, Any] = {}
    _SHARED.append(last)

    @functools.wraps(function)
    def once(model: nn.Module, *args: Any) -> Any:
        if last.get("model") is not model:
            last.clear()
            last["model"] = model
        if args not in last:
            last[args] = function(model, *args)
        return last[args]

    return once


def restated(claims: tuple[Claim, ...], changes: Mapping[str, Mapping[str, Any]]) -> tuple[Claim, ...]:
    """``claims`` with the named ones changed (``{"l1_copies_l0_value": {"all_seeds": False}}``):
    a variant's claims. A name or field that is not there is an error, not a silent no-op."""
    names = [claim.name for claim in claims]
    unknown = [name for name in changes if name not in names]
    if unknown:
        raise ToybookError(f"no claim named {', '.join(map(repr, unknown))} to restate; "
                           f"the claims are: {', '.join(names)}")
    fields = {field.name for field in dataclasses.fields(Claim)}
    for name, change in changes.items():
        if set(change) - fields:
            raise ToybookError(f"claim {name!r}: no field {', '.join(sorted(set(change) - fields))}"
                               f"; a claim's fields are: {', '.join(sorted(fields))}")
    return tuple(dataclasses.replace(claim, **changes.get(claim.name, {})) for claim in claims)


def accuracy(task, logits, tokens) -> float:
    """Exact-match accuracy of ``logits`` on ``tokens``, as a float."""
    return task.correct(logits, tokens).double().mean().item()


@per_model
def headline_faithfulness(model: nn.Module, preset: str):
    """The :class:`~toybook.analysis.faithfulness.Faithfulness` of ``preset``'s headline reading
    on ``model``, with its random baseline (no minimality or completeness)."""
    from toybook.analysis.faithfulness import faithfulness, model_readings  # noqa: PLC0415 (its readings import this module)

    model, task, readings = model_readings(preset, model)
    headline = next(reading for reading in readings if reading.headline)
    return faithfulness(model, task, headline, n_subsets=0, minimality=False)


def headline_recovered(model: nn.Module, preset: str) -> float:
    """F of ``preset``'s headline reading, on the fixed, fully scrubbed scale."""
    return headline_faithfulness(model, preset).recovered


def headline_over_random(model: nn.Module, preset: str) -> float:
    """F of the headline reading minus the 95th percentile of random readings of its shape."""
    result = headline_faithfulness(model, preset)
    return result.recovered - result.random_p95


def headline_not_whole(model: nn.Module, preset: str) -> float:
    """Universe components the headline reading does not keep whole (0: it is the model)."""
    result = headline_faithfulness(model, preset)
    return result.n_universe - result.n_whole


def scrubbing_claims(preset: str, name: str, low: float = 0.95, high: float = float("inf"),
                     over_random: bool = True) -> tuple[Claim, ...]:
    """The claims on ``preset``'s headline reading ``name``, on every seed: it is not the whole
    model, its F lies in ``[low, high]`` (0.95, the book's goal, by default), and, where
    ``over_random``, it beats random readings of its shape."""
    claims = (
        Claim(f"scrubbed_{name}_not_whole", f"the reading `{name}` keeps fewer components whole "
              "than the universe holds", functools.partial(headline_not_whole, preset=preset), 1),
        Claim(f"scrubbed_{name}", f"the reading `{name}`, causal-scrubbed: fraction of loss "
              "recovered against the fully scrubbed model", functools.partial(headline_recovered, preset=preset),
              low, high),
    )
    if over_random:
        claims += (Claim(f"scrubbed_{name}_over_random", f"the reading `{name}` minus the 95th "
                         "percentile of random readings of its shape",
                         functools.partial(headline_over_random, preset=preset), 1e-9),)
    return claims


def has_claims(name: str) -> bool:
    """Whether models named ``name`` (a preset or its seed, ``NAME_sN``) are held to claims."""
    return isinstance(name, str) and re.sub(r"_s\d+$", "", name) in registry.claims()


def claims_for(name: str) -> tuple[Claim, ...]:
    """The claims a model of shipped name ``name`` is held to; a seed model (``NAME_s3``,
    see :mod:`toybook.sweep`) is held to its preset's."""
    claims = registry.claims()
    preset = re.sub(r"_s\d+$", "", name) if isinstance(name, str) else None
    if preset not in claims:
        raise UnknownModelError(
            f"no circuit claims for {name!r}; claims exist for: {', '.join(claims)} "
            "(and their seed models, NAME_sN)"
        )
    return claims[preset]


def check_claims(name: str, model: nn.Module) -> list[ClaimResult]:
    """Measure every claim of ``name`` on ``model`` (no gradients), on the CPU: a model on
    another device is measured as a CPU copy (the claims build their inputs on the CPU)."""
    claims = claims_for(name)
    preset = registry.presets().get(re.sub(r"_s\d+$", "", name))
    if preset is not None:
        check_model_fits(f"check_claims({name!r})", model, preset.task, preset.model)
    model = cpu_copy(model)
    for shared in _SHARED:
        shared.clear()
    try:
        with torch.no_grad():
            return [ClaimResult(claim, float(claim.measure(model))) for claim in claims]
    finally:
        for shared in _SHARED:
            shared.clear()


__all__ = ["Claim", "ClaimResult", "Inputs", "accuracy", "check_claims", "claims_for", "has_claims",
           "headline_faithfulness", "headline_over_random", "headline_recovered", "per_model",
           "restated", "scrubbing_claims"]
