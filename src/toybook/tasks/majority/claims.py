"""The majority chapter's claims: uniform attention, a histogram, an MLP that answers."""

from __future__ import annotations

import torch

from toybook.claims import Claim
from toybook.tasks.majority.presets import MAJORITY
from toybook.tasks.majority.task import MajorityTask

# Where the claims rank neurons (probe), test them (held out) and look for rare-value
# mistakes: inputs the chapter did not choose the claims on.
PROBE_INPUTS = {"n": 600, "seed": 7}
HELD_OUT_INPUTS = {"n": 200, "seed": 2025}
RARE_INPUTS = {"n": 500, "seed": 2026}
VALUE_NEURONS = 10  # a value's top neurons, as the claims rank them
RARE_DRAWS = 10  # random neuron sets the rare-value mistakes are compared with


def majority_claims() -> tuple[Claim, ...]:
    from toybook.tasks.majority.analysis import (
        ATTN_OUT, batched_logits, linear_fit_r2, patch_attention_output, permuted_prefixes,
        running_histogram,
    )

    from toybook.analysis.faithfulness import faithfulness_claim
    from toybook.tasks.majority.hypotheses import ALGORITHM, READING

    task = MajorityTask()
    probe = task.generate(PROBE_INPUTS["n"], seed=PROBE_INPUTS["seed"])
    held_out = task.generate(HELD_OUT_INPUTS["n"], seed=HELD_OUT_INPUTS["seed"])

    def uniformity(model):
        n = task.n_ctx
        uniform = torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None]
        largest = 0.0
        for chunk in probe.split(100):  # [100, H, T, T] patterns at a time: a live kernel's memory
            _, cache = model.run_with_cache(chunk, names_filter="blocks.0.attn.hook_pattern")
            distance = (cache["blocks.0.attn.hook_pattern"] - uniform).abs().sum(-1) / 2
            largest = max(largest, distance.max().item())
        return largest

    def histogram_r2(model):
        _, cache = model.run_with_cache(probe, names_filter=ATTN_OUT)
        histogram = running_histogram(task, probe)[:, 32:].reshape(-1, 10)
        return linear_fit_r2(histogram, cache[ATTN_OUT][:, 32:].reshape(len(histogram), -1))

    def same_histogram_kept(model):
        tokens, position = probe[:300], 127
        base = batched_logits(model, tokens)[:, position].argmax(-1)
        shuffled = permuted_prefixes(tokens, position, seed=position)
        same = patch_attention_output(model, tokens, shuffled, position)[:, position].argmax(-1)
        return (same == base).double().mean().item()

    def same_histogram_same_token_kept(model):
        tokens, kept = probe[:300], []
        base = batched_logits(model, tokens).argmax(-1)
        for position in (63, 127):
            shuffled = permuted_prefixes(tokens, position, seed=position, keep_current=True)
            same = patch_attention_output(model, tokens, shuffled, position)[:, position].argmax(-1)
            kept.append((same == base[:, position]).double().mean().item())
        return min(kept)

    last: dict = {}  # the last model's neurons and weights, shared by the claims below

    def inhibition(model):
        """``(top 10 neurons per value, chosen on probe; their inhibition weights)``."""
        from toybook.tasks.majority.analysis import inhibition_weights, value_neurons

        if last.get("model") is not model:
            groups = value_neurons(model, task, probe, k=VALUE_NEURONS)
            last.update(model=model, result=(groups, inhibition_weights(model, task, probe[:300], groups)))
        return last["result"]

    def value_neurons_matter(model):
        from toybook.tasks.majority.analysis import neuron_ablation_curve

        ranking = inhibition(model)[0][:, :5]  # chosen on probe, tested on held_out
        curve = neuron_ablation_curve(model, held_out, ranking, [5], draws=10)
        return (curve.random.mean() - curve.chosen[0]).item()

    def tie_break_asymmetry(model):
        from toybook.tasks.majority.analysis import inhibition_asymmetry

        return inhibition_asymmetry(inhibition(model)[1])

    def tie_break_flip(model):
        from toybook.tasks.majority.analysis import (
            inhibition_asymmetry, mirrored_inhibition, with_inhibition_edit,
        )

        groups, weights = inhibition(model)
        predicted = with_inhibition_edit(model, task, held_out, groups, mirrored_inhibition(10),
                                         abs(inhibition_asymmetry(weights))).argmax(-1)
        counts = task.running_counts(held_out)
        tied = counts == counts.max(-1, keepdim=True).values
        larger = tied.gather(-1, predicted[..., None])[..., 0] & (predicted != task.targets(held_out))
        ties = (task.margin(held_out) == 0) & (torch.arange(task.n_ctx) >= 16)
        return larger[ties].double().mean().item()

    def decision_between_counts(model):
        from toybook.tasks.majority.analysis import boundary_offsets, rival_boundaries
        from toybook.tasks.majority.hypotheses import histogram_map

        pairs = [(u, v) for u in range(10) for v in range(u + 1, 10)]
        offsets = torch.linspace(-2, 2, 81)
        heads = histogram_map(model, task.generate(128, seed=10_002))
        boundary = boundary_offsets(rival_boundaries(model, heads, pairs, offsets), offsets)[:, 16:]
        return ((boundary > -1) & (boundary < 0)).double().mean().item()

    rare_last: dict = {}  # the last model's mistakes on sequences with a rare value

    def rare_mistakes(model):
        """:func:`rare_value_mistakes` on :data:`RARE_INPUTS` (sequences with one rare value),
        the minority neurons ranked on probe (top 5), for the last model asked about."""
        from toybook.tasks.majority.analysis import (
            balanced_with_rare, mean_activations, minority_neurons, rare_value_mistakes,
        )

        if rare_last.get("model") is not model:
            tokens, rare = balanced_with_rare(task, RARE_INPUTS["n"], seed=RARE_INPUTS["seed"])
            result = rare_value_mistakes(model, task, tokens, rare, minority_neurons(model, task, probe, k=5),
                                         mean_activations(model, probe), draws=RARE_DRAWS)
            rare_last.update(model=model, result=result)
        return rare_last["result"]

    def mistakes_name_rare(model):
        return rare_mistakes(model).named.double().mean().item()

    def rare_neurons_fix(model):
        return rare_mistakes(model).fixed.double().mean().item()

    def rare_neurons_beat_random(model):
        result = rare_mistakes(model)
        return result.fixed.double().mean().item() - result.random.max().item()

    def mlp_share(model):
        from toybook.tasks.majority.analysis import logit_contributions

        names, contributions = logit_contributions(model, task, probe[:100])
        mean = contributions.mean(0)[:, 16:]
        return (mean[names.index("blocks.0.hook_mlp_out")] / mean.sum(0)).min().item()

    return (
        Claim("uniform_attention", "attention is uniform over the prefix (largest total "
              "variation distance from uniform)", uniformity, 0.0, 0.1),
        Claim("linear_in_histogram", "the attention output is linear in the running "
              "histogram (R², positions ≥ 32)", histogram_r2, 0.98, 1.0),
        Claim("order_irrelevant", "patching in the attention output of a shuffled prefix "
              "keeps the prediction (fraction kept)", same_histogram_kept, 0.95, 1.0),
        Claim("order_irrelevant_given_token", "with the token at the position kept, a shuffled "
              "prefix's attention output keeps every prediction but at most 1 in 100 (fraction "
              "kept, positions 63 and 127; the full shuffle's flips are all at a changed token)",
              same_histogram_same_token_kept, 0.99, 1.0),
        Claim("value_neurons_matter", "mean-ablating a value's top 5 neurons (chosen on other "
              "inputs) costs accuracy where it leads, more than 5 random neurons do, by at least "
              "one over the number of values (accuracy difference)",
              value_neurons_matter, 0.1, 1.0),
        Claim("decision_between_counts", "fed synthetic histograms through the attention's "
              "linear map, the MLP switches between two rivals between a one-count deficit and "
              "a tie of the smaller one (share of pairs × positions ≥ 16; a boundary at the "
              "tie itself, with no tie-break, would give about half)",
              decision_between_counts, 0.95, 1.0, all_seeds=False),
        Claim("tie_break_asymmetry", "a value's top 10 neurons are inhibited more by smaller "
              "values than by larger ones (mean fitted weight from smaller minus from larger; "
              "0 = symmetric)", tie_break_asymmetry, float("-inf"), 0.0),
        Claim("tie_break_flip", "reversing that asymmetry (an edit of its own size) gives "
              "at least half of the ties to a larger tied value (a coin flip's share)",
              tie_break_flip, 0.5, 1.0, all_seeds=False),
        Claim("mistakes_name_rare", "on sequences where nine values are balanced and the "
              "tenth is rare, the model's mistakes name the rare value (share of its mistakes at "
              "positions ≥ 16; a wrong answer drawn from the nine other values would name it "
              "1 time in 9); at least half", mistakes_name_rare, 0.5, 1.0),
        Claim("rare_neurons_fix", "mean-ablating the rare value's top 5 minority neurons (chosen "
              "on uniform sequences) corrects at least half of those mistakes (share corrected)",
              rare_neurons_fix, 0.5, 1.0),
        Claim("rare_neurons_beat_random", "and more of them than 5 random neurons do in each of "
              "10 draws (share corrected minus the best draw's)", rare_neurons_beat_random,
              0.0, 1.0),
        Claim("mlp_writes_answer", "the MLP's share of the direct logit attribution "
              "(smallest over positions ≥ 16)", mlp_share, 0.9, float("inf")),
        faithfulness_claim(READING, task),
        faithfulness_claim(ALGORITHM, task),
    )


CLAIMS = {MAJORITY.name: majority_claims}
