"""Checkpoint round trip, tamper detection, and the shipped models."""

import json
import shutil

import pytest
import torch

import toybook
from toybook.checkpoint import (
    checkpoint_files,
    load_checkpoint,
    load_snapshots,
    read_sidecar,
    record_evaluation,
    save_checkpoint,
    sha256_file,
    sign_sidecar,
)
from toybook.errors import CheckpointError, UnknownModelError
from toybook.training import TrainConfig, train
from toybook.zoo import SHIPPED_BUDGET_BYTES, SHIPPED_DIR, list_models

TASK = toybook.get_task("max_of_2")
CONFIG = toybook.ModelConfig.for_task(TASK, n_layers=1, n_heads=1, d_model=8, d_head=8, normalization_type=None, use_biases=False)


@pytest.fixture(scope="module")
def run():
    return train(TASK, CONFIG, TrainConfig(steps=20, batch_size=None, log_every=5, snapshot_every=10), progress=False)


@pytest.fixture
def saved(run, tmp_path):
    return save_checkpoint(run, tmp_path / "tiny")


def test_round_trip(run, saved):
    loaded = load_checkpoint(saved)
    tokens = TASK.all_inputs()
    assert torch.equal(loaded.model(tokens), run.model(tokens))
    assert not loaded.model.training
    meta = loaded.metadata
    assert meta["task"] == {"name": "max_of_2", "params": {"train_gaps": [0, 1, 2, 17]}}
    assert toybook.ModelConfig.from_dict(meta["model_config"]) == CONFIG
    assert TrainConfig.from_dict(meta["train_config"]) == run.train_config
    assert meta["training"]["steps"] == 20 and meta["toybook_version"] == toybook.__version__
    assert meta["weights"]["sha256"] == sha256_file(saved.with_suffix(".safetensors"))
    assert [row["step"] for row in meta["history"]] == [0, 5, 10, 15, 20]
    assert meta["final_metrics"]["eval_acc"] == pytest.approx(run.final_metrics["eval_acc"])
    for path in (saved, saved.with_suffix(".safetensors"), saved.with_suffix("")):
        assert load_checkpoint(path).name == "tiny"


def test_snapshots_round_trip(run, saved):
    snapshots = load_snapshots(saved)
    assert list(snapshots) == [0, 10, 20]
    for key, value in run.snapshots[10].items():
        assert torch.equal(snapshots[10][key], value)


def test_record_evaluation(saved):
    record_evaluation(saved, "exhaustive", {"n": 4096, "n_wrong": 3})
    assert read_sidecar(saved)["evaluations"]["exhaustive"]["n_wrong"] == 3
    load_checkpoint(saved)  # weights untouched, checksum still valid


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_sidecar(change, sign=False):
    """An edit by hand; ``sign=True``: a deliberate one, re-signed with `sign_sidecar`,
    which leaves only the deeper checks to catch what is wrong with it."""
    def apply(sidecar):
        meta = json.loads(sidecar.read_text())
        change(meta)
        sidecar.write_text(json.dumps(meta))
        if sign:
            sign_sidecar(sidecar)
    return apply


def signed_edit(change):
    return edit_sidecar(change, sign=True)


def truncate_and_rehash(sidecar):
    weights = sidecar.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:100])
    signed_edit(lambda m: m["weights"].update(sha256=sha256_file(weights)))(sidecar)


TAMPERING = [
    (lambda s: flip_a_byte(s.with_suffix(".safetensors")), "checksum mismatch for tiny.safetensors"),
    (truncate_and_rehash, "cannot read tiny.safetensors as safetensors"),
    (lambda s: s.with_suffix(".safetensors").unlink(), "weights .* do not exist"),
    (lambda s: s.unlink(), "sidecar .* does not exist"),
    (lambda s: s.write_text("{not json"), "not valid JSON"),
    (lambda s: s.write_text("[]"), "not a toybook checkpoint"),
    (edit_sidecar(lambda m: m.update(format_version=99)), "format version 99"),
    (edit_sidecar(lambda m: m.update(format_version=1)), "format version 1.*sign_sidecar"),
    (edit_sidecar(lambda m: m.pop("checksums")), "no 'checksums' entry"),
    # edits by hand: the checksums name what changed
    (edit_sidecar(lambda m: m["model_config"].update(act_fn="gelu")), r"modified outside toybook \(changed: model_config.act_fn\)"),
    (edit_sidecar(lambda m: m["evaluations"].update(exhaustive={"n": 4096, "n_wrong": 0})), r"\(added: evaluations.exhaustive; removed: evaluations\)"),
    (edit_sidecar(lambda m: m["training"]["environment"].update(threads=64)), r"\(changed: training.environment\)"),
    (edit_sidecar(lambda m: m["training"].update(wall_time_s=1.0)), r"\(changed: training.wall_time_s\)"),
    (edit_sidecar(lambda m: m["history"][-1].update(eval_acc=1.0)), r"\(changed: history\)"),
    (edit_sidecar(lambda m: m["weights"].update(sha256="0" * 64)), r"\(changed: weights.sha256\)"),
    (edit_sidecar(lambda m: m.update(note="hi")), r"\(added: note\)"),
    (edit_sidecar(lambda m: m["checksums"].update({"history": "0" * 64})), r"\(changed: history\)"),
    # deliberate, re-signed edits: the deeper checks still catch a sidecar that lies
    (signed_edit(lambda m: m["model_config"].update(d_model=16, d_head=16)), "checkpoint/config mismatch.*'embed.weight' has shape"),
    (signed_edit(lambda m: m["model_config"].update(n_layers=2)), "checkpoint/config mismatch.*lack"),
    (signed_edit(lambda m: m["model_config"].update(d_vocab=70)), "invalid configuration.*d_vocab=70"),
    (signed_edit(lambda m: m["task"].update(name="maxof2")), "invalid configuration.*unknown task"),
    (signed_edit(lambda m: m["model_config"].update(width=3)), "unknown ModelConfig fields"),
    (signed_edit(lambda m: m.pop("weights")), "no 'weights' entry"),
    (signed_edit(lambda m: m["weights"].update(sha256="0" * 64)), "checksum mismatch for tiny.safetensors"),
]


