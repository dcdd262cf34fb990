"""The shipped addition models: the 2-layer one meets the accuracy target, the 1-layer one
fails on cascading carries, as recorded in their checkpoints and re-checked here."""

import pytest

import toybook
from toybook.tasks.addition.analysis import addition_accuracy

TASK = toybook.get_task("addition")
RECORD = "accuracy_1000000_seed12345"


def recorded(name):
    return toybook.load_shipped(name).metadata["evaluations"][RECORD]


def test_recorded_two_layer_accuracy_meets_the_target():
    result = recorded("addition")
    assert result["n_random"] == 1_000_000 and result["random_wrong"] == 0
    assert set(result["sets"]) == {"BA", "UC1", "SimpleUS9", "Cascade2", "Cascade3", "Cascade4"}
    assert all(wrong == 0 and n > 0 for n, wrong in result["sets"].values())


def test_recorded_one_layer_model_fails_on_cascades():
    result = recorded("addition_1l")
    assert result["sets"]["BA"][1] == 0
    assert all(result["sets"][f"Cascade{d}"][1] > 0 for d in (2, 3, 4))
    assert result["random_wrong"] > 0


@pytest.mark.parametrize("name, perfect", [("addition", True), ("addition_1l", False)])
def test_fresh_question_sets(name, perfect):
    model = toybook.load_model(name)
    result = addition_accuracy(model, TASK, n_random=2_000, seed=777, per_layout=10)
    cascades = sum(result.sets[f"Cascade{d}"][1] for d in (2, 3, 4))
    if perfect:
        assert result.random_wrong == 0 and all(wrong == 0 for _, wrong in result.sets.values())
    else:
        assert cascades > 0
    assert model.cfg.n_layers == (2 if perfect else 1)
