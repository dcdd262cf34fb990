"""The fraction of loss recovered, on hand-built models where the answer is known exactly."""

from __future__ import annotations

import math

import pytest
import torch

import toybook
from toybook.analysis.faithfulness import SHUFFLED_VALUES, loss_recovered, recovered_fraction
from toybook.analysis.patching import Patch
from toybook.configs import ModelConfig
from toybook.errors import ToybookError
from toybook.model import attach_task, build_model

TASK = toybook.get_task("max_of_2")
Z = "blocks.0.attn.hook_z"
HEAD_0, HEAD_1 = Patch(Z, heads=(0,)), Patch(Z, heads=(1,))


@pytest.fixture(scope="module")
def dead_second_head():
    """The shipped max-of-2 model with a second head beside its one: head 0 holds the shipped
    head's weights, head 1 random ones, and the output weights that read head 1 are zero, so
    whatever head 1 computes never reaches the logits. The model is as exact as the shipped one."""
    shipped = toybook.load_model("max_of_2")
    config = ModelConfig.for_task(TASK, n_layers=1, n_heads=2, d_model=32, d_head=32,
                                  normalization_type=None, use_biases=False)
    model = attach_task(build_model(config, seed=3), TASK).eval()
    state, weights = model.state_dict(), shipped.state_dict()
    with torch.no_grad():
        for name, value in weights.items():
            if name.rsplit(".", 2)[-2] in ("q", "k", "v"):  # weight or bias
                state[name][:32] = value  # rows of head 0
            elif name.endswith("o.weight"):
                state[name][:, :32], state[name][:, 32:] = value, 0
            else:
                state[name].copy_(value)
    model.load_state_dict(state)
    assert torch.all(model.W_O[0, 1] == 0) and torch.any(model.W_O[0, 0] != 0)
    assert toybook.evaluate(model, TASK, TASK.all_inputs()).n_wrong == 0
    return model


@pytest.fixture(scope="module")
def inputs():
    everything = TASK.all_inputs()
    order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(0))
    return everything[order[:1000]], everything[order[1000:2000]]  # measured, reference


def test_a_circuit_beside_a_dead_head_recovers_all_the_loss(dead_second_head, inputs):
    tokens, reference = inputs
    result = loss_recovered(dead_second_head, TASK, tokens, reference, [HEAD_0], [HEAD_0, HEAD_1])
    assert result.recovered == 1.0
    assert result.loss_hypothesis == result.loss_model
    assert result.loss_ablated > result.loss_model
    assert len(result.random) == 10
    # a random circuit of one head is head 0 (recovers all) or the dead head, whose removal
    # changes nothing: the fraction is then undefined, not a number that looks like one
    assert all(value == 1.0 or math.isnan(value) for value in result.random)
    assert "loss recovered 1.000 by 1 of 2 components" in str(result)
    assert "from the losses of 10 draws" in str(result)
    assert result.random_mean < 0.5  # on average a draw keeps the dead head as often as the working one
    assert 0 < result.n_random_defined < 10  # both heads were drawn


def test_the_dead_head_as_the_circuit_is_undefined(dead_second_head, inputs):
    tokens, reference = inputs
    result = loss_recovered(dead_second_head, TASK, tokens, reference, [HEAD_1], [HEAD_0, HEAD_1],
                            n_random=0)
    assert math.isnan(result.recovered)
    assert result.loss_ablated == result.loss_model and result.loss_hypothesis > result.loss_model


def test_stated_values_replace_the_circuit(dead_second_head, inputs):
    """Stating head 0's true output recovers everything; stating zeros recovers exactly
    what zero-ablating head 0 (with head 1 resampled) gives."""
    tokens, reference = inputs
    model = dead_second_head

    def true_z(batch):
        return model.run_with_cache(batch, names_filter=Z)[1][Z]

    def zeros(batch):
        return torch.zeros_like(true_z(batch))

    universe = [HEAD_0, HEAD_1]
    exact = loss_recovered(model, TASK, tokens, reference, [HEAD_0], universe,
                           computed={HEAD_0: true_z}, n_random=0)
    assert exact.recovered == 1.0
    wrong = loss_recovered(model, TASK, tokens, reference, [HEAD_0], universe,
                           computed={HEAD_0: zeros}, n_random=0)
    zero_ablated = TASK.loss(model.run_with_hooks(tokens, fwd_hooks=[
        (Z, lambda z, hook: torch.cat([torch.zeros_like(z[:, :, :1]), z[:, :, 1:]], 2))]), tokens).item()
    assert wrong.loss_hypothesis == pytest.approx(zero_ablated, rel=1e-9)
    assert wrong.recovered == pytest.approx(recovered_fraction(wrong.loss_model, wrong.loss_ablated, zero_ablated))
    assert wrong.recovered < 0.5


def test_means_come_from_the_reference_inputs(dead_second_head, inputs):
    tokens, reference = inputs
    one = loss_recovered(dead_second_head, TASK, tokens, reference, [HEAD_0], [HEAD_0, HEAD_1], n_random=0)
    other = loss_recovered(dead_second_head, TASK, tokens, reference[:100], [HEAD_0], [HEAD_0, HEAD_1],
                           n_random=0)
    assert one.loss_model == other.loss_model and one.loss_ablated != other.loss_ablated


