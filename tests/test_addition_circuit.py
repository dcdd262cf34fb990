"""The addition chapter's findings, asserted on the shipped 2-layer model.

Thresholds leave room for sampling noise (a few hundred question pairs per experiment)
but not for a different mechanism: each "carried by X" claim is a patching agreement of
≥ 95% where the chapter measures 98–100%, and each "not carried by X" one is ≤ 5% where
it measures below 1%.
"""

import itertools

import pytest
import torch

import toybook
from toybook.errors import ToybookError
from toybook.tasks.addition.analysis import question_sets
from toybook.tasks.addition.circuit import (
    Patch, base_add_pairs, carry_pairs, cascade_pairs, donor_agreement, donor_agreements,
    head_ablation_wrong,
    operand_positions, position_ablation_losses, prediction_position,
)

TASK = toybook.get_task("addition")


@pytest.fixture(scope="module")
def model():
    return toybook.load_model("addition")


def z_patch(layer, heads, position):
    return Patch(f"blocks.{layer}.attn.hook_z", (position,), tuple(heads))


def attn_patch(layer, position):
    return Patch(f"blocks.{layer}.hook_attn_out", (position,))


def test_positions_and_columns():
    assert [prediction_position(TASK, j) for j in range(6)] == [16, 15, 14, 13, 12, 11]
    assert operand_positions(TASK, 0) == (4, 10) and operand_positions(TASK, 4) == (0, 6)
    with pytest.raises(ValueError, match="A6"):
        prediction_position(TASK, 6)


def test_positions_whose_ablation_raises_the_loss(model):
    """After layer 0, only y3..y0 (7..10) and the answer positions (11..16) are used."""
    losses = position_ablation_losses(model, TASK, TASK.generate(600, seed=5), TASK.generate(1500, seed=1))
    used = {p for p in range(TASK.n_ctx) if losses[p].max() > 0.01}
    assert used == set(range(7, 17))
    for j in range(6):  # each answer position matters for its own digit only
        row = losses[prediction_position(TASK, j)]
        own = TASK.n_digits - j
        assert row[own] > 1.0
        assert torch.cat([row[:own], row[own + 1:]]).max() < 0.01


def test_base_add_is_computed_by_two_layer0_heads(model):
    """Patching L0H0 + L0H1 at A_j's position carries column j's base add; either alone or
    layer 1 does not."""
    for j in range(TASK.n_digits):
        pairs, q = base_add_pairs(TASK, j, n=400, seed=100 + j), prediction_position(TASK, j)
        assert donor_agreement(model, TASK, pairs, [z_patch(0, [0, 1], q)]) >= 0.95
        assert donor_agreement(model, TASK, pairs, [z_patch(0, [0], q)]) <= 0.4
        assert donor_agreement(model, TASK, pairs, [attn_patch(1, q)]) <= 0.05


def test_ablating_a_base_add_head_breaks_its_digit(model):
    """Mean-ablating L0H0 at position 16 breaks many A0 answers; no layer-1 head there does."""
    tokens = torch.cat([TASK.generate(200, seed=3), *question_sets(TASK, per_layout=3, seed=4).values()])
    wrong = head_ablation_wrong(model, TASK, tokens, TASK.generate(1000, seed=1), positions=[16])
    a0 = wrong[0, 0, 0, :, -1].float().mean()
    assert a0 > 0.4
    assert wrong[1].float().mean(2).max() < 0.05  # no single layer-1 head matters there


def test_last_layer_ablations_away_from_answers_are_skipped_exactly(model):
    """The shortcuts in head_ablation_wrong (no forward pass for a last-layer head at a
    position that predicts no answer, or for any head after the last answer) give what
    running the ablation gives, to the last bit."""
    from toybook.analysis.ablation import mean_activation, overwrite_hook

    tokens, reference = TASK.generate(300, seed=8), TASK.generate(500, seed=9)
    positions = [3, 8, 17]  # nothing is predicted there (answers: 11..16)
    wrong = head_ablation_wrong(model, TASK, tokens, reference, positions=positions)
    with torch.no_grad():
        unablated = TASK.answer_logits(model(tokens))
    for layer, index, head in itertools.product(range(2), range(len(positions)), range(4)):
        if layer == 0 and positions[index] != 17:
            continue  # layer 0 reaches later answers from positions 3 and 8
        name = f"blocks.{layer}.attn.hook_z"
        mean = mean_activation(model, reference, name)[0]
        hook = overwrite_hook((slice(None), positions[index], head), mean[positions[index], head])
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
        assert torch.equal(TASK.answer_logits(logits), unablated)  # bit for bit
        assert torch.equal(wrong[layer, head, index], ~TASK.correct(logits, tokens))


def test_one_donor_run_serves_every_patch_set(model):
    pairs = carry_pairs(TASK, 2, n=300, seed=5)
    sets = {"L0H2": [z_patch(0, [2], 14)], "layer 1": [attn_patch(1, 14)],
            "both": [z_patch(0, [2], 14), attn_patch(1, 14)]}
    together = donor_agreements(model, TASK, pairs, sets)
    assert together == {label: donor_agreement(model, TASK, pairs, patches) for label, patches in sets.items()}
    assert together["both"] > together["L0H2"]


