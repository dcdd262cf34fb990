"""The majority chapter's claims, asserted on the shipped checkpoint.

R² threshold: the chapter's claim is that the attention output is a linear function of
the running histogram. From position 32 on the shipped model measures about 0.995 on
held-out sequences; what the histogram cannot explain is the positional term, which
shrinks like 1/position. 0.98 leaves room for sampling noise but fails a model whose
attention output depends on token order or on anything but the counts (an order-
sensitive head, or attention concentrated on a few tokens, gives far lower values).
"""

import pytest
import torch

import toybook
from toybook.analysis.interventions import with_uniform_attention
from toybook.analysis.probes import linear_fit_r2
from toybook.evaluation import batched_logits
from toybook.tasks.majority.attention import (
    ATTN_OUT, logit_contributions, patch_attention_output, permuted_prefixes, running_histogram,
    tie_contributions,
)
from toybook.tasks.majority.mistakes import (
    balanced_with_rare, majority_accuracy, mistaken_sequences, positions_by_tie_size,
    recorded_mistakes, tie_size, what_answers_name,
)
from toybook.tasks.majority.neurons import (
    inhibition_asymmetry, inhibition_weights, linear_vote, logits_from_neurons,
    mean_ablated_answers, mean_activations, minority_neurons, mirrored_inhibition, mlp_readout,
    neuron_ablation_curve, neuron_ablation_table, neurons_at, random_neurons, ranked_neurons,
    scaled_neuron_answers, value_neurons, with_inhibition_edit,
)
from toybook.claims import claims_for
from toybook.evaluation import fresh_inputs

TASK = toybook.get_task("majority")


@pytest.fixture(scope="module")
def model():
    return toybook.load_model("majority")


@pytest.fixture(scope="module")
def probe():
    return TASK.generate(600, seed=7)


def test_accuracy_targets_on_a_seeded_sample(model):
    result = majority_accuracy(model, TASK, n=6_000, seed=31)
    assert result.tie_n > 700  # about 18% of uniform sequences tie at the last position
    assert result.last_acc >= 0.999
    assert result.tie_acc >= 0.995


def test_recorded_accuracy_meets_the_targets(model):
    recorded = toybook.load_shipped("majority").metadata["evaluations"]["uniform_100000_seed12345"]
    assert recorded["n"] == 100_000 and len(recorded["acc_per_position"]) == TASK.n_ctx
    assert recorded["last_acc"] >= 0.999 and recorded["tie_acc"] >= 0.995
    assert sum(n for n, _ in recorded["by_margin_last"].values()) == 100_000


def test_majority_accuracy_counts_by_hand():
    """Against a model-free predictor that is right except at ties, where it picks the
    largest tied value: tie accuracy is then 0 and everything else 1."""

    class WrongOnTies(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, tokens):
            counts = TASK.running_counts(tokens).double()
            largest_tied = (counts + torch.arange(10) * 1e-3).argmax(-1)  # ties → largest value
            return torch.nn.functional.one_hot(largest_tied, 10).float()

    result = majority_accuracy(WrongOnTies(), TASK, n=500, seed=2, batch_size=128)
    assert result.tie_acc == 0 and result.by_margin_last.get("0", [0, 0])[1] == 0
    assert all(right == n for m, (n, right) in result.by_margin_all.items() if m != "0")
    assert result.last_wrong == result.tie_n


def test_attention_is_uniform(model, probe):
    _, cache = model.run_with_cache(probe, names_filter="blocks.0.attn.hook_pattern")
    patterns = cache["blocks.0.attn.hook_pattern"]
    uniform = torch.tril(torch.ones(TASK.n_ctx, TASK.n_ctx)) / torch.arange(1, TASK.n_ctx + 1)[:, None]
    assert ((patterns - uniform).abs().sum(-1) / 2).max() < 0.1


