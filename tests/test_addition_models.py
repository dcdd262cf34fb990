"""The shipped addition models: the 2-layer one meets the accuracy target, the 1-layer one
fails on cascading carries, as recorded in their checkpoints and re-checked here."""

import pytest

import toybook
from toybook.claims import claims_for
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


def test_cascades_fail_can_fail_a_model_that_gets_cascades_right():
    claim = next(c for c in claims_for("addition_1l") if c.name == "cascades_fail")
    assert 0.002 < claim.low < 0.005  # the 2-layer record's 0 of 1,200, as a 95% upper bound
    assert claim.measure(toybook.load_model("addition")) < claim.low
    assert claim.measure(toybook.load_model("addition_1l")) > 0.1


def test_the_matched_one_layer_model_has_the_two_layer_model_s_parameters_and_its_record():
    from toybook.model import count_parameters

    two, matched = toybook.load_model("addition"), toybook.load_model("addition_1l_matched")
    assert matched.cfg.n_layers == 1
    assert abs(count_parameters(matched) / count_parameters(two) - 1) <= 0.10
    result = recorded("addition_1l_matched")
    assert result["n_random"] == 1_000_000
    assert set(result["sets"]) == set(recorded("addition")["sets"])