@pytest.mark.parametrize("tamper, message", TAMPERING)
def test_tampering_is_detected(saved, tamper, message):
    tamper(saved)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(saved)


def test_a_signed_deliberate_edit_loads(saved):
    signed_edit(lambda m: m.update(note="trained for the seminar"))(saved)
    assert load_checkpoint(saved).metadata["note"] == "trained for the seminar"


def test_record_evaluation_re_signs(saved):
    record_evaluation(saved, "sample", {"n": 10, "n_wrong": 1})
    assert read_sidecar(saved)["evaluations"]["sample"] == {"n": 10, "n_wrong": 1}
    edit_sidecar(lambda m: m["evaluations"]["sample"].update(n_wrong=0))(saved)
    with pytest.raises(CheckpointError, match=r"\(changed: evaluations.sample\)"):
        read_sidecar(saved)


@pytest.mark.parametrize("interrupt_at", ["sidecar_text", "sha256_file"])
def test_an_interrupted_save_leaves_the_previous_checkpoint(run, saved, monkeypatch, interrupt_at):
    before = {path.name: path.read_bytes() for path in saved.parent.iterdir()}
    better = train(TASK, CONFIG, TrainConfig(steps=25, batch_size=None, log_every=5), progress=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"toybook.checkpoint.{interrupt_at}", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(better, saved)
    assert {path.name: path.read_bytes() for path in saved.parent.iterdir()} == before
    monkeypatch.undo()
    load_checkpoint(saved)
    save_checkpoint(better, saved)  # and a save that completes replaces it
    assert load_checkpoint(saved).metadata["training"]["steps"] == 25
    assert not list(saved.parent.glob(".*.tmp"))


def test_corrupted_snapshots_are_detected(saved):
    flip_a_byte(checkpoint_files(saved)[2])
    with pytest.raises(CheckpointError, match="checksum mismatch for tiny.snapshots"):
        load_snapshots(saved)


# ---- shipped models ---------------------------------------------------------------------


def test_max_of_2_shipped_is_exhaustively_correct(max_of_2_checkpoint):
    model = toybook.load_model("max_of_2")
    assert not model.training
    tokens = TASK.all_inputs()
    logits = model(tokens)
    assert logits.shape == (4096, 3, 64)
    assert torch.equal(logits[:, -1].argmax(-1), tokens[:, :2].max(1).values)
    recorded = max_of_2_checkpoint.metadata["evaluations"]["exhaustive"]
    assert recorded["n"] == 4096 and recorded["n_wrong"] == 0


def test_shipped_checkpoints_verify_and_fit_the_budget():
    infos = list_models()
    assert "max_of_2" in {info.name for info in infos}
    for info in infos:
        load_checkpoint(info.path)  # checksum and config verified
    total = sum(path.stat().st_size for path in SHIPPED_DIR.iterdir() if path.is_file())
    assert total <= SHIPPED_BUDGET_BYTES


def test_shipped_copy_tampering_is_detected(tmp_path):
    for path in SHIPPED_DIR.glob("max_of_2.*"):
        shutil.copy(path, tmp_path / path.name)
    flip_a_byte(tmp_path / "max_of_2.safetensors")
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "max_of_2")


def test_load_model_unknown_names(monkeypatch, tmp_path):
    with pytest.raises(UnknownModelError, match="no shipped model 'max_of_3'; shipped models: .*max_of_2"):
        toybook.load_model("max_of_3")
    monkeypatch.setattr(toybook.zoo, "SHIPPED_DIR", tmp_path)  # a package with nothing shipped
    with pytest.raises(UnknownModelError, match="task 'addition' has no shipped model yet"):
        toybook.load_model("addition")


def test_a_seed_name_loads_the_shipped_model_trained_with_that_seed():
    from toybook.zoo import shipped_path

    assert read_sidecar(shipped_path("addition_s1"))["train_config"]["seed"] == 1
    assert shipped_path("addition_s1") == shipped_path("addition")
    assert shipped_path("addition_s2").name == "addition_s2.json"  # a seed with its own file
    with pytest.raises(UnknownModelError, match="no shipped model 'addition_s9'"):
        shipped_path("addition_s9")
    with pytest.raises(UnknownModelError, match="no shipped model 'addition_s0'"):
        shipped_path("addition_s0")  # addition was trained with seed 1, not 0


def test_recorded_evaluations_summarize_in_one_line():
    from toybook.checkpoint import summarize_evaluation

    assert summarize_evaluation({"n": 4096, "n_wrong": 3}) == "4,093/4,096 correct"
    assert summarize_evaluation({"n": 10, "summary": "last position 99.5%"}) == "last position 99.5%"
    assert summarize_evaluation({"loss": 0.1}) == "recorded (no summary)"