def test_carry_into_a1_is_read_by_l0h2(model):
    pairs = carry_pairs(TASK, 1, n=400, seed=7)
    assert donor_agreement(model, TASK, pairs, [z_patch(0, [2], 15)]) >= 0.95
    assert donor_agreement(model, TASK, pairs, [attn_patch(1, 15)]) <= 0.05


@pytest.mark.parametrize("column", [2, 3, 4])
def test_cascade_is_resolved_in_layer1(model, column):
    pairs, q = cascade_pairs(TASK, column, n=800, seed=30 + column), prediction_position(TASK, column)
    assert len(pairs.clean) > 200
    assert donor_agreement(model, TASK, pairs, [attn_patch(1, q)]) >= 0.95
    assert donor_agreement(model, TASK, pairs, [attn_patch(0, q)]) <= 0.05


@pytest.mark.parametrize("column", [2, 3])
def test_cascaded_carry_for_a2_a3_lives_at_y0(model, column):
    pairs = cascade_pairs(TASK, column, n=800, seed=40 + column)
    y0 = operand_positions(TASK, 0)[1]
    assert donor_agreement(model, TASK, pairs, [Patch("blocks.0.hook_resid_post", (y0,))]) >= 0.95
    assert donor_agreement(model, TASK, pairs, [Patch("blocks.0.hook_resid_post", (y0 - 2,))]) <= 0.05


def test_pairs_differ_only_where_intended():
    x_of = lambda tokens: TASK.operand_digits(tokens)  # noqa: E731
    pairs = base_add_pairs(TASK, 2, n=200, seed=0)
    (x, y), (x2, y2) = x_of(pairs.clean), x_of(pairs.donor)
    other = [0, 1, 3, 4]
    assert torch.equal(x[:, other], x2[:, other]) and torch.equal(y[:, other], y2[:, other])
    pairs = cascade_pairs(TASK, 3, n=400, seed=0)
    (x, y), (x2, y2) = x_of(pairs.clean), x_of(pairs.donor)
    assert ((x[:, 2] + y[:, 2]) == 9).all() and ((x2[:, 2] + y2[:, 2]) == 9).all()
    assert torch.equal(x[:, 2:], x2[:, 2:]) and torch.equal(y[:, 2:], y2[:, 2:])
    carry = TASK.subtasks(pairs.clean).UC1[:, 2] != TASK.subtasks(pairs.donor).UC1[:, 2]
    assert carry.all()
    with pytest.raises(ValueError):
        cascade_pairs(TASK, 1)


def test_the_mlp_patching_claims_fail_on_an_untrained_model():
    """Soundness of the MLP claims: an untrained model's MLP outputs carry no base add and no
    cascade, so patching them moves no answer to the donor's."""
    from toybook.claims import claims_for

    untrained = toybook.build_model(toybook.load_shipped("addition").model_config, seed=5)
    claims = {c.name: c for c in claims_for("addition")}
    for name in ("mlp0_patch_base_add", "mlp1_cascade"):
        value = claims[name].measure(untrained)
        assert not claims[name].low <= value <= claims[name].high, (name, value)


def test_the_digit_sub_task_groups_split_every_answer_digit_once():
    from toybook.tasks.addition.hypotheses import by_digit_subtask

    tokens = TASK.generate(300, seed=8)
    groups = by_digit_subtask(tokens)
    assert set(groups) == {"BA", "UC1", "US9"}
    assert bool((sum(mask.long() for mask in groups.values()) == 1).all())
    x, y = (TASK.encode_digits(torch.tensor([[0, 0, 0, 0, 1]]), torch.tensor([[0, 0, 0, 0, 9]])),
            TASK.encode_digits(torch.tensor([[0, 0, 0, 0, 0]]), torch.tensor([[0, 0, 0, 0, 0]])))
    assert set(by_digit_subtask(y)) == {"BA"}  # 0 + 0: no carry anywhere, no empty groups
    assert by_digit_subtask(x)["UC1"].sum() == 1  # 1 + 9 in the units: one carry


def test_the_recorded_ablation_scans_are_the_shipped_model_s(model):
    """The chapter reads both ablation scans from the sidecar: a rerun of part of each gives
    the recorded values, and the record unpacks to the scans' shapes."""
    from toybook.tasks.addition.circuit import (
        ABLATION_RECORD, ABLATION_SETTINGS, ablation_inputs, head_ablation_wrong,
        position_ablation_losses, prediction_position, read_ablation_record,
    )

    record = toybook.load_shipped("addition").metadata["evaluations"][ABLATION_RECORD]
    losses, wrong = read_ablation_record(record)
    reference, probe, mix, set_of_row = ablation_inputs(TASK, **ABLATION_SETTINGS)
    assert losses.shape == (TASK.n_ctx, TASK.n_answers) and len(set_of_row) == len(mix)
    assert wrong.shape == (2, 4, TASK.n_ctx, len(mix), TASK.n_answers)
    at = [prediction_position(TASK, 2)]
    rerun = position_ablation_losses(model, TASK, probe, reference, positions=at)
    assert torch.allclose(rerun, losses[at], rtol=1e-3, atol=1e-5)
    assert (head_ablation_wrong(model, TASK, mix, reference, positions=at) != wrong[:, :, at]).double().mean() <= 1e-3
    assert wrong.any() and not wrong.all()


