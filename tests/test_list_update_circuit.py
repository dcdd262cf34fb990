"""The list-update chapter's claims, asserted on the shipped checkpoint, and the helpers
(attention forcing, attribution, patching, ablation) they rest on.

Thresholds are loose on purpose: they check the finding (which head, which position),
not the third decimal of the shipped model's numbers.
"""

import pytest
import torch

import toybook
from toybook.errors import ToybookError
from toybook.analysis.ablation import mean_activation, replace_hook, run_with_ablations
from toybook.analysis.attribution import answer_logit_attribution
from toybook.analysis.interventions import run_with_hard_attention
from toybook.tasks.list_update.analysis import (
    PATCH_HOOKS, QUERY_POS, ablation_effects, hypothesised_sources, patching_pairs,
    swapped_sources, updated_and_kept_accuracy,
)
from toybook.analysis.patching import patching_grid, recovered_fraction

TASK = toybook.get_task("list_update")
L0_OUT, L1_OUT = 1, 3  # rows of PATCH_HOOKS


@pytest.fixture(scope="module")
def model():
    return toybook.load_model("list_update")


@pytest.fixture(scope="module")
def inputs():
    return TASK.generate(5000, seed=99)


@pytest.fixture(scope="module")
def recovered(model):
    result = {}
    for pair in patching_pairs(TASK, n=200, seed=1):
        patched, clean, corrupted = patching_grid(model, pair.clean, pair.corrupted, PATCH_HOOKS, pair.metric)
        result[pair.varied, pair.answer] = recovered_fraction(patched, clean, corrupted)[..., 0]
    return result


def test_recorded_exhaustive_result_is_complete_and_perfect(model):
    recorded = toybook.load_shipped("list_update").metadata["evaluations"]["exhaustive"]
    assert recorded["n"] == TASK.n_inputs == 18_750_000
    assert recorded["start"] == 0 and recorded["stop"] == TASK.n_inputs
    assert recorded["n_wrong"] == 0 and recorded["wrong_per_pos"] == [0, 0, 0]
    assert recorded["n_by_group"] == {str(i): 6_250_000 for i in range(3)}
    assert all(wrong == [0, 0, 0] for wrong in recorded["wrong_by_group"].values())
    assert recorded["min_margin"] > 0
    hardest = recorded["hardest"][0]
    tokens = torch.tensor([hardest["tokens"]])
    with torch.no_grad():
        margin = TASK.answer_logits(model(tokens))[0, TASK.answer_names.index(hardest["answer"])]
        target = TASK.targets(tokens)[0, TASK.answer_names.index(hardest["answer"])]
        others = torch.cat([margin[:target], margin[target + 1:]])
    assert float(margin[target] - others.max()) == pytest.approx(hardest["margin"], abs=1e-3)


def test_sampled_accuracy_as_in_the_chapter(model):
    result = toybook.evaluate(model, TASK, TASK.generate(100_000, seed=2024))
    assert result.n_wrong == 0


def test_l1_reads_the_hypothesised_source(model, inputs):
    _, cache = model.run_with_cache(inputs, names_filter="blocks.1.attn.hook_pattern")
    pattern = cache["blocks.1.attn.hook_pattern"][:, 0]
    sources = hypothesised_sources(inputs)
    rows = torch.arange(len(inputs))
    on_source = torch.stack([pattern[rows, q, sources[:, k]] for k, q in enumerate(QUERY_POS)], 1)
    assert on_source.mean(0).min() > 0.9


def test_forcing_l1_attention_decides_the_answer(model, inputs):
    forced = run_with_hard_attention(model, inputs, QUERY_POS, hypothesised_sources(inputs), layer=1)
    assert TASK.correct(forced, inputs).double().mean() > 0.999
    swapped = run_with_hard_attention(model, inputs, QUERY_POS, swapped_sources(inputs), layer=1)
    updated = inputs[:, 5, None] == torch.arange(3)
    other = torch.where(updated, inputs[:, 1:4], inputs[:, 6:7].expand(-1, 3))
    assert (TASK.answer_logits(swapped).argmax(-1) == other).double().mean(0).min() > 0.9


def test_attribution_is_exact_and_l1_dominates(model, inputs):
    names, attribution = answer_logit_attribution(model, TASK, inputs)
    assert names == ["hook_embed", "hook_pos_embed", "blocks.0.hook_attn_out", "blocks.1.hook_attn_out"]
    logits = TASK.answer_logits(model(inputs))
    reference = logits.gather(-1, TASK.targets(inputs)[..., None])[..., 0] - logits.mean(-1)
    assert torch.allclose(attribution.sum(1), reference, atol=1e-3)
    mean = attribution.mean(0)  # [C, A]
    assert bool((mean[3] > 0.8 * mean.sum(0)).all())


