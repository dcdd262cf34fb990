"""The majority chapter's claims: uniform attention, a histogram, an MLP that answers."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from toybook.analysis.probes import linear_fit_r2
from toybook.claims import Claim, Inputs, per_model, scrubbing_claims
from toybook.evaluation import batched_logits
from toybook.tasks.majority.attention import (
    ATTN_OUT, logit_contributions, patch_attention_output, permuted_prefixes, running_histogram,
)
from toybook.tasks.majority.hypotheses import histogram_map
from toybook.tasks.majority.mistakes import balanced_with_rare, rare_value_mistakes
from toybook.tasks.majority.neurons import (
    boundary_offsets, inhibition_asymmetry, inhibition_weights, mean_activations, minority_neurons,
    mirrored_inhibition, neuron_ablation_curve, rival_boundaries, value_neurons,
    with_inhibition_edit,
)
from toybook.tasks.majority.presets import MAJORITY
from toybook.tasks.majority.task import N_VALUES, MajorityTask

TASK = MajorityTask()
# Where the claims rank neurons (probe), test them (held out) and look for rare-value
# mistakes: inputs the chapter did not choose the claims on.
PROBE = Inputs(600, seed=7)
HELD_OUT = Inputs(200, seed=2025)
RARE = Inputs(500, seed=2026)
MAPPED = Inputs(128, seed=10_002)  # the attention's linear map is fitted on these
PATCHED = 300  # the first 300 probe inputs are shuffled and patched
VALUE_NEURONS = 10  # a value's top neurons, as the claims rank them
RARE_DRAWS = 10  # random neuron sets the rare-value mistakes are compared with
DECIDED_FROM = 16  # positions from which the claims read decisions (ties are rare before)


def uniformity(model: nn.Module, task: MajorityTask, inputs: Inputs) -> float:
    """Largest total-variation distance of the attention from uniform over the prefix."""
    n = task.n_ctx
    uniform = torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None]
    largest = 0.0
    for chunk in inputs.of(task).split(100):  # [100, H, T, T] patterns at a time: a live kernel's memory
        _, cache = model.run_with_cache(chunk, names_filter="blocks.0.attn.hook_pattern")
        distance = (cache["blocks.0.attn.hook_pattern"] - uniform).abs().sum(-1) / 2
        largest = max(largest, distance.max().item())
    return largest


def histogram_r2(model: nn.Module, task: MajorityTask, inputs: Inputs, from_position: int = 32) -> float:
    """R² of a linear fit of the attention output from the running histogram."""
    tokens = inputs.of(task)
    _, cache = model.run_with_cache(tokens, names_filter=ATTN_OUT)
    histogram = running_histogram(task, tokens)[:, from_position:].reshape(-1, N_VALUES)
    return linear_fit_r2(histogram, cache[ATTN_OUT][:, from_position:].reshape(len(histogram), -1))


def shuffled_prefix_kept(model: nn.Module, task: MajorityTask, inputs: Inputs, rows: int,
                         positions: tuple[int, ...], keep_current: bool) -> float:
    """Smallest share, over ``positions``, of predictions kept when the attention output is
    patched in from the same prefix shuffled (with the current token kept, or not)."""
    tokens = inputs.of(task)[:rows]
    base = batched_logits(model, tokens).argmax(-1)
    kept = []
    for position in positions:
        shuffled = permuted_prefixes(tokens, position, seed=position, keep_current=keep_current)
        same = patch_attention_output(model, tokens, shuffled, position)[:, position].argmax(-1)
        kept.append((same == base[:, position]).double().mean().item())
    return min(kept)


@per_model
def inhibition(model: nn.Module, task: MajorityTask, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(each value's top neurons, ranked on inputs; their inhibition weights, fitted on
    the first PATCHED of them)``."""
    tokens = inputs.of(task)
    groups = value_neurons(model, task, tokens, k=VALUE_NEURONS)
    return groups, inhibition_weights(model, task, tokens[:PATCHED], groups)


