"""Tasks: formats, generators against independent references, labels, validation errors."""

from collections import Counter

import pytest
import torch

import toybook
from toybook.errors import InvalidTokensError, ToybookError, UnknownTaskError
from toybook.tasks.addition import DigitSubtask, QuestionClass

FORMATS = [
    # name, n_ctx, d_vocab, d_vocab_out, answer positions, answers
    ("list_update", 11, 52, 50, slice(7, 10), 3),
    ("addition", 18, 13, 10, slice(11, 17), 6),
    ("majority", 128, 10, 10, slice(0, 128), 128),
    ("max_of_2", 3, 65, 64, slice(2, 3), 1),
]


def test_registry_lists_the_four_tasks():
    assert toybook.list_tasks() == ["list_update", "addition", "majority", "max_of_2"]


@pytest.mark.parametrize("name, n_ctx, d_vocab, d_vocab_out, answers, n_answers", FORMATS)
def test_format(name, n_ctx, d_vocab, d_vocab_out, answers, n_answers):
    task = toybook.get_task(name)
    assert (task.n_ctx, task.d_vocab, task.d_vocab_out) == (n_ctx, d_vocab, d_vocab_out)
    assert task.answer_positions == answers and task.n_answers == n_answers
    tokens = task.generate(64, seed=3)
    assert tokens.shape == (64, n_ctx) and tokens.dtype == torch.long
    task.validate(tokens)
    logits = torch.randn(64, n_ctx, d_vocab_out)
    assert task.answer_logits(logits).shape == (64, n_answers, d_vocab_out)
    assert task.targets(tokens).shape == (64, n_answers)


@pytest.mark.parametrize("name", toybook.list_tasks())
def test_generation_is_seeded(name):
    task = toybook.get_task(name)
    assert torch.equal(task.generate(100, seed=7), task.generate(100, seed=7))
    assert not torch.equal(task.generate(100, seed=7), task.generate(100, seed=8))


def test_unknown_task_names_the_choices():
    with pytest.raises(UnknownTaskError, match="unknown task 'adition'.*addition"):
        toybook.get_task("adition")


def test_bad_task_parameters():
    with pytest.raises(ToybookError, match="n_digits 2..10"):
        toybook.get_task("addition", n_digits=11)
    with pytest.raises(ToybookError, match="bad parameters"):
        toybook.get_task("majority", length=3)


# ---- independent references ----------------------------------------------------------


@pytest.mark.parametrize("n_digits", range(2, 11))
def test_addition_against_python_integers(n_digits):
    task = toybook.get_task("addition", n_digits=n_digits)
    tokens = task.generate(300, seed=n_digits)
    assert task.n_ctx == 3 * n_digits + 3
    for row in tokens.tolist():
        x = int("".join(map(str, row[:n_digits])))
        y = int("".join(map(str, row[n_digits + 1 : 2 * n_digits + 1])))
        assert row[n_digits] == 10 and row[2 * n_digits + 1] == 12
        assert row[2 * n_digits + 2 :] == [int(c) for c in str(x + y).zfill(n_digits + 1)]
    assert torch.equal(task.targets(tokens), tokens[:, 2 * n_digits + 2 :])


def test_addition_encode_from_integers():
    task = toybook.get_task("addition")
    assert task.encode([12345], [67890])[0].tolist() == [
        1, 2, 3, 4, 5, 10, 6, 7, 8, 9, 0, 12, 0, 8, 0, 2, 3, 5,
    ]
    with pytest.raises(ToybookError):
        task.encode([100000], [1])


def test_majority_against_counter():
    task = toybook.get_task("majority")
    tokens = task.generate(40, seed=1)
    targets = task.targets(tokens)
    for row, labels in zip(tokens.tolist(), targets.tolist()):
        counts = Counter()
        for i, value in enumerate(row):
            counts[value] += 1
            top = max(counts.values())
            assert labels[i] == min(v for v, c in counts.items() if c == top)


def test_majority_worked_example():
    task = toybook.get_task("majority")
    tokens = torch.tensor([[3, 1, 1, 3, 0] + [9] * 123])
    assert task.targets(tokens)[0, :5].tolist() == [3, 1, 1, 1, 1]
    assert task.margin(tokens)[0, :5].tolist() == [1, 0, 1, 0, 0]


def test_list_update_against_python_lists():
    task = toybook.get_task("list_update")
    tokens = task.generate(500, seed=2)
    for row in tokens.tolist():
        bos, a, nl0, idx, elt, nl1, b = row[0], row[1:4], row[4], row[5], row[6], row[7], row[8:]
        expected = list(a)
        expected[idx] = elt
        assert (bos, nl0, nl1) == (50, 51, 51) and b == expected
    # idx and elt are sampled per example, not once per batch
    assert len(set(tokens[:, 5].tolist())) == 3 and len(set(tokens[:, 6].tolist())) > 40


