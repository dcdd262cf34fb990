"""Shortformer positions: learned positions added to the query and key inputs of every
attention layer, never to the residual stream or the values — proved exactly, and kept
through hooks, caching, training, saving and the shared-prefix check."""

import pytest
import torch

import toybook
from toybook.analysis.circuits import one_layer_circuits
from toybook.checkpoint import load_checkpoint, save_checkpoint
from toybook.errors import ToybookError
from toybook.model import ModelConfig, build_model
from toybook.shared_prefix import answer_logits_by_prefix
from toybook.training import TrainConfig, train

TASK = toybook.get_task("list_update")


def shortformer(n_layers=2, use_biases=False, seed=1):
    config = ModelConfig.for_task(TASK, n_layers=n_layers, n_heads=1, d_model=32, d_head=32,
                                  d_mlp=None, normalization_type=None, use_biases=use_biases,
                                  positional_embedding_type="shortformer")
    return build_model(config, seed=seed)


def by_hand(model, tokens):
    """The shortformer forward pass written out: positions enter q and k only."""
    T = tokens.shape[1]
    E, P = model.W_E.double(), model.W_pos.double()[:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    resid = E[tokens]
    for layer in range(model.cfg.n_layers):
        W_Q, W_K, W_V, W_O = (w[layer, 0].double() for w in (model.W_Q, model.W_K, model.W_V, model.W_O))
        q, k, v = (resid + P) @ W_Q, (resid + P) @ W_K, resid @ W_V
        scores = (q @ k.transpose(-1, -2) / W_Q.shape[-1] ** 0.5).masked_fill(~causal, float("-inf"))
        resid = resid + scores.softmax(-1) @ v @ W_O
    return resid @ model.W_U.double()


@torch.no_grad()
def test_the_forward_pass_is_the_shortformer_s_exactly():
    model = shortformer().double()
    tokens = TASK.generate(20, seed=0)
    assert torch.allclose(model(tokens), by_hand(model, tokens), atol=1e-10, rtol=0)


@torch.no_grad()
def test_block_0_reads_the_token_embedding_alone_and_positions_change_scores_not_values():
    model = shortformer()
    tokens = TASK.generate(8, seed=2)
    _, cache = model.run_with_cache(tokens)
    assert torch.equal(cache["blocks.0.hook_resid_pre"], model.W_E[tokens])
    with torch.no_grad():
        model.W_pos.add_(torch.randn_like(model.W_pos))  # other positions, same tokens
    _, moved = model.run_with_cache(tokens)
    assert torch.equal(moved["blocks.0.attn.hook_v"], cache["blocks.0.attn.hook_v"])
    assert not torch.allclose(moved["blocks.0.attn.hook_attn_scores"], cache["blocks.0.attn.hook_attn_scores"])


def test_hooks_survive_reset_and_run_with_hooks():
    model = shortformer()
    tokens = TASK.generate(4, seed=3)
    with torch.no_grad():
        before = model(tokens)
        model.reset_hooks()
        assert torch.equal(model(tokens), before)
        assert torch.equal(model.run_with_hooks(tokens, fwd_hooks=[]), before)


def test_training_moves_the_positions_and_a_saved_model_keeps_them(tmp_path):
    config = shortformer().toybook_config
    result = train(TASK, config, TrainConfig(steps=5, batch_size=32, lr=1e-2, log_every=5,
                                             eval_size=64, seed=0), progress=False)
    start = build_model(config, seed=0)
    assert not torch.equal(result.model.W_pos, start.W_pos)  # gradients reach W_pos
    save_checkpoint(result, tmp_path / "sf")
    loaded = load_checkpoint(tmp_path / "sf").model
    tokens = TASK.generate(6, seed=4)
    with torch.no_grad():
        assert torch.equal(loaded(tokens), result.model(tokens))
    assert loaded.toybook_config.positional_embedding_type == "shortformer"


def test_the_shared_prefix_check_computes_shortformer_positions():
    model = shortformer(n_layers=3, use_biases=True, seed=5).double()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    tokens = TASK.inputs(150 * 10, 150 * 13)
    fast = answer_logits_by_prefix(model, tokens, 5, 150, TASK.answer_positions)
    with torch.no_grad():
        plain = TASK.answer_logits(model(tokens))
    assert (fast - plain).abs().max() < 1e-9


def test_weight_readings_for_standard_positions_refuse_a_shortformer():
    with pytest.raises(ToybookError, match="shortformer positions"):
        one_layer_circuits(shortformer(n_layers=1), 50, 7)


def test_the_shipped_shortformer_model_is_exact_and_reads_b2_from_the_second_nl():
    """What the list-update chapter says of `list_update_shortformer`."""
    from toybook.tasks.list_update.analysis import architecture_readings

    checkpoint = toybook.load_shipped("list_update_shortformer")
    assert checkpoint.model_config.positional_embedding_type == "shortformer"
    exhaustive = checkpoint.metadata["evaluations"]["exhaustive"]
    assert exhaustive["n"] == 18_750_000 and exhaustive["n_wrong"] == 0
    assert exhaustive["method"] == "shared_prefix"
    readings = architecture_readings(checkpoint.model, TASK, TASK.generate(2000, seed=99))
    assert readings["L1 for updated b2 → second NL (7)"] >= 0.9
    assert readings["L1 for updated b2 → elt (6)"] <= 0.01
    assert readings["accuracy, L1 forced onto this chapter's sources"] >= 0.999
    assert readings["accuracy, L1 forced onto the reference's sources"] < 0.99


def test_a_copy_keeps_weights_task_check_and_shortformer_hooks():
    from toybook.errors import InvalidTokensError
    from toybook.model import copy_to, cpu_copy

    model = toybook.load_model("list_update_shortformer")
    assert cpu_copy(model) is model
    copy = copy_to(model, "cpu")
    tokens = TASK.generate(64, seed=3)
    assert copy is not model and torch.equal(copy(tokens), model(tokens))
    with torch.no_grad():
        copy.W_pos.add_(1.0)  # the copy's hooks read the copy's positions
    assert not torch.equal(copy(tokens), model(tokens))
    bad = tokens.clone()
    bad[0, 5] = 7  # idx must be 0..2
    with pytest.raises(InvalidTokensError):
        copy(bad)