def test_patching_localises_idx_elt_and_a(recovered):
    for k in range(3):
        assert recovered["idx", k][0, 5] > 0.95  # the idx token carries the difference
    for k in (0, 1):  # K-composition: L0 output at the elt position
        assert recovered["idx", k][L0_OUT, 6] > 0.9
    assert recovered["idx", 2][L0_OUT, 9] > 0.9  # Q-composition at the query
    assert abs(recovered["idx", 2][L0_OUT, 6]) < 0.1
    assert recovered["elt", 2][L0_OUT, 7] > 0.9  # V-composition through the second NL
    for kind in ("idx", "elt", "a_k"):
        for k in range(3):
            # L1's output at the answer carries (nearly) all of it; the rest is L0's direct push
            assert recovered[kind, k][L1_OUT, QUERY_POS[k]] > 0.85


def test_ablations_break_what_the_circuit_says(model, inputs):
    effects = ablation_effects(model, TASK, inputs)
    assert bool((effects["none"] == 1).all())
    l0 = effects["L0 head, zero-ablated"]
    assert l0[0].max() < 0.2 and l0[1].min() > 0.8  # updated answers fail, kept survive
    l1 = effects["L1 head, zero-ablated"]
    assert l1[1].max() < 0.1 and l1[0, :2].min() > 0.8 and l1[0, 2] < 0.1
    assert effects["positional embeddings, zero-ablated"].max() < 0.8


def test_ablation_helpers(model, inputs):
    with pytest.raises(ValueError, match="'zero' or a tensor"):
        replace_hook("one")
    with pytest.raises(ToybookError, match="no activation named"):
        mean_activation(model, inputs[:10], "blocks.7.hook_attn_out")
    mean = mean_activation(model, inputs, "blocks.1.hook_attn_out")
    assert mean.shape == (1, TASK.n_ctx, 128)
    zero = run_with_ablations(model, inputs, {"blocks.1.hook_attn_out": "zero"})
    assert updated_and_kept_accuracy(TASK, zero, inputs)[1].max() < 0.1
    assert torch.equal(run_with_ablations(model, inputs, {}), model(inputs))


def test_patching_checks_its_inputs(model):
    pair = patching_pairs(TASK, n=4)[0]
    with pytest.raises(ValueError, match="differ in shape"):
        patching_grid(model, pair.clean, pair.corrupted[:2], PATCH_HOOKS, pair.metric)
    with pytest.raises(ToybookError, match="no activation named"):
        patching_grid(model, pair.clean, pair.corrupted, ["blocks.5.hook_attn_out"], pair.metric)


def test_patching_pairs_differ_where_they_should():
    for pair in patching_pairs(TASK, n=300, seed=3):
        changed = (pair.clean != pair.corrupted).any(0).nonzero().flatten().tolist()
        varied_at = {"idx": 5, "elt": 6, "a_k": 1 + pair.answer}[pair.varied]
        assert changed[0] == varied_at and all(p >= 8 for p in changed[1:])
        assert bool((pair.clean_answer != pair.corrupted_answer).all())
        assert torch.equal(TASK.targets(pair.clean)[:, pair.answer], pair.clean_answer)
        assert torch.equal(TASK.targets(pair.corrupted)[:, pair.answer], pair.corrupted_answer)


def test_the_default_route_claims_can_fail():
    """The composition claims fail where their mechanism is absent: on an untrained model
    every one of them, and on a batchwise seed whose token outweighs layer 0's output at
    the list, the V-composition claim (its value is then about chance, 1/50)."""
    from toybook.claims import check_claims

    names = {"l0_mean_spares_kept", "l1_default_reads_list", "l1_follows_l0_idx",
             "l1_copies_l0_value", "idx_through_l0_qk"}
    checkpoint = toybook.load_shipped("list_update")
    untrained = toybook.build_model(checkpoint.model_config, seed=5)
    failing = {r.claim.name for r in check_claims("list_update", untrained) if not r.holds}
    assert names <= failing
    broken = {r.claim.name: r.value for r in check_claims(
        "list_update", toybook.load_model("list_update_shortformer_batchwise_s1")) if not r.holds}
    assert "l1_copies_l0_value" in broken and broken["l1_copies_l0_value"] < 0.05


