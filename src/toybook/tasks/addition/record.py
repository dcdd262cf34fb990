"""The addition chapter's measurements of a seed model, and their record in its sidecar.

The chapter measures its shipped models in full. For the seed models (``addition_s2`` …,
``addition_1l_s2`` …) it shows the same readings side by side: the MLP patching of
hypotheses 1–3 (:func:`mlp_agreements`), layer 1's relevance to each hand-built question
set (:func:`layer1_relevance`, two layers only) and the fraction of loss recovered by the
chapter's readings, per kind of answer digit. Six models take longer than the book's build
can spend, so each seed carries its numbers in its sidecar (record :data:`RECORD`, written
by ``scripts/record_addition_seeds.py``, together with the ablation scans and cascade
patching of ``scripts/record_ablations.py``). ``tests/test_addition_record.py`` recomputes
a seed's and compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from toybook.errors import ToybookError
from toybook.tasks.addition.task import AdditionTask

RECORD = "seed_measurements"
MLP_PAIRS_SEED = 60  # the MLP patching's pairs for A_j: 200 drawn with seed 60 + j
LAYER1_SETS = {"per_layout": 50, "seed": 31}  # the hand-built sets of layer 1's relevance


def mlp_agreements(model: torch.nn.Module, task: AdditionTask) -> dict[tuple[str, int], dict[str, float]]:
    """``{(kind, j): {"MLP0": share, "MLP1": share}}``: the share of ``A_j`` that becomes the
    donor's when one MLP's output at ``A_j``'s position is copied from the donor, on the
    question pairs of hypotheses 1–3 (kind ``"base add"`` for ``j`` = 0..n-1, ``"carry"``
    for 1..n, ``"cascade"`` for 2..n). A one-layer model has only ``"MLP0"``."""
    from toybook.analysis.patching import Patch
    from toybook.tasks.addition.circuit import (
        base_add_pairs, carry_pairs, cascade_pairs, donor_agreements, prediction_position,
    )

    n = task.n_digits
    agreements = {}
    for kind, make_pairs, columns in (("base add", base_add_pairs, range(n)),
                                      ("carry", carry_pairs, range(1, n + 1)),
                                      ("cascade", cascade_pairs, range(2, n + 1))):
        for j in columns:
            q = prediction_position(task, j)
            agreements[kind, j] = donor_agreements(
                model, task, make_pairs(task, j, n=200, seed=MLP_PAIRS_SEED + j),
                {f"MLP{layer}": [Patch(f"blocks.{layer}.hook_mlp_out", (q,))]
                 for layer in range(model.cfg.n_layers)})
    return agreements


@torch.no_grad()
def layer1_relevance(model: torch.nn.Module, task: AdditionTask,
                     reference: Tensor | None = None) -> dict[str, tuple[float, float]]:
    """``{set name: (attention, MLP1)}``: the share of each hand-built question set
    (:func:`~toybook.tasks.addition.analysis.question_sets` with :data:`LAYER1_SETS`) with
    any digit wrong when all of layer 1's attention output, or all of MLP1's, is replaced by
    its mean over ``reference`` (default: the MLP ablations' reference questions) at every
    position. The reference's claim "layer 1 is not relevant for BA, UC1 and simple US9",
    measured. Two-layer models only."""
    from toybook.analysis.ablation import mean_activation, run_with_ablations
    from toybook.tasks.addition.analysis import question_sets
    from toybook.tasks.addition.circuit import MLP_ABLATION_SETTINGS, mlp_ablation_inputs

    if model.cfg.n_layers < 2:
        raise ToybookError(f"layer 1's relevance needs a model with two layers; this one has {model.cfg.n_layers}")
    if reference is None:
        reference = mlp_ablation_inputs(task, **MLP_ABLATION_SETTINGS)[0]
    hooks = ("blocks.1.hook_attn_out", "blocks.1.hook_mlp_out")
    means = {hook: mean_activation(model, reference, hook)[0] for hook in hooks}

    def wrong(hook: str, tokens: Tensor) -> float:
        logits = run_with_ablations(model, tokens, {hook: means[hook]})
        return (~task.correct(logits, tokens)).any(1).double().mean().item()

    return {name: (wrong(hooks[0], tokens), wrong(hooks[1], tokens))
            for name, tokens in question_sets(task, **LAYER1_SETS).items()}


@dataclass(frozen=True)
class Measurements:
    """One seed model's numbers in the chapter: ``mlp`` (:func:`mlp_agreements`) and ``layer1``
    (:func:`layer1_relevance`; empty for one layer). The readings' faithfulness is recorded
    with every shipped model's (:func:`toybook.analysis.faithfulness.recorded_reports`)."""

    mlp: dict[tuple[str, int], dict[str, float]]
    layer1: dict[str, tuple[float, float]]


@torch.no_grad()
def measure(model: torch.nn.Module, task: AdditionTask, preset: str) -> Measurements:
    """:class:`Measurements` of ``model``, a model of ``preset`` (``"addition"`` or
    ``"addition_1l"``); about 10 s on 2 cores."""
    if preset not in ("addition", "addition_1l"):
        raise ToybookError(f"seed measurements are made for 'addition' and 'addition_1l' models, not {preset!r}")
    return Measurements(
        mlp_agreements(model, task),
        layer1_relevance(model, task) if model.cfg.n_layers > 1 else {},
    )


def to_record(measured: Measurements) -> dict[str, Any]:
    """Plain JSON data for a sidecar (``toybook.checkpoint.record_evaluation``)."""
    return {
        "summary": "the addition chapter's seed measurements (MLP patching, layer-1 relevance)",
        "mlp": {f"{kind}|{j}": values for (kind, j), values in measured.mlp.items()},
        "layer1": {name: list(values) for name, values in measured.layer1.items()},
    }


def read_record(metadata: Mapping[str, Any]) -> Measurements:
    """The :class:`Measurements` recorded in a checkpoint's ``metadata`` (its sidecar)."""
    record = metadata.get("evaluations", {}).get(RECORD)
    if record is None:
        raise ToybookError(f"this checkpoint has no {RECORD!r} record; "
                           "scripts/record_addition_seeds.py CHECKPOINT writes it")
    mlp = {}
    for key, values in record["mlp"].items():
        kind, j = key.split("|")
        mlp[kind, int(j)] = values
    return Measurements(
        mlp,
        {name: tuple(values) for name, values in record["layer1"].items()},
    )
