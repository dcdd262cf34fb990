"""The list-update chapter's claims: where layer 1 reads, what forcing it does, what each
layer is needed for, the default route and the paths through layer 0; the shortformer and
batchwise models' variants."""

from __future__ import annotations

import dataclasses

import torch

from toybook.claims import Claim, accuracy
from toybook.tasks.list_update.presets import (
    LIST_UPDATE, LIST_UPDATE_SHORTFORMER, LIST_UPDATE_SHORTFORMER_BATCHWISE,
)
from toybook.tasks.list_update.task import ListUpdateTask


# The default-route and path claims were written after the chapter's measurements; they are
# measured on other inputs than those (the chapter's are in toybook.tasks.list_update.record).
ROUTE_INPUTS = {"n": 2000, "seed": 7}
PATH_PAIRS = {"n": 200, "seed": 17}


def list_update_claims() -> tuple[Claim, ...]:
    from toybook.analysis.attribution import answer_logit_attribution
    from toybook.analysis.interventions import run_with_hard_attention
    from toybook.tasks.list_update.analysis import (
        QUERY_POS, ablation_effects, composition_paths, default_route, hypothesised_sources,
        own_sources, patching_pairs,
    )

    from toybook.analysis.faithfulness import faithfulness_claim
    from toybook.tasks.list_update.hypotheses import READING, WITH_LIST, measured_own_circuit

    task = ListUpdateTask()
    inputs = task.generate(2000, seed=99)
    sources = hypothesised_sources(inputs)

    def on_sources(sources_of):
        def measure(model):
            _, cache = model.run_with_cache(inputs, names_filter="blocks.1.attn.hook_pattern")
            pattern, chosen = cache["blocks.1.attn.hook_pattern"][:, 0], sources_of(model)
            rows = torch.arange(len(inputs))
            on = torch.stack([pattern[rows, q, chosen[:, k]] for k, q in enumerate(QUERY_POS)], 1)
            return on.mean(0).min().item()
        return measure

    def forced(sources_of):
        return lambda m: accuracy(task, run_with_hard_attention(
            m, inputs, QUERY_POS, sources_of(m), layer=1), inputs)

    def l1_share(model):
        _, attribution = answer_logit_attribution(model, task, inputs)
        mean = attribution.mean(0)
        return (mean[3] / mean.sum(0)).min().item()

    def ablated(component, row, reduce):
        def measure(model):
            effects = per_model("effects", model, lambda: ablation_effects(model, task, inputs))
            effect = effects[component][row]
            return getattr(effect, reduce)().item()
        return measure

    route_inputs = task.generate(ROUTE_INPUTS["n"], seed=ROUTE_INPUTS["seed"])
    last: dict[str, tuple] = {}

    def per_model(key, model, compute):
        """``compute()`` once for consecutive claims on the same model."""
        if key not in last or last[key][0] is not model:
            last[key] = (model, compute())
        return last[key][1]

    def route(field):
        def measure(model):
            measured = per_model("route", model, lambda: default_route(model, task, route_inputs))
            return getattr(measured, field).min().item()
        return measure

    path_pairs = [pair for pair in patching_pairs(task, **PATH_PAIRS) if pair.varied == "idx"]

    def idx_through_qk(model):
        paths = composition_paths(model, path_pairs)
        return min(paths["idx", "k", k] + paths["idx", "q", k] for k in range(3))

    def own_recovered(model):
        return measured_own_circuit(model, task).measure(model, task, n_random=0).recovered

    def chapter(_):
        return sources

    def own(model):
        return own_sources(model, inputs)

    return (
        Claim("l1_reads_source", "layer 1 attends to the answer's source token, an updated b2 "
              "read from the second NL (smallest mean attention over b0..b2)",
              on_sources(chapter), 0.9, 1.0, all_seeds=False),
        Claim("forced_l1_attention", "layer-1 attention forced onto the source (an updated b2 "
              "from the second NL): accuracy", forced(chapter), 0.999, 1.0, all_seeds=False),
        Claim("l1_reads_own_source", "layer 1 attends to the answer's source token, an updated "
              "b2 read where the model reads it (elt or the second NL)", on_sources(own), 0.9, 1.0),
        Claim("forced_own_source", "layer-1 attention forced onto those sources: accuracy",
              forced(own), 0.999, 1.0),
        Claim("l1_writes_answer", "layer 1's share of the direct logit attribution "
              "(smallest over b0..b2)", l1_share, 0.8, float("inf")),
        Claim("l0_needed_for_updates", "L0 head zero-ablated: accuracy on updated answers "
              "(largest over b0..b2)", ablated("L0 head, zero-ablated", 0, "max"), 0.0, 0.2,
              all_seeds=False),
        Claim("l1_needed_for_kept", "L1 head zero-ablated: accuracy on kept answers "
              "(largest over b0..b2)", ablated("L1 head, zero-ablated", 1, "max"), 0.0, 0.1,
              all_seeds=False),
        Claim("l0_mean_needed_for_updates", "L0 head mean-ablated: accuracy on updated answers "
              "(largest over b0..b2)", ablated("L0 head, mean-ablated", 0, "max"), 0.0, 0.2),
        Claim("l1_mean_needed_for_kept", "L1 head mean-ablated: accuracy on kept answers "
              "(largest over b0..b2)", ablated("L1 head, mean-ablated", 1, "max"), 0.0, 0.2),
        Claim("l0_mean_spares_kept", "L0 head mean-ablated: accuracy on kept answers (smallest "
              "over b0..b2; the mirror of the 0.2 bound for 'needed')",
              ablated("L0 head, mean-ablated", 1, "min"), 0.8, 1.0),
        Claim("l1_default_reads_list", "with L0 mean-ablated, layer 1's attention from b_k's "
              "query onto a_k (smallest over b0..b2; uniform attention gives at most 1/8)",
              route("l1_on_list"), 0.5, 1.0),
        Claim("l1_follows_l0_idx", "L0 resampled outside a0..a2: share of kept answers right "
              "exactly when the donor's idx is not k (smallest over b0..b2; about 0.55 if "
              "unrelated)", route("follows_donor_idx"), 0.9, 1.0),
        Claim("l1_copies_l0_value", "L0 resampled at a0..a2 only: share of kept answers that "
              "are the donor's a_k (smallest over b0..b2; copying the token alone gives 1/50, "
              "the bound is 10x that)", route("donor_value"), 0.2, 1.0),
        Claim("idx_through_l0_qk", "an idx change, path-patched from layer 0's output into layer "
              "1's keys, plus the same into its queries: fraction of the logit difference "
              "recovered (smallest over b0..b2; 0 if idx reached layer 1 another way)",
              idx_through_qk, 0.5, float("inf")),
        faithfulness_claim(READING, task, low=float("-inf"), high=0.95),  # falls short
        faithfulness_claim(WITH_LIST, task, all_seeds=False),  # s1 also needs L0 at 8
        Claim("loss_recovered_own", "each model's own reading (L0 where its route and its "
              "query paths say, L1 at the queries): fraction of loss recovered on held-out "
              "inputs (0.95, the book's goal)", own_recovered, 0.95, float("inf")),
    )