def test_attention_output_is_linear_in_the_histogram(model, probe):
    _, cache = model.run_with_cache(probe, names_filter=ATTN_OUT)
    histogram = running_histogram(TASK, probe)[:, 32:].reshape(-1, 10)
    output = cache[ATTN_OUT][:, 32:].reshape(-1, cache[ATTN_OUT].shape[-1])
    assert linear_fit_r2(histogram, output) > 0.98
    assert linear_fit_r2(output, histogram) > 0.99
    # a control: a random feature explains nothing
    assert linear_fit_r2(torch.rand(len(output), 10, generator=torch.Generator().manual_seed(0)), output) < 0.05


def test_same_histogram_patch_keeps_the_prediction(model, probe):
    tokens = probe[:300]
    base = batched_logits(model, tokens).argmax(-1)
    unrelated = TASK.generate(len(tokens), seed=99)
    for position in (31, 127):
        shuffled = permuted_prefixes(tokens, position, seed=position)
        assert torch.equal(running_histogram(TASK, shuffled)[:, position], running_histogram(TASK, tokens)[:, position])
        same = patch_attention_output(model, tokens, shuffled, position)[:, position].argmax(-1)
        other = patch_attention_output(model, tokens, unrelated, position)[:, position].argmax(-1)
        assert (same == base[:, position]).double().mean() > 0.95
        assert (other == base[:, position]).double().mean() < 0.3


def test_contributions_add_up_and_the_mlp_writes_the_answer(model, probe):
    tokens = probe[:100]
    names, contributions = logit_contributions(model, TASK, tokens)
    logits = model(tokens)
    reference = logits.gather(-1, TASK.targets(tokens)[..., None])[..., 0] - logits.mean(-1)
    assert torch.allclose(contributions.sum(1), reference, atol=1e-3)
    mean = contributions.mean(0)[:, 16:]
    assert bool((mean[names.index("blocks.0.hook_mlp_out")] > 0.9 * mean.sum(0)).all())


def test_value_neurons_are_value_specific(model, probe):
    neurons = value_neurons(model, TASK, probe, k=5)
    assert neurons.shape == (10, 5) and neurons.unique().numel() == 50
    table = neuron_ablation_table(model, TASK, probe[:300], neurons)
    off_diagonal = table[~torch.eye(10, dtype=torch.bool)]
    assert table.diagonal().max() < 0.8  # that value's positions break...
    assert off_diagonal.min() > 0.97  # ...the other values' do not


@pytest.fixture(scope="module")
def held_out():
    """Where the neuron and tie tests run: disjoint from ``probe``, where neurons are chosen."""
    return TASK.generate(200, seed=2025)


def test_shuffling_all_but_the_current_token_keeps_every_prediction(model, probe):
    """The flips of a same-histogram patch are close calls where the shuffle moved another
    token to position i; keeping that token, none flips."""
    tokens = probe[:300]
    base = batched_logits(model, tokens).argmax(-1)
    margins = TASK.margin(tokens)
    n_flips = 0
    for position in (63, 127):
        kept = permuted_prefixes(tokens, position, seed=position, keep_current=True)
        assert torch.equal(kept[:, position], tokens[:, position])
        assert torch.equal(running_histogram(TASK, kept)[:, position], running_histogram(TASK, tokens)[:, position])
        assert not torch.equal(kept[:, :position], tokens[:, :position])
        same_token = patch_attention_output(model, tokens, kept, position)[:, position].argmax(-1)
        assert (same_token == base[:, position]).double().mean() >= 0.99
        shuffled = permuted_prefixes(tokens, position, seed=position)
        flipped = patch_attention_output(model, tokens, shuffled, position)[:, position].argmax(-1) != base[:, position]
        n_flips += int(flipped.sum())
        assert bool((margins[flipped, position] <= 1).all())
        assert bool((shuffled[flipped, position] != tokens[flipped, position]).all())
    assert n_flips > 0  # the full shuffle does flip some: the comparison means something


