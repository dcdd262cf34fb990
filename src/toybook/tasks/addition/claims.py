"""The addition chapter's claims: which layer and heads carry base add, the carry and the
cascade (column patching, probes); what the 1-layer models get right and wrong."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable

from torch import nn

from toybook.analysis.patching import Patch
from toybook.checkpoint import read_sidecar
from toybook.claims import Claim, per_model, restated, scrubbing_claims
from toybook.measurement import wilson_interval
from toybook.tasks.addition.analysis import addition_accuracy, column_probes
from toybook.tasks.addition.circuit import (
    QuestionPairs, base_add_pairs, carry_pairs, cascade_pairs, donor_agreement, donor_agreements,
)
from toybook.tasks.addition.presets import ADDITION, ADDITION_1L, ADDITION_1L_MATCHED
from toybook.tasks.addition.task import AdditionTask, prediction_position
from toybook.zoo import shipped_path

TASK = AdditionTask()
Reduce = Callable[[Iterable[float]], float]  # min or max over the columns


@dataclass(frozen=True)
class Pairs:
    """Question pairs for patching one answer column: ``kind(task, column, n, seed)`` (e.g.
    :func:`~toybook.tasks.addition.circuit.base_add_pairs`), column ``j`` drawn with seed
    ``seed + j`` where ``by_column``, else with ``seed``."""

    kind: Callable[..., QuestionPairs]
    n: int
    seed: int
    by_column: bool = True

    def of(self, task: AdditionTask, column: int) -> QuestionPairs:
        return self.kind(task, column, n=self.n, seed=self.seed + column if self.by_column else self.seed)


@dataclass(frozen=True)
class At:
    """An activation to patch at the position that predicts a column: ``hook``, and only
    ``heads`` of a per-head one (every head where ``None``)."""

    hook: str
    heads: tuple[int, ...] | None = None

    def patch(self, position: int) -> Patch:
        return Patch(self.hook, (position,), self.heads)


def heads(layer: int, *numbers: int) -> At:
    """Heads ``numbers`` of layer ``layer`` (all of them where none are named)."""
    return At(f"blocks.{layer}.attn.hook_z", numbers or None)


def attention(layer: int) -> At:
    return At(f"blocks.{layer}.hook_attn_out")


def mlp(layer: int) -> At:
    return At(f"blocks.{layer}.hook_mlp_out")


BASE_ADD = Pairs(base_add_pairs, n=200, seed=100)
CARRY_A1 = Pairs(carry_pairs, n=200, seed=7, by_column=False)
CASCADE = Pairs(cascade_pairs, n=400, seed=30)
MLP_BASE_ADD = Pairs(base_add_pairs, n=200, seed=50)
EVERY_DIGIT = range(TASK.n_digits)  # A0..A4


def agreement(model: nn.Module, task: AdditionTask, pairs: Pairs, patched: tuple[At, ...],
              columns: Iterable[int], reduce: Reduce = min) -> float:
    """The patching agreement (:func:`~toybook.tasks.addition.circuit.donor_agreement`) of
    ``patched`` at the position that predicts each column, reduced over ``columns``."""
    return reduce(donor_agreement(model, task, pairs.of(task, j),
                                  [at.patch(prediction_position(task, j)) for at in patched])
                  for j in columns)


def best_single_head(model: nn.Module, task: AdditionTask, pairs: Pairs, layer: int = 0) -> float:
    """The largest, over single heads of ``layer``, of that head's smallest agreement over
    the answer digits."""
    n_heads = model.cfg.n_heads
    per_column = [donor_agreements(model, task, pairs.of(task, j), {
        str(h): [heads(layer, h).patch(prediction_position(task, j))] for h in range(n_heads)})
        for j in range(task.n_digits)]
    return max(min(row[str(h)] for row in per_column) for h in range(n_heads))


def probed(model: nn.Module, task: AdditionTask, target: str, stage: str, columns: Iterable[int],
           reduce: Reduce) -> float:
    """The held-out accuracy of the chapter's linear probe (:func:`~toybook.tasks.addition.analysis.column_probes`)
    for ``target`` after ``stage`` at the positions that predict ``columns``, reduced. Fitted
    on fresh questions (seed 1), not the chapter's recorded ones (seed 0), and half as many."""
    rows = column_probes(model, task, n_train=2000, n_test=1000, seed=1, columns=columns,
                         targets=[target], stages=[stage], places=["answer"], baseline=False)
    return reduce(row["accuracy"] for row in rows)


