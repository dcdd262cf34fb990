"""The hand-built addition question sets are what their names say, by the task's own
classifier and by Python integers."""

import pytest
import torch

import toybook
from toybook.tasks.addition.analysis import addition_accuracy, question_sets
from toybook.tasks.addition import QuestionClass

TASK = toybook.get_task("addition")


@pytest.fixture(scope="module")
def sets():
    return question_sets(TASK, per_layout=50, seed=3)


def test_sets_and_sizes(sets):
    assert list(sets) == ["BA", "UC1", "SimpleUS9", "Cascade2", "Cascade3", "Cascade4"]
    layouts = {"BA": 1, "UC1": 31, "SimpleUS9": 4, "Cascade2": 3, "Cascade3": 2, "Cascade4": 1}
    for name, tokens in sets.items():
        assert len(tokens) == 50 * layouts[name]
        TASK.validate(tokens)


def test_classes_by_the_task_classifier(sets):
    classes = {name: TASK.classify(tokens) for name, tokens in sets.items()}
    assert bool((classes["BA"] == QuestionClass.BA).all())
    assert bool((classes["UC1"] == QuestionClass.MC1).all())
    assert not bool(TASK.subtasks(sets["UC1"]).US9.any())
    assert bool(TASK.subtasks(sets["UC1"]).MC1.any(1).all())  # some carry, used by a digit
    assert bool((classes["SimpleUS9"] == QuestionClass.SimpleUS9).all())
    for depth in (2, 3, 4):
        tokens = sets[f"Cascade{depth}"]
        assert bool((classes[f"Cascade{depth}"] == QuestionClass.CascadeUS9).all())
        assert bool((TASK.cascade_depth(tokens) == depth).all())


def test_answers_agree_with_python_integers(sets):
    for tokens in sets.values():
        x, y = TASK.operand_digits(tokens)
        powers = 10 ** torch.arange(5)
        total = ((x + y) * powers).sum(1)
        answer = (TASK.targets(tokens) * 10 ** torch.arange(5, -1, -1)).sum(1)
        assert torch.equal(answer, total)


def test_famous_cascades_are_covered_by_the_layouts():
    depth = TASK.cascade_depth(TASK.encode([555, 44445], [445, 55555]))
    assert depth.tolist() == [2, 4]


def test_accuracy_counts_a_model_that_ignores_carries():
    """A model-free predictor that adds column by column without carries: right on BA,
    wrong on every question of the other sets."""

    class NoCarry(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, tokens):
            x, y = TASK.operand_digits(tokens)
            digits = torch.cat([torch.zeros(len(x), 1, dtype=torch.long), ((x + y) % 10).flip(1)], 1)
            logits = torch.zeros(len(tokens), TASK.n_ctx, 10)
            logits[:, TASK.answer_positions] = torch.nn.functional.one_hot(digits, 10).float()
            return logits

    result = addition_accuracy(NoCarry(), TASK, n_random=2000, seed=1, per_layout=20)
    assert result.sets["BA"][1] == 0
    for name in ("UC1", "SimpleUS9", "Cascade2", "Cascade3", "Cascade4"):
        assert result.sets[name][1] == result.sets[name][0]
    assert 0 < result.random_wrong < 2000