def test_the_readout_reproduces_the_model(model, held_out):
    readout = mlp_readout(model, held_out[:50])
    logits = logits_from_neurons(model, readout["resid_mid"], readout["neurons"])
    expected = model(held_out[:50])[:, 16:].flatten(0, 1)
    assert torch.allclose(logits, expected, atol=1e-3)
    assert torch.equal(logits.argmax(-1), expected.argmax(-1))


def test_the_readout_table_matches_a_hooked_forward_pass(model, probe, held_out):
    """The shortcut (neurons edited after the fact) against the model run with the edit."""
    from toybook.analysis.ablation import overwrite_hook
    from toybook.tasks.majority.neurons import NEURONS

    neurons = value_neurons(model, TASK, probe, k=5)
    tokens = held_out[:100]
    table = neuron_ablation_table(model, TASK, tokens, neurons[:1])
    mean = mlp_readout(model, tokens)["neurons"].mean(0)
    logits = model.run_with_hooks(tokens, fwd_hooks=[(NEURONS, overwrite_hook((..., neurons[0]), mean[neurons[0]]))])
    right = (logits.argmax(-1) == TASK.targets(tokens))[:, 16:]
    majority = TASK.targets(tokens)[:, 16:]
    for u in range(10):
        assert abs(table[0, u].item() - right[majority == u].double().mean().item()) < 0.01


def test_top_neurons_matter_and_random_ones_do_not(model, probe, held_out):
    ranking = value_neurons(model, TASK, probe, k=20)
    curve = neuron_ablation_curve(model, held_out, ranking, [1, 5, 20], draws=10)
    assert curve.random.shape == (3, 10)
    assert curve.chosen[1] < 0.8 and curve.chosen[2] <= curve.chosen[0]
    assert curve.random.min() > 0.97  # random neurons of the same number cost almost nothing


def test_ties_go_to_the_smaller_value_through_the_mlp(model, held_out):
    names, parts = tie_contributions(model, TASK, held_out)
    logits = model(held_out)
    counts = TASK.running_counts(held_out)
    tied = counts == counts.max(-1, keepdim=True).values
    rows = tied.sum(-1) == 2
    rows[:, :16] = False
    smaller = torch.where(tied, torch.arange(10), 10).min(-1).values[rows]
    larger = torch.where(tied, torch.arange(10), -1).max(-1).values[rows]
    own = logits[rows].gather(-1, smaller[:, None])[:, 0] - logits[rows].gather(-1, larger[:, None])[:, 0]
    assert torch.allclose(parts.sum(1), own, atol=1e-3)  # the parts add up to the model's lead
    mean = parts.mean(0)
    mlp = mean[names.index("blocks.0.hook_mlp_out")]
    assert mlp > 0.9 * parts.sum(1).mean() and (mean.abs() < 0.5).sum() == 4
    uniform = with_uniform_attention(model, held_out).argmax(-1) == TASK.targets(held_out)
    ties = (TASK.margin(held_out) == 0) & (torch.arange(TASK.n_ctx) >= 16)
    assert uniform[ties].double().mean() > 0.9  # a coin flip between two tied values: 0.5


def test_smaller_values_inhibit_more_and_reversing_that_flips_ties(model, probe, held_out):
    groups = value_neurons(model, TASK, probe, k=10)
    weights = inhibition_weights(model, TASK, probe[:300], groups)
    assert weights.diagonal().min() > 10 and weights[~torch.eye(10, dtype=torch.bool)].max() < 2
    asymmetry = inhibition_asymmetry(weights)
    assert asymmetry < 0
    counts = TASK.running_counts(held_out)
    tied = counts == counts.max(-1, keepdim=True).values
    ties = (TASK.margin(held_out) == 0) & (torch.arange(TASK.n_ctx) >= 16)

    def to_a_larger_value(signs):
        predicted = with_inhibition_edit(model, TASK, held_out, groups, signs, abs(asymmetry)).argmax(-1)
        larger = tied.gather(-1, predicted[..., None])[..., 0] & (predicted != TASK.targets(held_out))
        return larger[ties].double().mean().item()
    assert to_a_larger_value(torch.zeros(10, 10)) == 0  # no edit: every tie to the smaller value
    assert to_a_larger_value(mirrored_inhibition(10)) >= 0.5
    signs = (torch.randint(0, 2, (10, 10), generator=torch.Generator().manual_seed(0)) * 2 - 1).float()
    assert to_a_larger_value(signs * ~torch.eye(10, dtype=torch.bool)) < 0.3  # the control