def test_list_update_per_batch_training_data():
    """The reference's generator: one idx and one elt per training batch; evaluation inputs
    stay per row, and the choice is recorded with the task."""
    task = toybook.get_task("list_update", idx_elt_per_batch=True)
    generator = torch.Generator().manual_seed(0)
    batches = [task.train_batch(64, generator) for _ in range(30)]
    for batch in batches:
        assert len(set(batch[:, 5].tolist())) == 1 and len(set(batch[:, 6].tolist())) == 1
        assert torch.equal(task.targets(batch), batch[:, 8:])
        assert len(set(batch[:, 1].tolist())) > 20  # the lists still vary per row
    assert {b[0, 5].item() for b in batches} == {0, 1, 2}
    assert len(set(task.generate(500, seed=2)[:, 5].tolist())) == 3
    assert torch.equal(task.generate(100, seed=3), toybook.get_task("list_update").generate(100, seed=3))
    assert task.params() == {"idx_elt_per_batch": True}
    with pytest.raises(ToybookError, match="idx_elt_per_batch must be True or False"):
        toybook.get_task("list_update", idx_elt_per_batch="yes")


def test_max_of_2_sets():
    task = toybook.get_task("max_of_2")
    everything = task.all_inputs()
    assert everything.shape == (4096, 3) and len({tuple(r) for r in everything.tolist()}) == 4096
    train = task.train_data()
    gaps = Counter(abs(a - b) for a, b, _ in train.tolist())
    assert len(train) == 408 and set(gaps) == {0, 1, 2, 17}
    assert task.targets(torch.tensor([[5, 17, 64], [40, 3, 64]])).tolist() == [[17], [40]]
    assert torch.equal(task.eval_data(), everything)


# ---- addition sub-tasks: hand-worked examples ------------------------------------------

SUBTASK_CASES = [
    # x, y, MC1, MS9, UC1, US9 (columns from the units), class, cascade depth
    (12345, 11111, "00000", "00000", "00000", "00000", QuestionClass.BA, 0),
    (19, 1, "10000", "00000", "01000", "00000", QuestionClass.MC1, 0),
    (195, 5, "10000", "01000", "01100", "01000", QuestionClass.SimpleUS9, 1),
    (555, 445, "10000", "01100", "01110", "01100", QuestionClass.CascadeUS9, 2),
    (44445, 55555, "10000", "01111", "01111", "01111", QuestionClass.CascadeUS9, 4),
    (5959, 4141, "10100", "01010", "01111", "01010", QuestionClass.SimpleUS9, 1),
    (99999, 99999, "11111", "00000", "01111", "00000", QuestionClass.MC1, 0),
]


def bits(text):
    return [c == "1" for c in text]


@pytest.mark.parametrize("x, y, mc1, ms9, uc1, us9, kind, depth", SUBTASK_CASES)
def test_subtask_labels_hand_worked(x, y, mc1, ms9, uc1, us9, kind, depth):
    task = toybook.get_task("addition")
    tokens = task.encode([x], [y])
    labels = task.subtasks(tokens)
    assert labels.MC1[0].tolist() == bits(mc1)
    assert labels.MS9[0].tolist() == bits(ms9)
    assert labels.UC1[0].tolist() == bits(uc1)
    assert labels.US9[0].tolist() == bits(us9)
    x_digits = [int(c) for c in str(x).zfill(5)[::-1]]
    y_digits = [int(c) for c in str(y).zfill(5)[::-1]]
    assert labels.BA[0].tolist() == [(a + b) % 10 for a, b in zip(x_digits, y_digits)]
    assert int(task.classify(tokens)[0]) == kind
    assert int(task.cascade_depth(tokens)[0]) == depth


def test_subtask_labels_against_integer_carries():
    task = toybook.get_task("addition")
    tokens, labels = task.generate_with_labels(2000, seed=5)
    x, y = task.operand_digits(tokens)
    for i in range(2000):
        xi = int("".join(map(str, x[i].flip(0).tolist())))
        yi = int("".join(map(str, y[i].flip(0).tolist())))
        for j in range(5):
            low = 10**j
            carry_in = (xi % low + yi % low) >= low
            assert bool(labels.UC1[i, j]) == carry_in
            assert bool(labels.US9[i, j]) == (carry_in and x[i, j] + y[i, j] == 9)


def test_digit_subtasks_in_answer_order():
    task = toybook.get_task("addition")
    # 555 + 445: A0 base add, A1 uses the units' carry, A2 and A3 a cascaded carry
    kinds = task.digit_subtasks(task.encode([555], [445]))[0].tolist()
    assert kinds == [DigitSubtask.BA, DigitSubtask.BA, DigitSubtask.US9, DigitSubtask.US9,
                     DigitSubtask.UC1, DigitSubtask.BA]


