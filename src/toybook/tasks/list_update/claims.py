"""The list-update chapter's claims: where layer 1 reads, what forcing it does, what each
layer is needed for, the default route and the paths through layer 0; the shortformer and
batchwise models' variants."""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from toybook.analysis.attribution import answer_logit_attribution
from toybook.analysis.interventions import run_with_hard_attention
from toybook.claims import Claim, Inputs, accuracy, per_model, restated, scrubbing_claims
from toybook.tasks.list_update.analysis import (
    QUERY_POS, ablation_effects, composition_paths, default_route, hypothesised_sources,
    own_sources, patching_pairs,
)
from toybook.tasks.list_update.hypotheses import PATH_PAIRS, ROUTE_INPUTS
from toybook.tasks.list_update.presets import (
    LIST_UPDATE, LIST_UPDATE_SHORTFORMER, LIST_UPDATE_SHORTFORMER_BATCHWISE,
)
from toybook.tasks.list_update.task import ListUpdateTask
from toybook.tasks.list_update.weights import WeightReading, weight_reading

TASK = ListUpdateTask()
COMPARED = Inputs(2000, seed=99)  # the chapter's comparison inputs
UPDATED, KEPT = 0, 1  # the rows of an ablation effect (updated_and_kept_accuracy)
Sources = Callable[[nn.Module, Tensor], Tensor]  # (model, tokens [B, T]) -> source [B, 3]


def chapter_sources(model: nn.Module, tokens: Tensor) -> Tensor:
    """The chapter's hypothesised source of each answer (the same for every model)."""
    return hypothesised_sources(tokens)


def attention_on_sources(model: nn.Module, task: ListUpdateTask, inputs: Inputs, sources: Sources) -> float:
    """Smallest, over b0..b2, of layer 1's mean attention from the query onto the source."""
    tokens = inputs.of(task)
    _, cache = model.run_with_cache(tokens, names_filter="blocks.1.attn.hook_pattern")
    pattern, chosen = cache["blocks.1.attn.hook_pattern"][:, 0], sources(model, tokens)
    rows = torch.arange(len(tokens))
    on = torch.stack([pattern[rows, q, chosen[:, k]] for k, q in enumerate(QUERY_POS)], 1)
    return on.mean(0).min().item()


def forced_onto_sources(model: nn.Module, task: ListUpdateTask, inputs: Inputs, sources: Sources) -> float:
    """Accuracy with layer 1's attention at the queries forced onto the sources."""
    tokens = inputs.of(task)
    forced = run_with_hard_attention(model, tokens, QUERY_POS, sources(model, tokens), layer=1)
    return accuracy(task, forced, tokens)


def l1_share(model: nn.Module, task: ListUpdateTask, inputs: Inputs) -> float:
    """Layer 1's smallest share of the direct logit attribution over b0..b2."""
    names, attribution = answer_logit_attribution(model, task, inputs.of(task))
    mean = attribution.mean(0)
    return (mean[names.index("blocks.1.hook_attn_out")] / mean.sum(0)).min().item()


@per_model
def effects(model: nn.Module, task: ListUpdateTask, inputs: Inputs) -> dict[str, Tensor]:
    return ablation_effects(model, task, inputs.of(task))


def ablated(model: nn.Module, task: ListUpdateTask, inputs: Inputs, ablation: str, row: int,
            reduce: str) -> float:
    """Accuracy on updated (``row`` :data:`UPDATED`) or kept answers with one ablation,
    reduced (``"max"`` or ``"min"``) over b0..b2."""
    return getattr(effects(model, task, inputs)[ablation][row], reduce)().item()


@per_model
def route(model: nn.Module, task: ListUpdateTask, inputs: Inputs):
    return default_route(model, task, inputs.of(task))


def routed(model: nn.Module, task: ListUpdateTask, inputs: Inputs, field: str) -> float:
    """The smallest, over b0..b2, of one field of the default route's measurement."""
    return getattr(route(model, task, inputs), field).min().item()


@per_model
def idx_paths(model: nn.Module, task: ListUpdateTask, inputs: Inputs) -> dict:
    """Layer 0's key and query paths for an idx change (:func:`composition_paths`)."""
    pairs = [pair for pair in patching_pairs(task, inputs.n, inputs.seed) if pair.varied == "idx"]
    return composition_paths(model, pairs)


