"""The addition chapter's claims: which layer and heads carry base add, the carry and the
cascade (column patching, probes); what the 1-layer models get right and wrong."""

from __future__ import annotations

from toybook.claims import Claim
from toybook.tasks.addition.presets import ADDITION, ADDITION_1L, ADDITION_1L_MATCHED
from toybook.tasks.addition.task import AdditionTask


def mlp_patching(task: AdditionTask, layer: int, pairs, columns, reduce, n: int, seed: int):
    """A claim's measure: the patching agreement of MLP ``layer``'s output at the position
    that predicts each ``A_j`` (``j`` in ``columns``; question pairs from ``pairs``, e.g.
    :func:`~toybook.tasks.addition.circuit.cascade_pairs`), reduced over the columns."""
    from toybook.tasks.addition.circuit import Patch, donor_agreement, prediction_position

    def measure(model):
        return reduce(donor_agreement(model, task, pairs(task, j, n=n, seed=seed + j), [
            Patch(f"blocks.{layer}.hook_mlp_out", (prediction_position(task, j),))]) for j in columns)
    return measure


def mlp0_base_add_claim(task: AdditionTask) -> Claim:
    """Base add passes through MLP0's output at the digit's position (both models). Made on
    the shipped models, then measured on the seed models when they were trained: it holds on
    every one, so it is made for every seed."""
    from toybook.tasks.addition.circuit import base_add_pairs

    return Claim("mlp0_patch_base_add", "patching MLP0's output at A_j's position carries base add "
                 "(smallest agreement over A4..A0)",
                 mlp_patching(task, 0, base_add_pairs, range(task.n_digits), min, n=200, seed=50),
                 0.95, 1.0)


def probe_claim(task: AdditionTask, name: str, text: str, target: str, stage: str, columns,
                reduce, low: float = float("-inf"), high: float = float("inf")) -> Claim:
    """A claim on the held-out accuracy of the chapter's linear probes at the positions that
    predict the answer (:func:`~toybook.tasks.addition.analysis.column_probes`) for one
    target at one residual stage, reduced over ``columns``. Fitted on fresh questions (seed
    1), not the chapter's recorded ones (seed 0), and half as many. Made on the shipped
    models, then measured on the seed models: they hold on every one, so they are made for
    every seed."""
    from toybook.tasks.addition.analysis import column_probes

    def measure(model):
        rows = column_probes(model, task, n_train=2000, n_test=1000, seed=1, columns=columns,
                             targets=[target], stages=[stage], places=["answer"], baseline=False)
        return reduce(row["accuracy"] for row in rows)
    return Claim(name, text, measure, low, high)


def probe_base_add_claim(task: AdditionTask) -> Claim:
    return probe_claim(task, "probe_base_add_mlp0", "the base add (x_j + y_j) mod 10 is read "
                       "linearly after MLP0 at A_j's position (smallest held-out probe accuracy "
                       "over A4..A0)", "sum mod 10", "after MLP0", range(task.n_digits), min, 0.95)