def list_update_shortformer_claims() -> tuple[Claim, ...]:
    """The list-update claims for the shortformer models: the one the shipped shortformer
    model breaks is restated as what it measures instead (the chapter compares both), and
    mean-ablating L1 leaves one shortformer seed just above the kept-answer bound; the
    restated circuit holds on every shortformer seed."""
    claims = []
    for claim in list_update_claims():
        if claim.name == "l0_needed_for_updates":
            claim = dataclasses.replace(
                claim, name="l0_partly_needed", low=0.2, high=0.5,
                text="shortformer: with L0 zero-ablated some updated answers survive (largest "
                     "accuracy over b0..b2)")
        elif claim.name == "l1_mean_needed_for_kept":
            claim = dataclasses.replace(claim, all_seeds=False)
        elif claim.name == "loss_recovered_with_list":
            claim = dataclasses.replace(claim, all_seeds=True)
        claims.append(claim)
    return tuple(claims)


BROKEN_BY_BATCHWISE = ("l1_copies_l0_value", "loss_recovered_reading")


def list_update_batchwise_claims() -> tuple[Claim, ...]:
    """The shortformer claims, for the models trained on the reference's per-batch data.
    Two of the claims every per-row model holds break on batchwise seeds 1 and 2 (their
    token outweighs layer 0's output at the list in a kept answer, so the stated reading,
    without layer 0 at the list, is complete for them). For this preset they are made for
    its shipped model only, and the chapter reports the break (found after the seeds were
    trained; the bounds are unchanged)."""
    return tuple(dataclasses.replace(claim, all_seeds=False) if claim.name in BROKEN_BY_BATCHWISE
                 else claim for claim in list_update_shortformer_claims())


CLAIMS = {LIST_UPDATE.name: list_update_claims,
          LIST_UPDATE_SHORTFORMER.name: list_update_shortformer_claims,
          LIST_UPDATE_SHORTFORMER_BATCHWISE.name: list_update_batchwise_claims}
