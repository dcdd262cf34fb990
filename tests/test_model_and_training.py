"""Model construction, input checks, and the trainer."""


import pytest
import torch

import toybook
from toybook.errors import ToybookError
from toybook.model import ACTIVATIONS, build_model, count_parameters
from toybook.training import TrainConfig, train

LIST_UPDATE = toybook.get_task("list_update")
TINY = toybook.ModelConfig.for_task(
    LIST_UPDATE, n_layers=1, n_heads=1, d_model=16, d_head=16, normalization_type=None,
    use_biases=False,
)
SHORT = TrainConfig(steps=30, batch_size=64, lr=3e-3, log_every=10, eval_size=256)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_initial_weights():
    assert same_weights(weights(toybook.build_model(TINY, seed=4)), weights(toybook.build_model(TINY, seed=4)))
    assert not same_weights(weights(toybook.build_model(TINY, seed=4)), weights(toybook.build_model(TINY, seed=5)))


def test_logits_shape_and_frozen_zero_biases():
    model = toybook.build_model(TINY)
    assert model(LIST_UPDATE.generate(5)).shape == (5, 11, 50)
    biases = [(n, p) for n, p in model.named_parameters() if n.endswith("bias")]
    assert biases and all(not p.requires_grad and not p.any() for _, p in biases)
    with_biases = toybook.build_model(
        toybook.ModelConfig.for_task(LIST_UPDATE, n_layers=1, n_heads=1, d_model=16, d_head=16)
    )
    assert count_parameters(with_biases) > count_parameters(model)


ARCH = dict(n_layers=1, n_heads=1, d_model=8, d_head=8)


def test_every_allowed_activation_builds_a_model():
    for act_fn in ACTIVATIONS:
        config = toybook.ModelConfig.for_task(LIST_UPDATE, **ARCH, d_mlp=16, act_fn=act_fn)
        assert build_model(config, seed=0)(LIST_UPDATE.generate(2, seed=0)).shape[-1] == LIST_UPDATE.d_vocab_out


def test_config_must_fit_the_task():
    wrong = toybook.ModelConfig.for_task(toybook.get_task("max_of_2"), n_layers=1, n_heads=1, d_model=8, d_head=8)
    with pytest.raises(ToybookError, match="d_vocab=65 does not match task 'list_update'"):
        train(LIST_UPDATE, wrong, SHORT, progress=False)


def test_trainer_reduces_loss():
    run = train(LIST_UPDATE, TINY, TrainConfig(steps=150, batch_size=128, lr=1e-2, log_every=50, eval_size=512), progress=False)
    first, last = run.history[0], run.history[-1]
    assert [row["step"] for row in run.history] == [0, 50, 100, 150]
    assert last["eval_loss"] < 0.6 * first["eval_loss"]
    assert last["train_loss"] < 0.6 * first["train_loss"]
    assert not run.model.training
    assert all(not p.any() for n, p in run.model.named_parameters() if n.endswith("bias"))


def test_same_training_seed_identical_weights():
    a, b = (train(LIST_UPDATE, TINY, SHORT, progress=False) for _ in range(2))
    assert same_weights(weights(a.model), weights(b.model))
    assert a.history == b.history
    c = train(LIST_UPDATE, TINY, TrainConfig(**{**SHORT.to_dict(), "seed": 1}), progress=False)
    assert not same_weights(weights(a.model), weights(c.model))


def test_snapshots_and_task_metrics():
    addition = toybook.get_task("addition", n_digits=3, enrich_batch_prob=0.6)
    config = toybook.ModelConfig.for_task(addition, n_layers=1, n_heads=2, d_model=16, d_head=8, d_mlp=32)
    run = train(addition, config, TrainConfig(steps=20, batch_size=32, log_every=10, snapshot_every=5, eval_size=500), progress=False)
    assert sorted(run.snapshots) == [0, 5, 10, 15, 20]
    assert not same_weights(run.snapshots[0], run.snapshots[20])
    assert same_weights(run.snapshots[20], weights(run.model))
    row = run.history[-1]
    assert {"eval_loss_BA", "eval_loss_UC1", "eval_loss_US9", "train_loss_BA"} <= set(row)
    assert len(row["eval_loss_per_pos"]) == 4


def test_full_batch_training_uses_the_fixed_set():
    task = toybook.get_task("max_of_2")
    config = toybook.ModelConfig.for_task(task, n_layers=1, n_heads=1, d_model=8, d_head=8, normalization_type=None)
    run = train(task, config, TrainConfig(steps=3, batch_size=None, log_every=1), progress=False)
    # eval metrics are on all 4096 pairs; training metrics on the 408 training pairs
    assert run.history[0]["eval_acc"] * 4096 == pytest.approx(round(run.history[0]["eval_acc"] * 4096))
    assert run.history[0]["train_acc"] * 408 == pytest.approx(round(run.history[0]["train_acc"] * 408))


@pytest.mark.parametrize(
    "config, step, lr",
    [
        (TrainConfig(lr=1.0, steps=100), 50, 1.0),
        (TrainConfig(lr=1.0, steps=100, warmup_steps=10), 4, 0.5),
        (TrainConfig(lr=1.0, steps=110, warmup_steps=10, schedule="cosine"), 10, 1.0),
        (TrainConfig(lr=1.0, steps=110, warmup_steps=10, schedule="cosine"), 60, 0.5),
        (TrainConfig(lr=1.0, steps=110, warmup_steps=10, schedule="cosine"), 110, 0.0),
    ],
)
def test_learning_rate_schedule(config, step, lr):
    assert config.lr_at(step) == pytest.approx(lr, abs=1e-12)


def test_full_batch_needs_a_fixed_training_set():
    with pytest.raises(ToybookError, match="batch_size must be set"):
        train(LIST_UPDATE, TINY, TrainConfig(steps=1, batch_size=None), progress=False)


def test_the_progress_bar_counts_optimizer_steps(capsys):
    """The bar shows 6/6 for 6 steps (the extra loop pass only measures the final weights)."""
    run = train(LIST_UPDATE, TINY, TrainConfig(steps=6, batch_size=16, log_every=3, eval_size=64), progress=True)
    bar = capsys.readouterr().err
    assert "6/6" in bar and "7/" not in bar
    assert [row["step"] for row in run.history] == [0, 3, 6]