def test_the_recovered_fraction():
    assert recovered_fraction(1.0, 3.0, 1.0) == 1.0
    assert recovered_fraction(1.0, 3.0, 3.0) == 0.0
    assert recovered_fraction(1.0, 3.0, 2.0) == 0.5
    assert recovered_fraction(1.0, 3.0, 0.5) == 1.25
    assert math.isnan(recovered_fraction(1.0, 1.0, 2.0))


@pytest.mark.parametrize("arguments, message", [
    ({"circuit": []}, "at least one component"),
    ({"circuit": [Patch("blocks.0.hook_attn_out")]}, "outside the universe"),
    ({"universe": [HEAD_0, HEAD_0, HEAD_1]}, "twice"),
    ({"computed": {HEAD_1: lambda tokens: tokens}}, "not in the circuit"),
    ({"reference": torch.zeros(0, 3, dtype=torch.long)}, "non-empty batches"),
    ({"n_random": -1}, "loss_recovered.n_random must be an integer ≥ 0, got -1"),
])
def test_bad_input_is_named(dead_second_head, inputs, arguments, message):
    tokens, reference = inputs
    call = {"reference": reference, "circuit": [HEAD_0], "universe": [HEAD_0, HEAD_1], **arguments}
    with pytest.raises(ToybookError, match=message):
        loss_recovered(dead_second_head, TASK, tokens, **call)


def test_stated_values_are_read_against_shuffled_labels(dead_second_head, inputs):
    """A hypothesis that states values is baselined by the same values given to the wrong
    inputs: the true output of head 0, shuffled across rows, explains nothing."""
    tokens, reference = inputs
    model = dead_second_head

    def true_z(batch):
        return model.run_with_cache(batch, names_filter=Z)[1][Z]

    result = loss_recovered(model, TASK, tokens, reference, [HEAD_0], [HEAD_0, HEAD_1],
                            computed={HEAD_0: true_z}, n_random=5)
    assert result.recovered == 1.0 and len(result.random) == 5
    assert result.baseline == SHUFFLED_VALUES
    assert result.random_mean < 0.2 and all(value < 0.5 for value in result.random)


def test_a_hypothesis_is_data_measured_by_the_one_function(dead_second_head, inputs):
    from toybook.analysis.faithfulness import Hypothesis, faithfulness_claim, head

    tokens, reference = inputs
    hypothesis = Hypothesis("head_0", "head 0 alone", (head(0, None, 0),),
                            (head(0, None, 0), head(0, None, 1)))
    assert hypothesis.circuit == (HEAD_0,)
    direct = loss_recovered(dead_second_head, TASK, tokens, reference, [HEAD_0], [HEAD_0, HEAD_1])
    measured = hypothesis.measure(dead_second_head, TASK, tokens, reference)
    assert (measured.recovered, measured.random_losses) == (direct.recovered, direct.random_losses)
    claim = faithfulness_claim(hypothesis, TASK)
    assert claim.name == "loss_recovered_head_0" and claim.low == 0.95
    assert claim.measure(dead_second_head) == 1.0
    broken = faithfulness_claim(Hypothesis("head_1", "the dead head", (HEAD_1,), (HEAD_0, HEAD_1)), TASK)
    assert not broken.low <= broken.measure(dead_second_head) <= broken.high  # NaN fails


def test_the_baseline_averages_losses_not_fractions():
    from toybook.analysis.faithfulness import Faithfulness

    result = Faithfulness(1.0, 1.0, 3.0, 1.0, 1, 2, random=(0.0, float("nan")),
                          random_losses=((3.0, 3.0), (1.0, 2.0)))
    assert result.random_mean == recovered_fraction(1.0, 2.0, 2.5)  # -0.5


def test_groups_of_answers_come_from_the_same_runs(dead_second_head, inputs):
    """Per-group numbers reduce the same runs: a group of every answer gives the overall
    numbers exactly, and two groups that split the answers add back up to them, weighted by
    their sizes. A group that is not a bool mask over the answers, or is empty, is named."""
    tokens, reference = inputs
    first = (tokens[:, 0] > tokens[:, 1])[:, None]  # [B, A = 1]
    result = loss_recovered(dead_second_head, TASK, tokens, reference, [HEAD_0], [HEAD_0, HEAD_1],
                            n_random=3, groups={"all": torch.ones_like(first), "first": first,
                                                "second": ~first})
    every, a, b = (result.groups[name] for name in ("all", "first", "second"))
    assert every.recovered == pytest.approx(result.recovered, rel=1e-12)
    assert every.loss_ablated == pytest.approx(result.loss_ablated, rel=1e-12)
    assert sum(every.random_losses, ()) == pytest.approx(sum(result.random_losses, ()), rel=1e-12)
    assert a.n_answers + b.n_answers == result.n_answers == len(tokens) and not a.groups
    for loss in ("loss_model", "loss_ablated", "loss_hypothesis"):
        split = (getattr(a, loss) * a.n_answers + getattr(b, loss) * b.n_answers) / result.n_answers
        assert split == pytest.approx(getattr(result, loss), rel=1e-9)
    with pytest.raises(ToybookError, match=r"group 'g' must be a bool tensor \[1000, 1\]"):
        loss_recovered(dead_second_head, TASK, tokens, reference, [HEAD_0], [HEAD_0, HEAD_1],
                       n_random=0, groups={"g": first.long()})
    with pytest.raises(ToybookError, match="group 'none' holds no answer"):
        loss_recovered(dead_second_head, TASK, tokens, reference, [HEAD_0], [HEAD_0, HEAD_1],
                       n_random=0, groups={"none": first & ~first})