def idx_through_qk(model: nn.Module, task: ListUpdateTask, inputs: Inputs) -> float:
    """Smallest, over b0..b2, of the share of an idx change path-patched from layer 0's output
    into layer 1's keys plus that into its queries."""
    paths = idx_paths(model, task, inputs)
    return min(paths["idx", "k", k] + paths["idx", "q", k] for k in range(len(QUERY_POS)))


@per_model
def weights(model: nn.Module, task: ListUpdateTask) -> WeightReading:
    return weight_reading(model, task)


def copies(model: nn.Module, task: ListUpdateTask, circuit: str) -> float:
    """Share of the values an OV circuit (``"ov_copies"``, ``"virtual_copies"``) maps to itself."""
    return getattr(weights(model, task), circuit)


def weights_name_the_route(model: nn.Module, task: ListUpdateTask, inputs: Inputs) -> float:
    """Share of b0..b2 where the larger of the K- and Q-composition terms read off the weights
    names the path (key or query) that carries more of an idx change under path patching."""
    reading, paths = weights(model, task), idx_paths(model, task, inputs)
    return sum((reading.k_contrast[k] > reading.q_contrast[k]) == (paths["idx", "k", k] > paths["idx", "q", k])
               for k in range(len(QUERY_POS))) / len(QUERY_POS)


ON_COMPARED = {"task": TASK, "inputs": COMPARED}
ON_ROUTE = {"task": TASK, "inputs": ROUTE_INPUTS}

CLAIMS = {LIST_UPDATE.name: (
    Claim("l1_reads_source", "layer 1 attends to the answer's source token, an updated b2 "
          "read from the second NL (smallest mean attention over b0..b2)",
          partial(attention_on_sources, **ON_COMPARED, sources=chapter_sources), 0.9, 1.0,
          all_seeds=False),
    Claim("forced_l1_attention", "layer-1 attention forced onto the source (an updated b2 "
          "from the second NL): accuracy",
          partial(forced_onto_sources, **ON_COMPARED, sources=chapter_sources), 0.999, 1.0,
          all_seeds=False),
    Claim("l1_reads_own_source", "layer 1 attends to the answer's source token, an updated "
          "b2 read where the model reads it (elt or the second NL)",
          partial(attention_on_sources, **ON_COMPARED, sources=own_sources), 0.9, 1.0),
    Claim("forced_own_source", "layer-1 attention forced onto those sources: accuracy",
          partial(forced_onto_sources, **ON_COMPARED, sources=own_sources), 0.999, 1.0),
    Claim("l1_writes_answer", "layer 1's share of the direct logit attribution "
          "(smallest over b0..b2)", partial(l1_share, **ON_COMPARED), 0.8, float("inf")),
    Claim("l0_needed_for_updates", "L0 head zero-ablated: accuracy on updated answers "
          "(largest over b0..b2)",
          partial(ablated, **ON_COMPARED, ablation="L0 head, zero-ablated", row=UPDATED, reduce="max"),
          0.0, 0.2, all_seeds=False),
    Claim("l1_needed_for_kept", "L1 head zero-ablated: accuracy on kept answers "
          "(largest over b0..b2)",
          partial(ablated, **ON_COMPARED, ablation="L1 head, zero-ablated", row=KEPT, reduce="max"),
          0.0, 0.1, all_seeds=False),
    Claim("l0_mean_needed_for_updates", "L0 head mean-ablated: accuracy on updated answers "
          "(largest over b0..b2)",
          partial(ablated, **ON_COMPARED, ablation="L0 head, mean-ablated", row=UPDATED, reduce="max"),
          0.0, 0.2),
    Claim("l1_mean_needed_for_kept", "L1 head mean-ablated: accuracy on kept answers "
          "(largest over b0..b2)",
          partial(ablated, **ON_COMPARED, ablation="L1 head, mean-ablated", row=KEPT, reduce="max"),
          0.0, 0.2),
    Claim("l0_mean_spares_kept", "L0 head mean-ablated: accuracy on kept answers (smallest "
          "over b0..b2; the mirror of the 0.2 bound for 'needed')",
          partial(ablated, **ON_COMPARED, ablation="L0 head, mean-ablated", row=KEPT, reduce="min"),
          0.8, 1.0),
    Claim("l1_default_reads_list", "with L0 mean-ablated, layer 1's attention from b_k's "
          "query onto a_k (smallest over b0..b2; uniform attention gives at most 1/8)",
          partial(routed, **ON_ROUTE, field="l1_on_list"), 0.5, 1.0),
    Claim("l1_follows_l0_idx", "L0 resampled outside a0..a2: share of kept answers right "
          "exactly when the donor's idx is not k (smallest over b0..b2; about 0.55 if "
          "unrelated)", partial(routed, **ON_ROUTE, field="follows_donor_idx"), 0.9, 1.0),
    Claim("l1_copies_l0_value", "L0 resampled at a0..a2 only: share of kept answers that "
          "are the donor's a_k (smallest over b0..b2; copying the token alone gives 1/50, "
          "the bound is 10x that)", partial(routed, **ON_ROUTE, field="donor_value"), 0.2, 1.0),
    Claim("idx_through_l0_qk", "an idx change, path-patched from layer 0's output into layer "
          "1's keys, plus the same into its queries: fraction of the logit difference "
          "recovered (smallest over b0..b2; 0 if idx reached layer 1 another way)",
          partial(idx_through_qk, task=TASK, inputs=PATH_PAIRS), 0.5, float("inf")),
    Claim("l1_ov_copies", "layer 1's OV circuit W_E W_OV W_U maps each value to itself more "
          "than to any other: share of the 50 values (chance 1/50)",
          partial(copies, task=TASK, circuit="ov_copies"), 0.9, 1.0),
    Claim("virtual_ov_copies", "the L0 → L1 virtual head's OV circuit maps each value to itself "
          "more than to any other: share of the 50 values (chance 1/50)",
          partial(copies, task=TASK, circuit="virtual_copies"), 0.9, 1.0),
    Claim("weights_name_idx_route", "b0..b2 whose larger K- or Q-composition term, read off the "
          "weights, names the path that carries more of an idx change under path patching (share; "
          "a coin gives 1/2)",
          partial(weights_name_the_route, task=TASK, inputs=PATH_PAIRS), 1.0, 1.0, all_seeds=False),
)}

