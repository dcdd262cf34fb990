"""Enumerating a task's inputs, and the exhaustive evaluator against a brute-force check."""

import itertools

import pytest
import torch

import toybook
from toybook.errors import ToybookError
from toybook.evaluation import evaluate_exhaustively
from toybook.shared_prefix import answer_logits_by_prefix, shared_prefix_answer_logits

LIST_UPDATE = toybook.get_task("list_update")


def test_list_update_input_space():
    assert LIST_UPDATE.n_inputs == 50**3 * 3 * 50 == 18_750_000
    first, last = LIST_UPDATE.inputs(0, 1)[0], LIST_UPDATE.inputs(LIST_UPDATE.n_inputs - 1)[0]
    assert first.tolist() == [50, 0, 0, 0, 51, 0, 0, 51, 0, 0, 0]
    assert last.tolist() == [50, 49, 49, 49, 51, 2, 49, 51, 49, 49, 49]


def test_rank_inverts_inputs_on_random_sequences():
    sample = LIST_UPDATE.generate(2000, seed=7)
    ranks = LIST_UPDATE.rank(sample)
    assert ranks.unique().numel() == len(torch.unique(sample, dim=0))
    rebuilt = torch.cat([LIST_UPDATE.inputs(r, r + 1) for r in ranks.tolist()])
    assert torch.equal(rebuilt, sample)


def test_enumeration_ranges_are_contiguous_and_checked():
    whole = LIST_UPDATE.inputs(1000, 1300)
    assert torch.equal(torch.cat([LIST_UPDATE.inputs(1000, 1111), LIST_UPDATE.inputs(1111, 1300)]), whole)
    assert torch.equal(LIST_UPDATE.rank(whole), torch.arange(1000, 1300))
    LIST_UPDATE.validate(whole)
    with pytest.raises(ToybookError, match="0 <= start <= stop <= 18,750,000"):
        LIST_UPDATE.inputs(5, 3)
    with pytest.raises(ToybookError, match="18,750,000"):
        LIST_UPDATE.inputs(0, 18_750_001)


def test_tasks_without_enumeration_say_so():
    majority = toybook.get_task("majority")
    assert majority.n_inputs is None
    model = toybook.build_model(toybook.ModelConfig.for_task(majority, n_layers=1, n_heads=1, d_model=8, d_head=8))
    with pytest.raises(ToybookError, match="does not enumerate its inputs; .*`toybook list` shows each task.s number of inputs"):
        evaluate_exhaustively(model, majority, 0, None)


@torch.no_grad()
def brute_force(model, box):
    """Counts by hand: every (a0, a1, a2, idx, elt) in ``box``, one Python list at a time."""
    rows, expected = [], []
    for a0, a1, a2, idx, elt in itertools.product(*box):
        b = [a0, a1, a2]
        b[idx] = elt
        rows.append([50, a0, a1, a2, 51, idx, elt, 51, *b])
        expected.append(b)
    logits = model(torch.tensor(rows))[:, 7:10]
    predicted = logits.argmax(-1).tolist()
    wrong_per_pos, wrong_by_idx, wrong_rows = [0, 0, 0], {i: [0, 0, 0] for i in range(3)}, 0
    for row, guess, answer in zip(rows, predicted, expected):
        misses = [int(g != a) for g, a in zip(guess, answer)]
        wrong_rows += any(misses)
        for k in range(3):
            wrong_per_pos[k] += misses[k]
            wrong_by_idx[row[5]][k] += misses[k]
    correct = logits.gather(-1, torch.tensor(expected)[..., None])[..., 0]
    others = logits.scatter(-1, torch.tensor(expected)[..., None], float("-inf")).max(-1).values
    return wrong_rows, wrong_per_pos, wrong_by_idx, float((correct - others).min())