# Made on the shipped models, then measured on the seed models when they were trained: they
# hold on every one, so they are made for every seed.
MLP0_BASE_ADD = Claim(
    "mlp0_patch_base_add", "patching MLP0's output at A_j's position carries base add "
    "(smallest agreement over A4..A0)",
    partial(agreement, task=TASK, pairs=MLP_BASE_ADD, patched=(mlp(0),), columns=EVERY_DIGIT), 0.95, 1.0)
PROBE_BASE_ADD = Claim(
    "probe_base_add_mlp0", "the base add (x_j + y_j) mod 10 is read linearly after MLP0 at "
    "A_j's position (smallest held-out probe accuracy over A4..A0)",
    partial(probed, task=TASK, target="sum mod 10", stage="after MLP0", columns=EVERY_DIGIT, reduce=min),
    0.95)


def base_add(patched: tuple[At, ...], reduce: Reduce = min) -> partial:
    """The measure: base add's agreement with ``patched`` at every digit's position."""
    return partial(agreement, task=TASK, pairs=BASE_ADD, patched=patched, columns=EVERY_DIGIT, reduce=reduce)


CLAIMS = {ADDITION.name: (
    Claim("base_add_l0h0_l0h1", "L0H0 + L0H1 at A_j's position carry base add "
          "(smallest patching agreement over A4..A0)", base_add((heads(0, 0, 1),)), 0.95, 1.0,
          all_seeds=False),
    Claim("base_add_one_head", "either head alone does not (largest agreement, L0H0)",
          base_add((heads(0, 0),), max), 0.0, 0.4, all_seeds=False),
    Claim("base_add_not_l1", "layer 1 does not carry base add (largest agreement)",
          base_add((attention(1),), max), 0.0, 0.05),
    Claim("carry_a1_l0h2", "L0H2 reads the carry into A1 (patching agreement)",
          partial(agreement, task=TASK, pairs=CARRY_A1, patched=(heads(0, 2),), columns=(1,)),
          0.95, 1.0, all_seeds=False),
    Claim("cascade_layer1", "layer 1 resolves the cascade for A2..A4 (smallest "
          "patching agreement)",
          partial(agreement, task=TASK, pairs=CASCADE, patched=(attention(1),), columns=(2, 3, 4)),
          0.95, 1.0, all_seeds=False),
    Claim("base_add_layer0", "layer 0's heads at A_j's position carry base add (all four "
          "patched; smallest agreement over A4..A0)", base_add((heads(0),)), 0.95, 1.0),
    Claim("base_add_no_single_head", "no single L0 head carries it for every digit (the "
          "best head's smallest agreement)", partial(best_single_head, task=TASK, pairs=BASE_ADD),
          0.0, 0.4),
    Claim("carry_a1_layer0", "layer 0's heads at A1's position read the carry into A1 "
          "(all four patched)",
          partial(agreement, task=TASK, pairs=CARRY_A1, patched=(heads(0),), columns=(1,)),
          0.95, 1.0, all_seeds=False),
    Claim("carry_a1_attention", "the attention at A1's position, layers 0 and 1 together, "
          "reads the carry into A1",
          partial(agreement, task=TASK, pairs=CARRY_A1, patched=(attention(0), attention(1)), columns=(1,)),
          0.95, 1.0),
    # made for every seed after the GPU sweep; seed 2 (addition_s2) breaks it (0.94 at A3,
    # whose cascade layer 0's attention also carries): the shipped model's since
    Claim("cascade_layer1_a3_a4", "layer 1 resolves the cascade for A3 and A4 (smallest "
          "patching agreement)",
          partial(agreement, task=TASK, pairs=CASCADE, patched=(attention(1),), columns=(3, 4)),
          0.95, 1.0, all_seeds=False),
    MLP0_BASE_ADD,
    Claim("mlp1_cascade", "patching MLP1's output at A_j's position carries the cascaded "
          "carry (smallest agreement over A2..A4)",
          partial(agreement, task=TASK, pairs=CASCADE, patched=(mlp(1),), columns=(2, 3, 4)), 0.95, 1.0),
    Claim("mlp1_cascade_not_mlp0", "patching MLP0's output there does not (largest agreement)",
          partial(agreement, task=TASK, pairs=CASCADE, patched=(mlp(0),), columns=(2, 3, 4), reduce=max),
          0.0, 0.05),
    PROBE_BASE_ADD,
    Claim("probe_cascade_l1_attention", "whether a carry reaches column j through a sum-9 "
          "column j-1 is read linearly after layer 1's attention (smallest accuracy over A2..A5)",
          partial(probed, task=TASK, target="carry in", stage="after L1 attention", columns=range(2, 6),
                  reduce=min), 0.95),
    Claim("probe_cascade_not_layer0", "it is not read after MLP0 (largest accuracy over A2..A4)",
          partial(probed, task=TASK, target="carry in", stage="after MLP0", columns=range(2, 5),
                  reduce=max), high=0.95),
)}


