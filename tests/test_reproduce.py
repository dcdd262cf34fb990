"""`toybook reproduce` on a tiny checkpoint: bit-identity where the recorded environment
matches, behaviour where it does not, and a clear failure where neither holds."""

import json

import pytest
import torch

import toybook
from toybook.checkpoint import sign_sidecar
from toybook.cli import main
from toybook.environment import current_environment
from toybook.errors import ToybookError
from toybook.reproduce import reproduce

TASK = toybook.get_task("max_of_2")
CONFIG = toybook.ModelConfig.for_task(TASK, n_layers=1, n_heads=1, d_model=8, d_head=8, normalization_type=None, use_biases=False)


@pytest.fixture
def tiny(tmp_path):
    run = toybook.train(TASK, CONFIG, toybook.TrainConfig(steps=30, batch_size=None, log_every=10), progress=False)
    return toybook.save_checkpoint(run, tmp_path / "shipped" / "tiny")


def edit_sidecar(path, edit):
    """A deliberate edit, re-signed (the sidecar's checksums would refuse it otherwise)."""
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))
    sign_sidecar(path)


def test_same_environment_gives_the_same_bits(tiny, tmp_path):
    report = reproduce(tiny, tmp_path / "again", progress=False)
    assert report.mismatch == [] and report.level == "bit-identity"
    assert report.bit_identical and report.max_logit_diff == 0 and report.answers_agree == 1
    assert report.accuracy is None  # same weights: the recorded results hold
    assert report.reproduced and report.verdict == "REPRODUCED, bit-identical"
    assert (tmp_path / "again" / "tiny.json").exists()
    text = str(report)
    assert "checked      bit-identity" in text and "claims       none defined" in text


def test_another_environment_is_judged_by_behaviour(tiny, tmp_path):
    other = "AVX2" if current_environment()["cpu_capability"] == "AVX512" else "AVX512"

    def elsewhere(metadata):
        metadata["training"]["environment"]["cpu_capability"] = other
        metadata["training"]["environment"]["threads"] = 1  # not worth waiting for here
        metadata["train_config"]["seed"] = 1  # a rerun that cannot give the same bits
    edit_sidecar(tiny, elsewhere)
    lines = []
    report = reproduce(tiny, tmp_path / "again", progress=False, log=lines.append)
    assert any(line.startswith(f"tiny: bit-identity is not expected here (cpu_capability: '{other}'")
               and line.endswith("training uses this machine's 2 threads") for line in lines), lines
    assert report.level == "behaviour" and report.mismatch[0].startswith(f"cpu_capability: '{other}'")
    assert report.environment["threads"] == torch.get_num_threads() == 2
    assert "threads: 1 recorded, 2 here" in report.mismatch
    assert not report.bit_identical and report.max_logit_diff > 0
    assert report.accuracy.what == "all 4,096 inputs" and report.accuracy.retrained_wrong > 0
    assert report.reproduced  # the tiny model was imperfect too: its error count is not judged
    assert "REPRODUCED in behaviour" in str(report) and "differs      cpu_capability" in str(report)


def test_different_weights_in_the_same_environment_are_not_a_reproduction(tiny, tmp_path):
    edit_sidecar(tiny, lambda metadata: metadata["train_config"].update(seed=1))
    report = reproduce(tiny, tmp_path / "again", progress=False)
    assert report.mismatch == [] and not report.bit_identical
    assert not report.reproduced and report.verdict == "NOT REPRODUCED"


def test_a_perfect_model_must_stay_perfect(tiny, tmp_path):
    def perfect_and_elsewhere(metadata):
        metadata["training"]["environment"]["threads"] = 64
        metadata["evaluations"]["exhaustive"] = {"n": 4096, "n_wrong": 0}
        metadata["train_config"]["seed"] = 1
    edit_sidecar(tiny, perfect_and_elsewhere)
    report = reproduce(tiny, tmp_path / "again", progress=False)
    assert report.accuracy.shipped_wrong == 0 and report.accuracy.retrained_wrong > 0
    assert not report.accuracy.holds and not report.reproduced


def test_an_unwritable_output_fails_before_training(tiny, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ToybookError, match="cannot write a checkpoint into .*choose another folder"):
        reproduce(tiny, blocker / "sub", progress=False)


def test_reproducing_into_its_own_folder_is_refused(tiny):
    with pytest.raises(ToybookError, match="would overwrite the checkpoint being reproduced"):
        reproduce(tiny, tiny.parent, progress=False)


@pytest.mark.parametrize(
    "args, message",
    [
        (["reproduce"], "name the shipped models to reproduce, or use --all"),
        (["reproduce", "max_of_2", "--all"], "name the shipped models to reproduce, or use --all"),
        (["reproduce", "max_of_3"], "no shipped model 'max_of_3'"),
    ],
)
def test_cli_errors(capsys, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_a_seed_model_is_held_to_its_presets_claims(tmp_path):
    """A seed model (NAME_sN) is checked against NAME's claims, not skipped as claimless."""
    from toybook.claims import claims_for

    run = toybook.train(TASK, CONFIG, toybook.TrainConfig(steps=30, batch_size=None, log_every=10), progress=False)
    seed_model = toybook.save_checkpoint(run, tmp_path / "shipped" / "max_of_2_s9")
    report = reproduce(seed_model, tmp_path / "again", progress=False)
    assert [result.claim.name for result in report.claims] == [claim.name for claim in claims_for("max_of_2")]
    assert "claims       none defined" not in str(report)
