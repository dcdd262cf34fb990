"""Enumerating a task's inputs, and the exhaustive evaluator against a brute-force check."""

import itertools

import pytest
import torch

import toybook
from toybook.errors import ToybookError
from toybook.evaluation import evaluate_exhaustively

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
    addition = toybook.get_task("addition")
    assert addition.n_inputs is None
    model = toybook.build_model(toybook.ModelConfig.for_task(addition, n_layers=1, n_heads=1, d_model=8, d_head=8))
    with pytest.raises(ToybookError, match="does not enumerate its inputs"):
        evaluate_exhaustively(model, addition, 0, None)


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


@pytest.mark.parametrize("which", ["untrained", "shipped"])
def test_exhaustive_evaluator_agrees_with_brute_force(which):
    """A slice of the enumeration (a0 = 7, a1 in 0..3, everything else free) checked two
    ways; the untrained model gets most answers wrong, so the counts are not all zero."""
    if which == "shipped":
        model = toybook.load_model("list_update")
    else:
        config = toybook.load_shipped("list_update").model_config
        model = toybook.build_model(config, seed=11)
    box = ([7], range(4), range(50), range(3), range(50))
    start = LIST_UPDATE.rank(LIST_UPDATE.encode(torch.tensor([[7, 0, 0]]), torch.tensor([0]), torch.tensor([0])))
    start = int(start)
    stop = start + 4 * 50 * 3 * 50
    result = evaluate_exhaustively(model, LIST_UPDATE, start, stop, batch_size=7_777)
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