# The scope of these claims changed after the shipped seed models (addition_s2.., addition_1l_s2..)
# were measured, and the chapter's seed section says so. Narrowed: made for every seed
# before, broken by a seed, now made for the shipped model only. Widened: made for the
# shipped model before the seeds existed, holding on every seed, now made for every seed.
SEED_RESTATEMENTS = {
    ADDITION.name: {"narrowed": ("cascade_layer1_a3_a4",),
                    "widened": ("mlp0_patch_base_add", "mlp1_cascade", "mlp1_cascade_not_mlp0",
                                "probe_base_add_mlp0", "probe_cascade_l1_attention",
                                "probe_cascade_not_layer0")},
    ADDITION_1L.name: {"narrowed": (),
                       "widened": ("mlp0_patch_base_add", "probe_base_add_mlp0")},
}

CASCADE_SETS = ("Cascade2", "Cascade3", "Cascade4")


def cascade_count(sets: dict[str, list[int]]) -> tuple[int, int]:
    """``(n_wrong, n)`` over the depth 2–4 cascade sets of an accuracy result or record."""
    return sum(sets[name][1] for name in CASCADE_SETS), sum(sets[name][0] for name in CASCADE_SETS)


def two_layer_cascade_bound() -> float:
    """The baseline of ``cascades_fail``: the 95% upper bound (Wilson) of the shipped 2-layer
    model's error rate on the depth 2–4 cascades of its 1M-question record (0 of 1,200 give
    0.32%). A 1-layer model whose lower bound is above it is worse at cascades beyond doubt."""
    record = read_sidecar(shipped_path(ADDITION.name))["evaluations"]["accuracy_1000000_seed12345"]
    return wilson_interval(*cascade_count(record["sets"]))[1]


@per_model
def hand_built_sets(model: nn.Module, task: AdditionTask):
    """Accuracy on the chapter's hand-built question sets, 50 per layout (seed 777)."""
    return addition_accuracy(model, task, n_random=0, seed=777, per_layout=50)


def wrong_in(model: nn.Module, task: AdditionTask, sets: tuple[str, ...]) -> float:
    """Wrong answers in the hand-built question ``sets``."""
    return float(sum(hand_built_sets(model, task).sets[name][1] for name in sets))


def cascade_rate_low(model: nn.Module, task: AdditionTask) -> float:
    """The 95% lower bound (Wilson) of the error rate on the depth 2–4 cascade sets."""
    return wilson_interval(*cascade_count(hand_built_sets(model, task).sets))[0]


# What both 1-layer models are claimed to do: base add right, cascades worse than the
# 2-layer model beyond doubt, the base add through MLP0 and read linearly after it.
ONE_LAYER = (
    Claim("base_add_right", "one layer suffices for base add (wrong answers on the BA set)",
          partial(wrong_in, task=TASK, sets=("BA",)), 0.0, 0.0),
    Claim("cascades_fail", "one layer gets more cascades wrong than the 2-layer model can (the "
          "95% lower bound of its error rate on the depth 2–4 cascade sets is above the 95% "
          "upper bound of the 2-layer model's recorded rate)", partial(cascade_rate_low, task=TASK),
          two_layer_cascade_bound()),
    MLP0_BASE_ADD,
    PROBE_BASE_ADD,
)

CLAIMS[ADDITION_1L.name] = ONE_LAYER
# The parameter-matched 1-layer model: the 1-layer claims (its heads differ from the 4-head
# models', so the head readings do not apply; its reading keeps all eight heads).
CLAIMS[ADDITION_1L_MATCHED.name] = ONE_LAYER

# The reading as a program, causal-scrubbed (toybook.analysis.faithfulness): every head where
# each digit is predicted, layer 0 at y_j as the column's digit sum, the MLPs as functions of
# digit sums and the carry. The goal, 0.95, on every two-layer model. In one layer, restated
# after the seeds were measured: seeds 2 and 4 recover 0.933 and 0.948, so the goal is made
# for the shipped models only; every seed beats random readings of its shape.
CLAIMS[ADDITION.name] += scrubbing_claims(ADDITION.name, "columns")
CLAIMS[ADDITION_1L.name] = restated(CLAIMS[ADDITION_1L.name] + scrubbing_claims(ADDITION_1L.name, "columns"),
                                    {"scrubbed_columns": {"all_seeds": False}})
CLAIMS[ADDITION_1L_MATCHED.name] += scrubbing_claims(ADDITION_1L_MATCHED.name, "columns")