def addition_claims() -> tuple[Claim, ...]:
    from toybook.tasks.addition.circuit import (
        Patch, base_add_pairs, carry_pairs, cascade_pairs, donor_agreement, donor_agreements,
        prediction_position,
    )
    from toybook.analysis.faithfulness import faithfulness_claim
    from toybook.tasks.addition.hypotheses import READING, WITH_H3, WITH_OPERANDS

    task = AdditionTask()

    def z(layer, heads, position):
        return Patch(f"blocks.{layer}.attn.hook_z", (position,), tuple(heads))

    def attn(layer, position):
        return Patch(f"blocks.{layer}.hook_attn_out", (position,))

    def base_add(patches, reduce):
        def measure(model):
            values = []
            for j in range(task.n_digits):
                pairs, q = base_add_pairs(task, j, n=200, seed=100 + j), prediction_position(task, j)
                values.append(donor_agreement(model, task, pairs, patches(q)))
            return reduce(values)
        return measure

    def carry_a1(heads):
        def measure(model):
            chosen = range(model.cfg.n_heads) if heads is None else heads
            return donor_agreement(model, task, carry_pairs(task, 1, n=200, seed=7),
                                   [z(0, chosen, prediction_position(task, 1))])
        return measure

    def carry_a1_attention(model):
        q = prediction_position(task, 1)
        return donor_agreement(model, task, carry_pairs(task, 1, n=200, seed=7),
                               [attn(0, q), attn(1, q)])

    def cascade_layer1(columns):
        def measure(model):
            return min(
                donor_agreement(model, task, cascade_pairs(task, c, n=400, seed=30 + c),
                                [attn(1, prediction_position(task, c))])
                for c in columns
            )
        return measure

    def no_single_head(model):
        """The largest, over single L0 heads, of that head's smallest agreement over digits."""
        per_head = []
        for j in range(task.n_digits):
            pairs, q = base_add_pairs(task, j, n=200, seed=100 + j), prediction_position(task, j)
            sets = {str(h): [z(0, [h], q)] for h in range(model.cfg.n_heads)}
            per_head.append(donor_agreements(model, task, pairs, sets))
        return max(min(row[str(h)] for row in per_head) for h in range(model.cfg.n_heads))

    def all_layer0_heads(q):
        return [Patch("blocks.0.attn.hook_z", (q,))]

    return (
        Claim("base_add_l0h0_l0h1", "L0H0 + L0H1 at A_j's position carry base add "
              "(smallest patching agreement over A4..A0)",
              base_add(lambda q: [z(0, [0, 1], q)], min), 0.95, 1.0, all_seeds=False),
        Claim("base_add_one_head", "either head alone does not (largest agreement, L0H0)",
              base_add(lambda q: [z(0, [0], q)], max), 0.0, 0.4, all_seeds=False),
        Claim("base_add_not_l1", "layer 1 does not carry base add (largest agreement)",
              base_add(lambda q: [attn(1, q)], max), 0.0, 0.05),
        Claim("carry_a1_l0h2", "L0H2 reads the carry into A1 (patching agreement)",
              carry_a1([2]), 0.95, 1.0, all_seeds=False),
        Claim("cascade_layer1", "layer 1 resolves the cascade for A2..A4 (smallest "
              "patching agreement)", cascade_layer1((2, 3, 4)), 0.95, 1.0, all_seeds=False),
        Claim("base_add_layer0", "layer 0's heads at A_j's position carry base add (all four "
              "patched; smallest agreement over A4..A0)", base_add(all_layer0_heads, min),
              0.95, 1.0),
        Claim("base_add_no_single_head", "no single L0 head carries it for every digit (the "
              "best head's smallest agreement)", no_single_head, 0.0, 0.4),
        Claim("carry_a1_layer0", "layer 0's heads at A1's position read the carry into A1 "
              "(all four patched)", carry_a1(None), 0.95, 1.0, all_seeds=False),
        Claim("carry_a1_attention", "the attention at A1's position, layers 0 and 1 together, "
              "reads the carry into A1", carry_a1_attention, 0.95, 1.0),
        # made for every seed after the GPU sweep; seed 2 (addition_s2) breaks it (0.94 at A3,
        # whose cascade layer 0's attention also carries): the shipped model's since
        Claim("cascade_layer1_a3_a4", "layer 1 resolves the cascade for A3 and A4 (smallest "
              "patching agreement)", cascade_layer1((3, 4)), 0.95, 1.0, all_seeds=False),
        faithfulness_claim(READING, task, low=float("-inf"), high=0.95),  # falls short
        # the readings name heads by number; seed 2's L0H0..L0H3 with layer 1 reach 0.96
        faithfulness_claim(WITH_H3, task, low=float("-inf"), high=0.95, all_seeds=False),  # falls short
        faithfulness_claim(WITH_OPERANDS, task),
        mlp0_base_add_claim(task),
        Claim("mlp1_cascade", "patching MLP1's output at A_j's position carries the cascaded "
              "carry (smallest agreement over A2..A4)",
              mlp_patching(task, 1, cascade_pairs, (2, 3, 4), min, n=400, seed=30), 0.95, 1.0),
        Claim("mlp1_cascade_not_mlp0", "patching MLP0's output there does not (largest agreement)",
              mlp_patching(task, 0, cascade_pairs, (2, 3, 4), max, n=400, seed=30), 0.0, 0.05),
        probe_base_add_claim(task),
        probe_claim(task, "probe_cascade_l1_attention", "whether a carry reaches column j through "
                    "a sum-9 column j-1 is read linearly after layer 1's attention (smallest "
                    "accuracy over A2..A5)", "carry in", "after L1 attention", range(2, 6), min, 0.95),
        probe_claim(task, "probe_cascade_not_layer0", "it is not read after MLP0 (largest "
                    "accuracy over A2..A4)", "carry in", "after MLP0", range(2, 5), max, high=0.95),
    )