def test_the_linear_vote_by_hand():
    """Three values; 0 and 2 tie with 1 between: the tie goes to 0 when smaller values inhibit
    more, to 2 when larger ones do; a lead of one count wins either way when gain dominates."""
    histogram = torch.tensor([[0.3, 0.1, 0.3], [0.3, 0.1, 0.4]]) / 1.0
    assert linear_vote(histogram, 30.0, -4.0, -3.0).tolist() == [0, 2]
    assert linear_vote(histogram, 30.0, -3.0, -4.0).tolist() == [2, 2]


def test_the_recorded_mistakes_regenerate(model):
    recorded = toybook.load_shipped("majority").metadata["evaluations"]["uniform_100000_seed12345"]
    tokens, positions = mistaken_sequences(TASK, recorded)
    assert len(tokens) == len(recorded["wrong_at"]) == sum(n - right for n, right in recorded["by_margin_all"].values())
    rows = torch.arange(len(tokens))
    assert bool((TASK.margin(tokens)[rows, positions] <= 1).all())  # every mistake a close call
    wrong_again = model(tokens).argmax(-1)[rows, positions] != TASK.targets(tokens)[rows, positions]
    assert wrong_again.double().mean() > 0.5  # near-ties: another CPU may round a few the other way


def test_the_reduced_vote_gives_the_model_s_answer_at_held_out_ties(model):
    """The chapter's reduced model: three numbers averaged from the inhibition weights of each
    value's top 10 neurons, all chosen on the chapter's probe; tested on its held-out
    sequences. The goal, set by the issue before the model was built: 99% of held-out ties.
    With the asymmetry reversed (the same three numbers, two swapped) it fails. The three
    numbers move with the neurons counted as a value's: ranked on the claims' 600 probe
    sequences instead of these 1,000, the vote agrees at 98.3% of these ties."""
    probe = TASK.generate(1_000, seed=7)
    groups = value_neurons(model, TASK, probe, k=20)[:, :10]
    weights = inhibition_weights(model, TASK, probe[:300], groups)
    below = torch.tril(torch.ones(10, 10, dtype=torch.bool), -1)
    gain, from_smaller, from_larger = (weights.diagonal().mean().item(), weights[below].mean().item(),
                                       weights[below.T].mean().item())
    held = TASK.generate(300, seed=2025)
    histogram, answers = running_histogram(TASK, held), batched_logits(model, held).argmax(-1)
    ties = (TASK.margin(held) == 0) & (torch.arange(TASK.n_ctx) >= 16)
    assert ties.sum() > 5000
    assert (linear_vote(histogram, gain, from_smaller, from_larger) == answers)[ties].double().mean() >= 0.99
    assert (linear_vote(histogram, gain, from_larger, from_smaller) == answers)[ties].double().mean() < 0.5


def test_tie_sizes_of_a_recorded_measurement_count_every_position():
    record = {"seed": 77, "n": 45}
    tokens = fresh_inputs(TASK, 77)(0, 45)
    expected = torch.bincount(tie_size(TASK.running_counts(tokens)).flatten(), minlength=11)
    assert positions_by_tie_size(TASK, record, chunk=20).tolist() == expected.tolist()
    assert int(expected.sum()) == 45 * TASK.n_ctx and tie_size(torch.tensor([[3, 1, 3], [0, 2, 1]])).tolist() == [2, 1]


