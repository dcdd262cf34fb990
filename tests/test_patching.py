"""The one patching function, :func:`run_with_patches`: exactly the named entries copied,
its variants built on it, path patching through chosen receivers, bad input named."""

from __future__ import annotations

import pytest
import torch

import toybook
from toybook.analysis.patching import Patch, patched_answers, patching_grid, run_with_patches
from toybook.errors import ToybookError


@pytest.fixture(scope="module")
def addition_model():
    return toybook.load_model("addition")


@pytest.mark.parametrize("positions, heads", [
    ((5,), None), ((5, 7), None), (None, None), ((6, 9), (0, 2)), (None, (1,)), ((4,), (3,)),
])
def test_run_with_patches_writes_exactly_the_named_entries(addition_model, positions, heads):
    """Against a hand-written hook: the same entries copied, nothing else touched."""
    task = toybook.get_task("addition")
    tokens, source = task.generate(8, seed=1), task.generate(8, seed=2)
    hook = "blocks.0.attn.hook_z" if heads is not None else "blocks.0.hook_attn_out"
    _, cache = addition_model.run_with_cache(source, names_filter=hook)
    donor = cache[hook]
    every_position = range(tokens.shape[1]) if positions is None else positions

    def by_hand(activation, hook=None):
        out = activation.clone()
        for p in every_position:
            if heads is None:
                out[:, p] = donor[:, p]
            for h in heads or ():
                out[:, p, h] = donor[:, p, h]
        return out

    expected = addition_model.run_with_hooks(tokens, fwd_hooks=[(hook, by_hand)])
    got = run_with_patches(addition_model, tokens, [Patch(hook, positions, heads)], source=source)
    assert torch.equal(got, expected)


def test_the_variants_are_run_with_patches(addition_model):
    task = toybook.get_task("addition")
    clean, corrupted = task.generate(6, seed=3), task.generate(6, seed=4)
    metric = lambda logits: logits[:, -1].max(-1).values.mean()[None]  # noqa: E731
    grid, _, _ = patching_grid(addition_model, clean, corrupted, ["blocks.1.hook_attn_out"], metric)
    for position in (0, 8, 17):
        alone = run_with_patches(addition_model, corrupted, [Patch("blocks.1.hook_attn_out", (position,))],
                                 source=clean)
        assert torch.equal(grid[0, position], metric(alone))
    sets = {"a": [Patch("blocks.0.hook_attn_out", (10,))], "b": [Patch("blocks.0.attn.hook_z", (12,), (1,))]}
    answers = patched_answers(addition_model, corrupted, clean, sets, lambda logits: logits.argmax(-1))
    for label, patches in sets.items():
        logits = run_with_patches(addition_model, corrupted, patches, source=clean)
        assert torch.equal(answers[label], logits.argmax(-1))


def test_run_with_patches_names_bad_input(addition_model):
    task = toybook.get_task("addition")
    tokens, patch = task.generate(4, seed=0), Patch("blocks.0.hook_attn_out", (3,))
    for call, message in [
        ({}, "exactly one of"),
        ({"source": tokens, "cache": {}}, "exactly one of"),
        ({"source": tokens[:2]}, "differ in shape"),
    ]:
        with pytest.raises(ToybookError, match=message):
            run_with_patches(addition_model, tokens, [patch], **call)
    with pytest.raises(ToybookError, match="no activation named"):
        run_with_patches(addition_model, tokens, [Patch("blocks.7.hook_attn_out")], source=tokens)


@pytest.fixture(scope="module")
def two_layer():
    """The list-update model: two attention-only layers, so L0's output reaches the logits
    directly and through L1's queries, keys and values."""
    task = toybook.get_task("list_update")
    return toybook.load_model("list_update"), task.generate(64, seed=5), task.generate(64, seed=6)


def test_path_patching_through_the_whole_residual_is_activation_patching(two_layer):
    model, tokens, source = two_layer
    sender = [Patch("blocks.0.hook_attn_out", (6, 7))]
    plain = run_with_patches(model, tokens, sender, source=source)
    path = run_with_patches(model, tokens, sender, source=source,
                            receivers=[Patch("blocks.1.hook_resid_pre")])
    assert torch.equal(path, plain)


def _record(store, name):
    """A hook entry that keeps the activation ``name`` (an alias: hook.name is canonical)."""
    def record(activation, hook):
        store[name] = activation.clone()
    return name, record


def _set(name, value):
    return name, lambda activation, hook: value.clone()


