"""One measurement path: `toybook eval`, `--record` and `toybook reproduce` run the same
chapter measurement, and a rerun reads back what was recorded."""

import shutil

import pytest
import torch

import toybook
from toybook.tasks.addition.analysis import addition_accuracy
from toybook.tasks.majority.mistakes import majority_accuracy
from toybook.checkpoint import read_sidecar
from toybook.cli import main
from toybook.errors import ToybookError
from toybook.evaluation import batched_logits, forward_batches, fresh_inputs
from toybook.measurement import measure, remeasure
from toybook.zoo import SHIPPED_DIR


def copy_shipped(name, folder):
    for suffix in (".safetensors", ".json"):
        shutil.copy(SHIPPED_DIR / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder / name


def test_forward_batches_matches_one_forward_pass_and_keeps_no_graph():
    model, task = toybook.load_model("max_of_2"), toybook.get_task("max_of_2")
    tokens = task.inputs(0, 1000)
    seen = list(forward_batches(model, tokens, batch_size=300))
    assert [start for start, _, _ in seen] == [0, 300, 600, 900]
    assert all(logits.grad_fn is None for _, _, logits in seen)
    with torch.no_grad():
        whole = model(tokens)
    assert torch.allclose(torch.cat([logits for _, _, logits in seen]), whole, atol=1e-5)
    assert torch.allclose(batched_logits(model, tokens, batch_size=77), whole, atol=1e-5)


def test_forward_batches_draws_one_seeded_stream():
    task = toybook.get_task("majority")
    model = toybook.load_model("majority")
    batched = torch.cat([t for _, t, _ in forward_batches(model, fresh_inputs(task, 5), 50, 16)])
    assert torch.equal(batched, task.generate(50, torch.Generator().manual_seed(5)))


def test_addition_measurement_is_the_chapter_one(capsys, tmp_path):
    path = copy_shipped("addition", tmp_path)
    assert main(["eval", "addition", "--checkpoint", str(path), "--n", "300", "--quiet",
                 "--record"]) == 0
    out = capsys.readouterr().out
    assert "300 random questions (seed 12345) and 8,400 hand-built" in out
    assert "Cascade4      200 questions" in out and "recorded as 'accuracy_300_seed12345'" in out
    recorded = read_sidecar(path)["evaluations"]["accuracy_300_seed12345"]
    direct = addition_accuracy(toybook.load_model("addition"), toybook.get_task("addition"),
                               n_random=300, seed=12345)
    assert recorded["sets"] == direct.sets and recorded["random_wrong"] == direct.random_wrong


def test_majority_measurement_records_and_reruns(capsys, tmp_path):
    path = copy_shipped("majority", tmp_path)
    assert main(["eval", "majority", "--checkpoint", str(path), "--n", "700", "--seed", "3",
                 "--quiet", "--record"]) == 0
    out = capsys.readouterr().out
    assert "on the last position of 700 sequences (seed 3)" in out and "ties" in out
    evaluations = read_sidecar(path)["evaluations"]
    recorded = evaluations["uniform_700_seed3"]
    model, task = toybook.load_model("majority"), toybook.get_task("majority")
    assert recorded["acc_per_position"] == pytest.approx(
        majority_accuracy(model, task, n=700, seed=3).acc_per_position)
    again, recorded_wrong = remeasure(model, task, {"uniform_700_seed3": recorded})
    assert (again.label, again.n, recorded_wrong) == ("uniform_700_seed3", 700, recorded["last_wrong"])


def test_remeasure_uses_every_input_where_they_can_be_listed():
    model, task = toybook.load_model("max_of_2"), toybook.get_task("max_of_2")
    evaluations = read_sidecar(SHIPPED_DIR / "max_of_2")["evaluations"]
    measurement, recorded_wrong = remeasure(model, task, evaluations)
    assert (measurement.label, measurement.n, measurement.n_wrong) == ("exhaustive", 4096, 0)
    assert recorded_wrong == 0
    assert remeasure(model, task, {})[1] is None


def test_random_sample_records_its_seed():
    model, task = toybook.load_model("list_update"), toybook.get_task("list_update")
    first = measure(model, task, n=500, seed=9)
    assert first.label == "random_500_seed9" and first.result["seed"] == 9
    assert measure(model, task, n=500, seed=9).result == first.result


@pytest.mark.parametrize("kwargs, words", [
    (dict(n=0), "at least one input, got n=0"),
    (dict(exhaustive=True), "no finite input space"),
])
def test_bad_measurements_are_refused(kwargs, words):
    with pytest.raises(ToybookError, match=words):
        measure(toybook.load_model("majority"), toybook.get_task("majority"), **kwargs)


def test_wilson_interval_brackets_the_rate_and_is_not_empty_at_zero():
    from toybook.measurement import wilson_interval

    low, high = wilson_interval(0, 1_200)
    assert low == 0.0 and 0.002 < high < 3 / 1_200 + 0.001  # near the rule of three
    low, high = wilson_interval(56, 300)
    assert low < 56 / 300 < high and 0.14 < low and high < 0.24
    assert wilson_interval(300, 300)[1] == pytest.approx(1.0)
    for bad in ((3, 2), (-1, 5), (0, 0), (1.5, 3)):
        with pytest.raises(ToybookError, match="0 <= n_wrong <= n"):
            wilson_interval(*bad)