def value_neurons_matter(model: nn.Module, task: MajorityTask, chosen_on: Inputs, tested_on: Inputs) -> float:
    """Accuracy lost to mean-ablating 5 random neurons minus that lost to a value's top 5."""
    ranking = inhibition(model, task, chosen_on)[0][:, :5]
    curve = neuron_ablation_curve(model, tested_on.of(task), ranking, [5], draws=10)
    return (curve.random.mean() - curve.chosen[0]).item()


def tie_break_asymmetry(model: nn.Module, task: MajorityTask, inputs: Inputs) -> float:
    return inhibition_asymmetry(inhibition(model, task, inputs)[1])


def tie_break_flip(model: nn.Module, task: MajorityTask, chosen_on: Inputs, tested_on: Inputs) -> float:
    """Share of ties given to a larger tied value once the inhibition asymmetry is mirrored."""
    groups, weights = inhibition(model, task, chosen_on)
    tokens = tested_on.of(task)
    predicted = with_inhibition_edit(model, task, tokens, groups, mirrored_inhibition(N_VALUES),
                                     abs(inhibition_asymmetry(weights))).argmax(-1)
    counts = task.running_counts(tokens)
    tied = counts == counts.max(-1, keepdim=True).values
    larger = tied.gather(-1, predicted[..., None])[..., 0] & (predicted != task.targets(tokens))
    ties = (task.margin(tokens) == 0) & (torch.arange(task.n_ctx) >= DECIDED_FROM)
    return larger[ties].double().mean().item()


def decision_between_counts(model: nn.Module, task: MajorityTask, inputs: Inputs) -> float:
    """Share of value pairs × positions whose decision boundary lies between a one-count
    deficit and a tie."""
    pairs = [(u, v) for u in range(N_VALUES) for v in range(u + 1, N_VALUES)]
    offsets = torch.linspace(-2, 2, 81)
    heads = histogram_map(model, inputs.of(task))
    boundary = boundary_offsets(rival_boundaries(model, heads, pairs, offsets), offsets)[:, DECIDED_FROM:]
    return ((boundary > -1) & (boundary < 0)).double().mean().item()


@per_model
def rare_mistakes(model: nn.Module, task: MajorityTask, inputs: Inputs, ranked_on: Inputs):
    """:func:`rare_value_mistakes` on sequences with one rare value, the minority neurons
    ranked on ``ranked_on`` (top 5)."""
    tokens, rare = balanced_with_rare(task, inputs.n, seed=inputs.seed)
    probe = ranked_on.of(task)
    return rare_value_mistakes(model, task, tokens, rare, minority_neurons(model, task, probe, k=5),
                               mean_activations(model, probe), draws=RARE_DRAWS)


def mistakes_name_rare(model: nn.Module, task: MajorityTask, inputs: Inputs, ranked_on: Inputs) -> float:
    return rare_mistakes(model, task, inputs, ranked_on).named.double().mean().item()


def rare_neurons_fix(model: nn.Module, task: MajorityTask, inputs: Inputs, ranked_on: Inputs) -> float:
    return rare_mistakes(model, task, inputs, ranked_on).fixed.double().mean().item()


def rare_neurons_beat_random(model: nn.Module, task: MajorityTask, inputs: Inputs, ranked_on: Inputs) -> float:
    result = rare_mistakes(model, task, inputs, ranked_on)
    return result.fixed.double().mean().item() - result.random.max().item()


def mlp_share(model: nn.Module, task: MajorityTask, inputs: Inputs, rows: int = 100) -> float:
    """The MLP's smallest share of the direct logit attribution over positions ≥ 16."""
    names, contributions = logit_contributions(model, task, inputs.of(task)[:rows])
    mean = contributions.mean(0)[:, DECIDED_FROM:]
    return (mean[names.index("blocks.0.hook_mlp_out")] / mean.sum(0)).min().item()