def test_sum9_enrichment():
    plain = toybook.get_task("addition")
    always = toybook.get_task("addition", enrich_batch_prob=1.0, enrich_pair_prob=1.0)
    x, y = always.operand_digits(always.train_batch(200, torch.Generator().manual_seed(0)))
    assert bool(((x + y) == 9).all())
    mixed = toybook.get_task("addition", enrich_batch_prob=0.6, enrich_pair_prob=0.4)
    generator = torch.Generator().manual_seed(0)
    batches = [mixed.train_batch(500, generator) for _ in range(20)]
    fractions = [float((sum(mixed.operand_digits(b)) == 9).double().mean()) for b in batches]
    enriched = [f for f in fractions if f > 0.3]
    assert 6 <= len(enriched) <= 18  # ~60% of batches
    assert all(0.40 < f < 0.53 for f in enriched)  # 40% forced + 10% of the rest by chance
    assert all(0.05 < f < 0.15 for f in fractions if f <= 0.3)
    plain_x, plain_y = plain.operand_digits(plain.train_batch(2000, torch.Generator().manual_seed(0)))
    assert 0.07 < float(((plain_x + plain_y) == 9).double().mean()) < 0.13


# ---- labels and validation -------------------------------------------------------------


def test_token_labels():
    task = toybook.get_task("list_update")
    tokens = torch.tensor([50, 17, 3, 42, 51, 1, 8, 51, 17, 8, 42])
    assert task.token_labels(tokens) == [
        "BOS", "a0=17", "a1=3", "a2=42", "nl_0", "idx=1", "elt=8", "nl_1", "b0=17", "b1=8", "b2=42",
    ]
    assert toybook.get_task("max_of_2").token_labels([5, 17, 64]) == ["a=5", "b=17", "="]


def _set(position, value):
    def mutate(tokens):
        tokens[0, position] = value
        return tokens
    return mutate


INVALID = [
    ("list_update", lambda t: t.float(), "integer dtype"),
    ("list_update", lambda t: t[0], r"shape \[batch, 11\].*unsqueeze"),
    ("list_update", lambda t: t[:, :10], "11 tokens, got length 10"),
    ("list_update", _set(2, 52), "token 52 .* out of range"),
    ("list_update", _set(2, -1), "token -1 .* out of range"),
    ("list_update", _set(4, 7), r"position 4 \(nl_0\) must be nl_0 \(token 51\)"),
    ("list_update", _set(5, 3), r"position 5 \(idx\) must be a token in 0..2"),
    ("list_update", _set(1, 50), r"position 1 \(a0\) must be a token in 0..49"),
    ("addition", _set(5, 12), r"position 5 \(\+\) must be \+ \(token 10\)"),
    ("addition", _set(11, 10), r"position 11 \(=\)"),
    ("addition", _set(2, 11), r"position 2 \(x2\) must be a token in 0..9"),
    ("max_of_2", _set(2, 5), r"position 2 \(=\) must be = \(token 64\)"),
    ("max_of_2", _set(0, 64), r"position 0 \(a\) must be a token in 0..63"),
    ("majority", _set(0, 10), "token 10 .* out of range"),
    ("majority", lambda t: t.tolist(), "torch.Tensor"),
]


@pytest.mark.parametrize("name, mutate, message", INVALID)
def test_validation_names_the_problem(name, mutate, message):
    task = toybook.get_task(name)
    with pytest.raises(InvalidTokensError, match=message):
        task.validate(mutate(task.generate(4, seed=0)))


def test_answer_logits_shape_is_checked():
    task = toybook.get_task("max_of_2")
    with pytest.raises(InvalidTokensError, match=r"logits of shape \[batch, 3, 64\]"):
        task.answer_logits(torch.zeros(2, 3, 65))


def test_loss_and_accuracy_on_perfect_logits():
    task = toybook.get_task("list_update")
    tokens = task.generate(32, seed=0)
    logits = torch.full((32, 11, 50), -30.0)
    logits[:, task.answer_positions].scatter_(-1, task.targets(tokens).unsqueeze(-1), 30.0)
    metrics = task.metrics(logits, tokens)
    assert metrics["acc"] == 1.0 and metrics["loss"] < 1e-20
    assert task.loss(logits, tokens).dtype == torch.float64
    logits[0, 8] = 0.0  # b1 of the first sequence: uniform
    metrics = task.metrics(logits, tokens)
    assert metrics["acc"] == pytest.approx(31 / 32)
    assert metrics["loss_per_pos"][1] == pytest.approx(torch.log(torch.tensor(50.0)).item() / 32)