# The shortformer models: the claim the shipped shortformer model breaks is restated as what
# it measures instead (the chapter compares both), and mean-ablating L1 leaves one
# shortformer seed just above the kept-answer bound; the restated circuit holds on every
# shortformer seed.
CLAIMS[LIST_UPDATE_SHORTFORMER.name] = restated(CLAIMS[LIST_UPDATE.name], {
    "l0_needed_for_updates": {
        "name": "l0_partly_needed", "low": 0.2, "high": 0.5,
        "text": "shortformer: with L0 zero-ablated some updated answers survive (largest "
                "accuracy over b0..b2)"},
    "l1_mean_needed_for_kept": {"all_seeds": False},
})

# The shortformer claims, for the models trained on the reference's per-batch data. One of
# the claims every per-row model holds breaks on batchwise seeds 1 and 2 (their token
# outweighs layer 0's output at the list in a kept answer). For this preset it is made for
# its shipped model only, and the chapter reports the break (found after the seeds were
# trained; the bound is unchanged).
BROKEN_BY_BATCHWISE = ("l1_copies_l0_value",)
CLAIMS[LIST_UPDATE_SHORTFORMER_BATCHWISE.name] = restated(
    CLAIMS[LIST_UPDATE_SHORTFORMER.name], {name: {"all_seeds": False} for name in BROKEN_BY_BATCHWISE})

# Each model's own reading as a program, causal-scrubbed (toybook.analysis.faithfulness): the
# goal, 0.95, on every seed of every preset.
for _preset in (LIST_UPDATE, LIST_UPDATE_SHORTFORMER, LIST_UPDATE_SHORTFORMER_BATCHWISE):
    CLAIMS[_preset.name] += scrubbing_claims(_preset.name, "own")