ON_PROBE = {"task": TASK, "inputs": PROBE}
CHOSEN_AND_TESTED = {"task": TASK, "chosen_on": PROBE, "tested_on": HELD_OUT}
RARE_ON_PROBE = {"task": TASK, "inputs": RARE, "ranked_on": PROBE}

CLAIMS = {MAJORITY.name: (
    Claim("uniform_attention", "attention is uniform over the prefix (largest total "
          "variation distance from uniform)", partial(uniformity, **ON_PROBE), 0.0, 0.1),
    Claim("linear_in_histogram", "the attention output is linear in the running "
          "histogram (R², positions ≥ 32)", partial(histogram_r2, **ON_PROBE), 0.98, 1.0),
    Claim("order_irrelevant", "patching in the attention output of a shuffled prefix "
          "keeps the prediction (fraction kept)",
          partial(shuffled_prefix_kept, **ON_PROBE, rows=PATCHED, positions=(127,), keep_current=False),
          0.95, 1.0),
    Claim("order_irrelevant_given_token", "with the token at the position kept, a shuffled "
          "prefix's attention output keeps every prediction but at most 1 in 100 (fraction "
          "kept, positions 63 and 127; the full shuffle's flips are all at a changed token)",
          partial(shuffled_prefix_kept, **ON_PROBE, rows=PATCHED, positions=(63, 127), keep_current=True),
          0.99, 1.0),
    Claim("value_neurons_matter", "mean-ablating a value's top 5 neurons (chosen on other "
          "inputs) costs accuracy where it leads, more than 5 random neurons do, by at least "
          "one over the number of values (accuracy difference)",
          partial(value_neurons_matter, **CHOSEN_AND_TESTED), 0.1, 1.0),
    Claim("decision_between_counts", "fed synthetic histograms through the attention's "
          "linear map, the MLP switches between two rivals between a one-count deficit and "
          "a tie of the smaller one (share of pairs × positions ≥ 16; a boundary at the "
          "tie itself, with no tie-break, would give about half)",
          partial(decision_between_counts, task=TASK, inputs=MAPPED), 0.95, 1.0, all_seeds=False),
    Claim("tie_break_asymmetry", "a value's top 10 neurons are inhibited more by smaller "
          "values than by larger ones (mean fitted weight from smaller minus from larger; "
          "0 = symmetric)", partial(tie_break_asymmetry, **ON_PROBE), float("-inf"), 0.0),
    Claim("tie_break_flip", "reversing that asymmetry (an edit of its own size) gives "
          "at least half of the ties to a larger tied value (a coin flip's share)",
          partial(tie_break_flip, **CHOSEN_AND_TESTED), 0.5, 1.0, all_seeds=False),
    Claim("mistakes_name_rare", "on sequences where nine values are balanced and the "
          "tenth is rare, the model's mistakes name the rare value (share of its mistakes at "
          "positions ≥ 16; a wrong answer drawn from the nine other values would name it "
          "1 time in 9); at least half", partial(mistakes_name_rare, **RARE_ON_PROBE), 0.5, 1.0),
    Claim("rare_neurons_fix", "mean-ablating the rare value's top 5 minority neurons (chosen "
          "on uniform sequences) corrects at least half of those mistakes (share corrected)",
          partial(rare_neurons_fix, **RARE_ON_PROBE), 0.5, 1.0),
    Claim("rare_neurons_beat_random", "and more of them than 5 random neurons do in each of "
          "10 draws (share corrected minus the best draw's)",
          partial(rare_neurons_beat_random, **RARE_ON_PROBE), 0.0, 1.0),
    Claim("mlp_writes_answer", "the MLP's share of the direct logit attribution "
          "(smallest over positions ≥ 16)", partial(mlp_share, **ON_PROBE), 0.9, float("inf")),
)}

# The reading as a program, causal-scrubbed (toybook.analysis.faithfulness): attention as the
# counts so far, the MLP as its value and minority neurons.
CLAIMS[MAJORITY.name] += scrubbing_claims(MAJORITY.name, "counts_and_vote")