def test_a_value_path_leaves_the_attention_pattern_alone(two_layer):
    """L0 → L1 through values only (V-composition): L1 attends as on the unpatched input,
    and reads the values that the activation-patched run computes."""
    model, tokens, source = two_layer
    pattern, values = "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_v"
    unpatched, activation_patched, path_patched = {}, {}, {}
    with model.hooks(fwd_hooks=[_record(unpatched, pattern)]):
        model(tokens)
    with model.hooks(fwd_hooks=[_record(activation_patched, values)]):
        run_with_patches(model, tokens, [Patch("blocks.0.hook_attn_out")], source=source)
    with model.hooks(fwd_hooks=[_record(path_patched, pattern)]):
        path = run_with_patches(model, tokens, [Patch("blocks.0.hook_attn_out")], source=source,
                                receivers=[Patch(values)])
    assert torch.equal(path_patched[pattern], unpatched[pattern])
    by_hand = model.run_with_hooks(tokens, fwd_hooks=[_set(values, activation_patched[values])])
    assert torch.equal(path, by_hand)
    assert not torch.equal(path, model(tokens))


def test_frozen_activations_keep_their_own_values(addition_model):
    """Path patching L0's heads into layer 1 with MLP0 frozen: layer 1 sees the unpatched
    residual with only the heads' output changed, not MLP0's response to it."""
    task = toybook.get_task("addition")
    tokens, source = task.generate(16, seed=7), task.generate(16, seed=8)
    names = ["blocks.0.hook_attn_out", "blocks.1.hook_resid_pre"]
    _, own = addition_model.run_with_cache(tokens, names_filter=names)
    _, donor = addition_model.run_with_cache(source, names_filter=names)
    resid = own["blocks.1.hook_resid_pre"] - own["blocks.0.hook_attn_out"] + donor["blocks.0.hook_attn_out"]
    expected = addition_model.run_with_hooks(tokens, fwd_hooks=[_set("blocks.1.hook_resid_pre", resid)])
    senders, receivers = [Patch("blocks.0.hook_attn_out")], [Patch("blocks.1.hook_resid_pre")]
    frozen = run_with_patches(addition_model, tokens, senders, source=source, receivers=receivers,
                              frozen=["blocks.0.hook_mlp_out"])
    torch.testing.assert_close(frozen, expected, atol=1e-4, rtol=1e-4)
    unfrozen = run_with_patches(addition_model, tokens, senders, source=source, receivers=receivers)
    assert (unfrozen - expected).abs().max() > 1e-2
    with pytest.raises(ToybookError, match="both frozen and patched"):
        run_with_patches(addition_model, tokens, senders, source=source, receivers=receivers,
                         frozen=["blocks.0.hook_attn_out"])
    with pytest.raises(ToybookError, match="give receivers too"):
        run_with_patches(addition_model, tokens, senders, source=source, frozen=["blocks.0.hook_mlp_out"])


def test_resampling_takes_every_row_from_another_row(addition_model):
    from toybook.analysis.ablation import resample_order, resampled_activation

    order = resample_order(50, seed=3)
    assert sorted(order.tolist()) == list(range(50)) and not (order == torch.arange(50)).any()
    assert torch.equal(order, resample_order(50, seed=3))
    tokens = toybook.get_task("addition").generate(50, seed=1)
    _, cache = addition_model.run_with_cache(tokens, names_filter="blocks.0.hook_attn_out")
    resampled = resampled_activation(addition_model, tokens, "blocks.0.hook_attn_out", seed=3)
    assert torch.allclose(resampled, cache["blocks.0.hook_attn_out"][order], atol=1e-6)


@pytest.mark.parametrize("name, task, names, blocks", [
    ("addition", "addition", ["blocks.0.attn.hook_z"], 1),
    ("addition", "addition", ["blocks.0.hook_mlp_out", "blocks.0.hook_resid_post"], 1),
    ("addition", "addition", ["blocks.0.attn.hook_z", "blocks.1.hook_resid_pre"], None),
    ("addition", "addition", ["hook_embed"], None),
    ("list_update_shortformer", "list_update", ["blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z"], 1),
    ("max_of_2", "max_of_2", ["blocks.0.attn.hook_v"], None),
])
def test_activations_stop_after_the_blocks_they_need_with_the_full_run_s_values(name, task, names, blocks):
    """A run cut short after the last block the names need gives the full run's values bit
    for bit (shortformer's permanent hooks included); names outside the blocks run it all."""
    from toybook.evaluation import activations, blocks_needed

    model, tokens = toybook.load_model(name), toybook.get_task(task).generate(64, seed=4)
    assert blocks_needed(model, names) == blocks
    _, full = model.run_with_cache(tokens, names_filter=lambda hook: hook in names)
    cut = activations(model, tokens, names)
    assert set(cut) == set(names) and all(torch.equal(cut[hook], full[hook]) for hook in names)