# The scope of these claims changed after the shipped seed models (addition_s2.., addition_1l_s2..)
# were measured, and the chapter's seed section says so. Narrowed: made for every seed
# before, broken by a seed, now made for the shipped model only. Widened: made for the
# shipped model before the seeds existed, holding on every seed, now made for every seed.
SEED_RESTATEMENTS = {
    ADDITION.name: {"narrowed": ("cascade_layer1_a3_a4", "loss_recovered_with_h3"),
                    "widened": ("mlp0_patch_base_add", "mlp1_cascade", "mlp1_cascade_not_mlp0",
                                "probe_base_add_mlp0", "probe_cascade_l1_attention",
                                "probe_cascade_not_layer0")},
    ADDITION_1L.name: {"narrowed": ("loss_recovered_reading",),
                       "widened": ("mlp0_patch_base_add", "probe_base_add_mlp0")},
}

CASCADE_SETS = ("Cascade2", "Cascade3", "Cascade4")


def cascade_count(sets: dict[str, list[int]]) -> tuple[int, int]:
    """``(n_wrong, n)`` over the depth 2–4 cascade sets of an accuracy result or record."""
    return sum(sets[name][1] for name in CASCADE_SETS), sum(sets[name][0] for name in CASCADE_SETS)


def two_layer_cascade_bound() -> float:
    """The baseline of ``cascades_fail``: the 95% upper bound (Wilson) of the shipped 2-layer
    model's error rate on the depth 2–4 cascades of its 1M-question record (0 of 1,200 give
    0.32%). A 1-layer model whose lower bound is above it is worse at cascades beyond doubt."""
    from toybook.checkpoint import read_sidecar
    from toybook.measurement import wilson_interval
    from toybook.zoo import shipped_path

    record = read_sidecar(shipped_path(ADDITION.name))["evaluations"]["accuracy_1000000_seed12345"]
    return wilson_interval(*cascade_count(record["sets"]))[1]


def addition_1l_claims() -> tuple[Claim, ...]:
    from toybook.analysis.faithfulness import faithfulness_claim
    from toybook.tasks.addition.hypotheses import READING_1L, WITH_H3_1L

    task = AdditionTask()
    return (
        *one_layer_claims(task),
        # the 2-layer reading's heads by number; seed 4's L0H0..L0H2 with the MLP reach 0.96
        faithfulness_claim(READING_1L, task, low=float("-inf"), high=0.95, all_seeds=False),  # falls short
        faithfulness_claim(WITH_H3_1L, task),
    )


def one_layer_claims(task: AdditionTask) -> tuple[Claim, ...]:
    """What both 1-layer models are claimed to do: base add right, cascades worse than the
    2-layer model beyond doubt, the base add through MLP0 and read linearly after it."""
    from toybook.measurement import wilson_interval
    from toybook.tasks.addition.analysis import addition_accuracy

    def wrong(set_names):
        def measure(model):
            result = addition_accuracy(model, task, n_random=0, seed=777, per_layout=50)
            return float(sum(result.sets[name][1] for name in set_names))
        return measure

    def cascade_rate_low(model):
        result = addition_accuracy(model, task, n_random=0, seed=777, per_layout=50)
        return wilson_interval(*cascade_count(result.sets))[0]

    return (
        Claim("base_add_right", "one layer suffices for base add (wrong answers on the BA set)",
              wrong(["BA"]), 0.0, 0.0),
        Claim("cascades_fail", "one layer gets more cascades wrong than the 2-layer model can (the "
              "95% lower bound of its error rate on the depth 2–4 cascade sets is above the 95% "
              "upper bound of the 2-layer model's recorded rate)", cascade_rate_low,
              two_layer_cascade_bound()),
        mlp0_base_add_claim(task),
        probe_base_add_claim(task),
    )


def addition_1l_matched_claims() -> tuple[Claim, ...]:
    """The parameter-matched 1-layer model's claims: the 1-layer claims, and that what its
    answers use is computed at the prediction positions (its heads differ from the 4-head
    models', so their head readings do not apply)."""
    from toybook.analysis.faithfulness import faithfulness_claim
    from toybook.tasks.addition.hypotheses import AT_ANSWERS_MATCHED

    task = AdditionTask()
    return (*one_layer_claims(task), faithfulness_claim(AT_ANSWERS_MATCHED, task))


CLAIMS = {ADDITION.name: addition_claims, ADDITION_1L.name: addition_1l_claims,
          ADDITION_1L_MATCHED.name: addition_1l_matched_claims}