def test_doubling_the_tied_values_neurons_undoes_the_recorded_mistakes(model):
    """The chapter's intervention at the recorded mistakes, against its baseline: doubling as
    many random neurons (10 draws). Unscaled (factor 1), the mistakes stay mistakes."""
    recorded = toybook.load_shipped("majority").metadata["evaluations"]["uniform_100000_seed12345"]
    tokens, positions = mistaken_sequences(TASK, recorded)
    rows = torch.arange(len(tokens))
    groups = value_neurons(model, TASK, TASK.generate(1_000, seed=7), k=20)[:, :10]
    counts = TASK.running_counts(tokens)[rows, positions]
    chosen = [groups[tied].flatten() for tied in counts == counts.max(-1, keepdim=True).values]
    targets = TASK.targets(tokens)[rows, positions]
    at_mistake = torch.zeros_like(tokens, dtype=torch.bool)
    at_mistake[rows, positions] = True
    resid, neurons = neurons_at(model, tokens, at_mistake)
    fixed = int((scaled_neuron_answers(model, resid, neurons, chosen, 2.0) == targets).sum())
    draws = torch.Generator().manual_seed(0)
    random_fixed = [int((scaled_neuron_answers(model, resid, neurons, [
        torch.randperm(model.cfg.d_mlp, generator=draws)[:len(c)] for c in chosen], 2.0) == targets).sum())
        for _ in range(10)]
    assert fixed > max(random_fixed)
    assert int((scaled_neuron_answers(model, resid, neurons, chosen, 1.0) == targets).sum()) < len(tokens) / 2
    with torch.no_grad():  # what neurons_at keeps is the model's own forward pass (to float rounding)
        assert torch.allclose(logits_from_neurons(model, resid, neurons), model(tokens)[rows, positions], atol=1e-3)


def test_sequences_with_one_rare_value_are_built_as_stated():
    tokens, rare = balanced_with_rare(TASK, 200, seed=3, rare_counts=(2, 4))
    counts = TASK.running_counts(tokens)[:, -1]
    rows = torch.arange(len(tokens))
    assert tokens.shape == (200, TASK.n_ctx) and set(counts[rows, rare].tolist()) == {2, 3, 4}
    others = counts.masked_fill(torch.nn.functional.one_hot(rare, 10).bool(), -1)
    assert ((others.max(-1).values - others.masked_fill(others < 0, 999).min(-1).values) <= 1).all()
    assert not torch.equal(tokens[:, :64].sort(1).values, tokens[:, 64:].sort(1).values)  # shuffled
    assert torch.equal(balanced_with_rare(TASK, 200, seed=3, rare_counts=(2, 4))[0], tokens)


def test_what_answers_name_by_hand():
    counts = torch.tensor([[5, 5, 1, 3], [5, 5, 1, 3], [2, 1, 1, 4]])
    rarest, tied = what_answers_name(counts, torch.tensor([2, 1, 1]))
    assert rarest.tolist() == [True, False, False]  # row 3: two values share the lowest count
    assert tied.tolist() == [False, True, False]


def test_ranked_neurons_follow_the_labels(model, probe):
    """A label that is never given ranks nothing above chance; the ranking of the task's own
    answer is value_neurons'; minority neurons are mostly not value neurons."""
    labels = TASK.targets(probe)
    assert torch.equal(ranked_neurons(model, probe, labels, 10, 5), value_neurons(model, TASK, probe, k=5))
    minority = minority_neurons(model, TASK, probe, k=5)
    assert len(set(minority.flatten().tolist()) & set(value_neurons(model, TASK, probe, k=5).flatten().tolist())) < 10