def test_each_model_s_own_circuit_follows_what_was_measured_on_it():
    """``own_circuit`` keeps layer 0 where the route and the query paths say; on seed 1 (b2
    from the second NL, idx into b1 by the query) the measured circuit recovers the loss, and
    one built as if it read elt, all by key, falls far short: the number can fail."""
    from toybook.tasks.list_update.analysis import ELT_POS, NL_POS
    from toybook.analysis.faithfulness import faithfulness
    from toybook.tasks.list_update.hypotheses import measured_own_circuit, own_circuit

    def layer0(reading):
        return [p.component.positions[0] for p in reading.parts if p.component.hook.startswith("blocks.0.")]

    assert layer0(own_circuit(ELT_POS, [0.0, 0.1, 0.2])) == [1, 2, 3, 6]
    assert layer0(own_circuit(NL_POS, [0.0, 0.9, 0.6])) == [1, 2, 3, 6, 7, 8, 9]
    with pytest.raises(ToybookError, match="route is 6"):
        own_circuit(5, [0.0, 0.0, 0.0])
    s1 = toybook.load_model("list_update_s1")
    measured = measured_own_circuit(s1, TASK)
    assert layer0(measured) == [1, 2, 3, 6, 7, 8]
    assert faithfulness(s1, TASK, measured, n_random=0, n_subsets=0).recovered >= 0.95
    assert faithfulness(s1, TASK, own_circuit(ELT_POS, [0.0, 0.0, 0.0]), n_random=0, n_subsets=0).recovered < 0.9


def test_direct_paths_and_the_random_input_baseline(model):
    """idx has no direct path into layer 1; the two value roads (direct, through layer 0)
    add up to about the whole of an a_k change; a random input carries less than the clean
    one through the key path."""
    from toybook.tasks.list_update.analysis import composition_paths, path_effects

    pairs = patching_pairs(TASK, n=50, seed=3)
    through_l0 = composition_paths(model, pairs)
    direct = composition_paths(model, pairs, sender="direct")
    baseline = composition_paths(model, pairs, donors=TASK.generate(50, seed=4))
    assert max(abs(direct["idx", r, k]) for r in "kq" for k in range(3)) < 0.05
    for k in range(3):
        assert 0.85 < through_l0["a_k", "v", k] + direct["a_k", "v", k] < 1.1
    assert baseline["idx", "k", 0] < 0.6 < through_l0["idx", "k", 0]
    recovered, accuracy = path_effects(model, pairs)
    assert recovered == through_l0 and set(accuracy) == set(recovered)
    assert accuracy["idx", "k", 0] > 0.9 and accuracy["idx", "q", 0] < 0.1  # b0's idx: by key
    with pytest.raises(ToybookError, match="sender is one of"):
        composition_paths(model, pairs, sender="L1")
    with pytest.raises(ToybookError, match="donors"):
        composition_paths(model, pairs, donors=TASK.generate(7, seed=4))


def _with_state(model, change):
    """A CPU copy of ``model`` with ``change(state)`` applied to its state dict."""
    from toybook.model import copy_to

    copy = copy_to(model, "cpu")
    state = {name: value.clone() for name, value in copy.state_dict().items()}
    change(state)
    copy.load_state_dict(state)
    return copy


def test_the_weight_reading_sees_copying_and_composition_and_loses_them_when_they_are_cut(model):
    """The weights' readings can fail: on the shipped model every OV circuit copies and the
    composition terms outweigh the positional default; with the unembedding's columns
    shuffled the OV circuits copy no more than chance, and with layer 0's output weights
    zeroed there is no composition left to read."""
    from toybook.tasks.list_update.weights import weight_reading

    reading = weight_reading(model, TASK)
    assert min(reading.ov_copies, reading.virtual_copies, reading.l0_copies) >= 0.95
    assert all(max(k, q) + d > 0 for k, q, d in zip(reading.k_contrast, reading.q_contrast, reading.positional_default))
    order = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    shuffled = _with_state(model, lambda s: s.update({"unembed.weight": s["unembed.weight"][order]}))
    assert weight_reading(shuffled, TASK).ov_copies <= 0.1
    cut = _with_state(model, lambda s: s.update({"blocks.0.attn.o.weight": torch.zeros_like(s["blocks.0.attn.o.weight"])}))
    cut_reading = weight_reading(cut, TASK)
    assert max(map(abs, cut_reading.k_contrast + cut_reading.q_contrast)) < 1e-6


def test_seed_1s_b2_needs_keys_and_values_together():
    """The appendix's account of seed 1's b2: layer 0's output carried into layer 1's keys
    alone brings back about 0.7 of an idx change and few right answers, into its values alone
    nothing, into both all of it."""
    from toybook.tasks.list_update import record
    from toybook.tasks.list_update.analysis import idx_receiver_sets

    sets = idx_receiver_sets(toybook.load_model("list_update_s1"), record.path_pairs(TASK), ("k", "v", "kv"))
    assert 0.5 < sets["k", 2][0] < 0.9 and sets["k", 2][1] < 0.5
    assert abs(sets["v", 2][0]) < 0.05 and sets["kv", 2][0] > 0.95 and sets["kv", 2][1] > 0.95