@pytest.mark.parametrize("method", ["auto", "plain"])
@pytest.mark.parametrize("which", ["untrained", "shipped"])
def test_exhaustive_evaluator_agrees_with_brute_force(which, method):
    """A slice of the enumeration (a0 = 7, a1 in 0..3, everything else free) checked two
    ways; the untrained model gets most answers wrong, so the counts are not all zero.
    ``auto`` computes each list's shared prefix once; ``plain`` runs the model as is."""
    if which == "shipped":
        model = toybook.load_model("list_update")
    else:
        config = toybook.load_shipped("list_update").model_config
        model = toybook.build_model(config, seed=11)
    box = ([7], range(4), range(50), range(3), range(50))
    start = LIST_UPDATE.rank(LIST_UPDATE.encode(torch.tensor([[7, 0, 0]]), torch.tensor([0]), torch.tensor([0])))
    start = int(start)
    stop = start + 4 * 50 * 3 * 50
    result = evaluate_exhaustively(model, LIST_UPDATE, start, stop, batch_size=7_777, method=method)
    assert result.method == ("shared_prefix" if method == "auto" else "plain")
    wrong_rows, wrong_per_pos, wrong_by_idx, min_margin = brute_force(model, box)
    assert result.n == stop - start == 30_000
    assert result.n_wrong == wrong_rows
    assert result.wrong_per_pos == wrong_per_pos
    assert result.wrong_by_group == {str(i): wrong for i, wrong in wrong_by_idx.items()}
    assert sum(result.n_by_group.values()) == result.n
    assert result.min_margin == pytest.approx(min_margin, abs=1e-4)
    assert result.hardest[0]["margin"] == pytest.approx(min_margin, abs=1e-4)
    if which == "untrained":
        assert wrong_rows > 20_000
    else:
        assert wrong_rows == 0 and min_margin > 0


def test_max_of_2_enumerates_its_grid():
    task = toybook.get_task("max_of_2")
    assert task.n_inputs == 4096
    assert torch.equal(task.inputs(), task.all_inputs())
    result = evaluate_exhaustively(toybook.load_model("max_of_2"), task, batch_size=1000)
    assert result.n == 4096 and result.n_wrong == 0 and result.group_slot is None


def random_attention_only_model(**overrides):
    """An untrained attention-only model with random non-zero biases (the shipped models
    have none), to check every term of the shared-prefix arithmetic."""
    config = toybook.ModelConfig.for_task(
        LIST_UPDATE, **{"n_layers": 3, "n_heads": 2, "d_model": 32, "d_head": 16, "d_mlp": None,
                        "normalization_type": None, "use_biases": True, **overrides})
    model = toybook.build_model(config, seed=3)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


@pytest.mark.parametrize("model_name", ["list_update", "random"])
def test_shared_prefix_logits_equal_the_model_s(model_name):
    """The same arithmetic in another order: equal to float64 rounding in float64 (3 layers,
    2 heads, every bias), and to float32 rounding for the shipped model."""
    if model_name == "list_update":
        model, tolerance = toybook.load_model("list_update"), 1e-4
    else:
        model, tolerance = random_attention_only_model().double(), 1e-9
    tokens = LIST_UPDATE.inputs(150 * 1234, 150 * 1240)
    fast = answer_logits_by_prefix(model, tokens, 5, 150, LIST_UPDATE.answer_positions)
    with torch.no_grad():
        plain = LIST_UPDATE.answer_logits(model(tokens))
    assert fast.shape == plain.shape == (900, 3, 50)
    assert (fast - plain).abs().max() < tolerance
    assert torch.equal(fast.argmax(-1), plain.argmax(-1))


def test_shared_prefix_refuses_what_it_cannot_compute():
    tokens = LIST_UPDATE.inputs(0, 300)
    with pytest.raises(ToybookError, match="attention-only model without normalization"):
        shared_prefix_answer_logits(random_attention_only_model(normalization_type="LN"),
                                    tokens[:1, :5], tokens[None, :, 5:], slice(7, 10))
    with pytest.raises(ToybookError, match="inside the shared prefix"):
        shared_prefix_answer_logits(toybook.load_model("list_update"), tokens[:1, :8],
                                    tokens[None, :, 8:], slice(7, 10))
    with pytest.raises(ToybookError, match="do not come in runs of 150"):
        answer_logits_by_prefix(toybook.load_model("list_update"), tokens[75:225], 5, 150, slice(7, 10))
    with pytest.raises(ToybookError, match="unknown method 'fast'"):
        evaluate_exhaustively(toybook.load_model("list_update"), LIST_UPDATE, 0, 150, method="fast")


def test_ranges_that_split_a_run_are_evaluated_plainly():
    model = toybook.load_model("list_update")
    split = evaluate_exhaustively(model, LIST_UPDATE, 75, 375)
    assert split.method == "plain" and split.n == 300
    aligned = evaluate_exhaustively(model, LIST_UPDATE, 150, 450)
    assert aligned.method == "shared_prefix" and aligned.n_wrong == 0