def test_the_recorded_mistakes_name_the_least_frequent_value_and_its_neurons_undo_them(model, probe):
    """The chapter's reading of the recorded mistakes: most name the least frequent value;
    mean-ablating its top 5 minority neurons corrects more of them than 5 random neurons in
    each of 10 draws, and keeps the held-out many-way ties the model gets right."""
    recorded = toybook.load_shipped("majority").metadata["evaluations"]["uniform_100000_seed12345"]
    counts, answers, targets = recorded_mistakes(model, TASK, recorded)
    assert (answers != targets).sum() >= len(targets) - 2  # another CPU may round a near-tie
    assert what_answers_name(counts, answers)[0].sum() > len(targets) / 2
    tokens, positions = mistaken_sequences(TASK, recorded)
    at = torch.zeros_like(tokens, dtype=torch.bool)
    at[torch.arange(len(tokens)), positions] = True
    resid, neurons = neurons_at(model, tokens, at)
    ranking, mean = minority_neurons(model, TASK, probe, k=5), mean_activations(model, probe)
    fixed = int((mean_ablated_answers(model, resid, neurons, ranking[counts.argmin(-1)], mean) == targets).sum())
    draws = torch.Generator().manual_seed(0)
    random_fixed = [int((mean_ablated_answers(model, resid, neurons, random_neurons(len(resid), 256, 5, draws), mean)
                         == targets).sum()) for _ in range(10)]
    assert fixed > len(targets) / 2 and fixed > max(random_fixed)
    held_out = TASK.generate(300, seed=2025)
    held_counts = TASK.running_counts(held_out)
    right = (batched_logits(model, held_out).argmax(-1) == TASK.targets(held_out)) & (tie_size(held_counts) >= 3)
    resid_ok, neurons_ok = neurons_at(model, held_out, right)
    kept = mean_ablated_answers(model, resid_ok, neurons_ok, ranking[held_counts[right].argmin(-1)], mean)
    assert (kept == TASK.targets(held_out)[right]).double().mean() > 0.99


def test_mean_ablation_at_chosen_rows_by_hand(model, probe):
    """Ablating no neuron's worth (each row's chosen neurons set to their own values) changes
    no answer; setting them to the mean is the hooked forward pass's answer."""
    tokens = probe[:4]
    at = torch.zeros_like(tokens, dtype=torch.bool)
    at[:, 100] = True
    resid, neurons = neurons_at(model, tokens, at)
    chosen = torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    own = mean_ablated_answers(model, resid, neurons, chosen, neurons[0])
    mean = mean_activations(model, probe)
    assert torch.equal(mean_ablated_answers(model, resid, neurons, torch.zeros(4, 0, dtype=torch.long), mean),
                       logits_from_neurons(model, resid, neurons).argmax(-1))
    for row in range(4):
        def hook(post, hook=None, row=row):
            post = post.clone()
            post[:, 100, chosen[row]] = mean[chosen[row]]
            return post
        with torch.no_grad():
            hooked = model.run_with_hooks(tokens[row:row + 1], fwd_hooks=[("blocks.0.mlp.hook_post", hook)])
        assert hooked[0, 100].argmax() == mean_ablated_answers(model, resid, neurons, chosen, mean)[row]
    assert own.shape == (4,)


def test_the_rare_value_claims_fail_on_a_model_that_errs_otherwise():
    """Soundness: a briefly trained model makes many mistakes on the stress sequences, but
    they do not mostly name the rare value, and its ranked neurons do not undo them."""
    from toybook.training import train
    from toybook.tasks.majority.presets import MAJORITY
    import dataclasses

    config = dataclasses.replace(MAJORITY.train, steps=60, seed=3, snapshot_every=None)
    weak = train(MAJORITY.task, MAJORITY.model, config, progress=False).model
    claims = {c.name: c for c in claims_for("majority")}
    values = {name: claims[name].measure(weak) for name in ("mistakes_name_rare", "rare_neurons_fix")}
    assert all(value < claims[name].low for name, value in values.items()), values