def test_cascade_patching_record_matches_a_rerun(model):
    """The chapter reads the cascade patching from the sidecar and reruns A2 only; a rerun of
    another column gives the recorded shares, and every column 2..n is recorded."""
    from toybook.tasks.addition.circuit import (
        CASCADE_RECORD, CASCADE_SETTINGS, cascade_patching, read_cascade_record,
    )

    recorded = read_cascade_record(toybook.load_shipped("addition").metadata["evaluations"][CASCADE_RECORD])
    assert list(recorded) == list(range(TASK.n_digits, 1, -1))
    rerun = cascade_patching(model, TASK, 4, **CASCADE_SETTINGS)
    assert rerun.keys() == recorded[4].keys() and rerun["pairs"] == recorded[4]["pairs"] > 0
    assert all(abs(rerun[name] - value) <= 0.005 for name, value in recorded[4].items())
    assert recorded[4]["layer 1 attention"] != recorded[4]["layer 0 attention"]


def test_mlp_ablation_records_match_a_rerun(model):
    """The chapter reads the MLP ablations of all three models from their sidecars; a rerun
    of one place per model gives the recorded wrong answers, and an unknown place is refused."""
    from toybook.tasks.addition.circuit import (
        MLP_ABLATION_RECORD, mlp_ablation_places, mlp_ablation_scan, read_mlp_ablation_record,
    )

    for name, place in (("addition", (1, "every answer position")), ("addition_1l", (0, "every answer position"))):
        checkpoint = toybook.load_shipped(name)
        recorded = read_mlp_ablation_record(checkpoint.metadata["evaluations"][MLP_ABLATION_RECORD])
        assert list(recorded) == list(mlp_ablation_places(TASK, checkpoint.model))
        rerun = mlp_ablation_scan(checkpoint.model, TASK, [place])[place]
        assert (rerun != recorded[place]).double().mean() <= 1e-3 and recorded[place].any()
    with pytest.raises(ToybookError, match="no MLP ablation"):
        mlp_ablation_scan(model, TASK, [(1, "y0")])


def test_heads_by_subtask_finds_the_head_that_breaks_each_kind_of_digit():
    """heads_by_subtask on a made-up scan: the head planted for each kind is found, with its
    rate, and the layer-1 column reports layer 1's largest break only."""
    from toybook.tasks.addition.circuit import heads_by_subtask

    kinds = torch.tensor([[0, 1, 2], [0, 1, 2], [0, 0, 1], [2, 2, 0]])  # [B, A]: BA, UC1, US9
    wrong = torch.zeros(2, 3, 5, *kinds.shape, dtype=torch.bool)  # [L, H, T, B, A]
    wrong[0, 1, 4][kinds == 0] = True  # L0H1 at 4 breaks every base-add digit
    wrong[1, 2, 3][kinds == 2] = True  # L1H2 at 3 breaks every US9 digit
    wrong[0, 0, 2, 0, 1] = True  # L0H0 at 2 breaks one of the three UC1 digits
    found = heads_by_subtask(wrong, kinds)
    assert (found["BA"][0].layer, found["BA"][0].head, found["BA"][0].position, found["BA"][0].rate) == (0, 1, 4, 1.0)
    assert found["BA"][1] == 0.0 and found["US9"][1] == 1.0
    assert (found["US9"][0].layer, found["US9"][0].head) == (1, 2)
    assert found["UC1"][0].rate == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def scan_kinds():
    """What each answer digit of the recorded head scan's questions needs, ``[B, A]``."""
    from toybook.tasks.addition.circuit import ABLATION_SETTINGS, ablation_inputs

    task = toybook.get_task("addition")
    return task.digit_subtasks(ablation_inputs(task, **ABLATION_SETTINGS)[2])


@pytest.mark.parametrize("name", ["addition", "addition_s2", "addition_s3", "addition_s4"])
def test_no_single_layer1_head_breaks_a_base_add(name, scan_kinds):
    """The statement this book and the reference's map share: mean-ablating one layer-1
    head at one position breaks no answer digit that needs base add only (over 1,000 of
    them in the recorded scan), on every two-layer model, while single layer-0 heads do."""
    from toybook.tasks.addition.circuit import ABLATION_RECORD, heads_by_subtask, read_ablation_record

    wrong = read_ablation_record(toybook.load_shipped(name).metadata["evaluations"][ABLATION_RECORD])[1]
    strongest, layer1 = heads_by_subtask(wrong, scan_kinds)["BA"]
    assert int((scan_kinds == 0).sum()) >= 1000 and layer1 == 0.0
    assert strongest.layer == 0 and strongest.rate > 0.05
