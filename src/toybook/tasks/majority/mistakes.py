"""Where the majority model is wrong: accuracy by position and margin, the recorded mistakes
regenerated from their seed, ties, and the mistakes at a rare value that its minority
neurons make.

Shapes: B batch, T = 128 positions, V = 10 values, N MLP neurons, M mistakes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from toybook.evaluation import batch_rows, batched_logits, forward_batches, fresh_inputs
from toybook.tasks.majority.neurons import mean_ablated_answers, neurons_at, random_neurons
from toybook.tasks.majority.task import MajorityTask, single_lowest


@dataclass(frozen=True)
class MajorityAccuracy:
    """Accuracy of a majority model on ``n`` sequences (seed ``seed``).

    ``by_margin_last`` and ``by_margin_all`` map a margin (top count − second count; 0 is a
    tie) to ``[inputs, correct]`` at the last position and over all positions; ``wrong_at``
    lists every mistake as ``[sequence, position]``, the sequence counted in the seeded
    stream (:func:`mistaken_sequences` regenerates them).
    """

    n: int
    seed: int
    last_acc: float
    last_wrong: int
    tie_n: int  # sequences whose top two counts tie at the last position
    tie_acc: float
    all_acc: float  # over every position of every sequence
    acc_per_position: list[float]
    by_margin_last: dict[str, list[int]]
    by_margin_all: dict[str, list[int]]
    wrong_at: list[list[int]] = field(default_factory=list)  # [sequence, position] of each mistake

    @property
    def summary(self) -> str:
        return (f"last position {self.last_acc:.4%}, ties {self.tie_acc:.4%} "
                f"({self.n:,} sequences)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


@torch.no_grad()
def majority_accuracy(
    model: torch.nn.Module, task: MajorityTask, n: int = 100_000, seed: int = 12345,
    batch_size: int | None = None, progress: bool = False,
) -> MajorityAccuracy:
    """Accuracy per position and by margin on ``n`` fresh uniform sequences."""
    correct_parts, margin_parts = [], []
    for _, tokens, logits in forward_batches(model, fresh_inputs(task, seed), n,
                                          batch_size or batch_rows(task.n_ctx), progress):
        correct_parts.append(task.correct(logits, tokens).cpu())
        margin_parts.append(task.margin(tokens).cpu())
    correct, margin = torch.cat(correct_parts), torch.cat(margin_parts)
    wrong_at = (~correct).nonzero().tolist()  # sequence numbers count from 0 in the seeded stream

    def by_margin(right: Tensor, margins: Tensor) -> dict[str, list[int]]:
        return {
            str(m): [int((margins == m).sum()), int(right[margins == m].sum())]
            for m in margins.unique().tolist()
        }

    last, last_margin = correct[:, -1], margin[:, -1]
    ties = last_margin == 0
    return MajorityAccuracy(
        n=n,
        seed=seed,
        last_acc=last.double().mean().item(),
        last_wrong=int((~last).sum()),
        tie_n=int(ties.sum()),
        tie_acc=last[ties].double().mean().item(),
        all_acc=correct.double().mean().item(),
        acc_per_position=correct.double().mean(0).tolist(),
        by_margin_last=by_margin(last, last_margin),
        by_margin_all=by_margin(correct.flatten(), margin.flatten()),
        wrong_at=wrong_at,
    )


def mistaken_sequences(task: MajorityTask, record: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """``(tokens [M, T], positions [M])``: the sequences of a recorded measurement
    (:func:`majority_accuracy`) at which the model was wrong, regenerated from the record's
    seed, and the position of each mistake. Regenerating the stream is cheap; running the
    model on all of it is not."""
    wrong = torch.tensor(record["wrong_at"], dtype=torch.long).reshape(-1, 2)
    stream = fresh_inputs(task, record["seed"])(0, int(wrong[:, 0].max()) + 1 if len(wrong) else 0)
    return stream[wrong[:, 0]], wrong[:, 1]


def what_answers_name(counts: Tensor, answers: Tensor) -> tuple[Tensor, Tensor]:
    """``(rarest [M], tied [M])``: whether each of ``answers [M]`` names the least frequent
    value (the only one with the lowest count in ``counts [M, V]``) and whether it names one
    of the values tied for the lead."""
    tied = counts == counts.max(-1, keepdim=True).values
    return answers == single_lowest(counts), tied.gather(-1, answers[:, None])[:, 0]


@torch.no_grad()
def recorded_mistakes(
    model: torch.nn.Module, task: MajorityTask, record: dict[str, Any],
) -> tuple[Tensor, Tensor, Tensor]:
    """``(counts [M, V], answers [M], targets [M])`` at the mistakes a recorded measurement
    (:func:`majority_accuracy`) lists, with ``model``'s answers there now (another CPU may
    round a near-tie the other way)."""
    tokens, positions = mistaken_sequences(task, record)
    rows = torch.arange(len(tokens))
    answers = batched_logits(model, tokens)[rows, positions].argmax(-1) if len(tokens) else positions
    return task.running_counts(tokens)[rows, positions], answers, task.targets(tokens)[rows, positions]


def tie_size(counts: Tensor) -> Tensor:
    """``[...]``: how many values share the top count (1: one value leads; 2: a two-way
    tie), from running counts ``[..., V]``."""
    return (counts == counts.max(-1, keepdim=True).values).sum(-1)


def positions_by_tie_size(task: MajorityTask, record: dict[str, Any], chunk: int = 20_000) -> Tensor:
    """``[V + 1]``: how many positions of a recorded measurement's sequences
    (:func:`majority_accuracy`, regenerated from its seed, chunk by chunk) have each
    :func:`tie_size`; with the record's ``wrong_at``, the base rate of its mistakes.
    Counts are int16, so 12.8M positions take about 1.5 s."""
    stream = fresh_inputs(task, record["seed"])
    sizes = torch.zeros(task.d_vocab_out + 1, dtype=torch.long)
    for start in range(0, record["n"], chunk):
        tokens = stream(start, min(record["n"], start + chunk))
        counts = torch.zeros(*tokens.shape, task.d_vocab_out, dtype=torch.int16)
        counts = counts.scatter_(-1, tokens[..., None], 1).cumsum(1, dtype=torch.int16)
        sizes += torch.bincount(tie_size(counts).flatten(), minlength=len(sizes))
    return sizes


def balanced_with_rare(
    task: MajorityTask, n: int, seed: int, rare_counts: tuple[int, int] = (1, 6),
) -> tuple[Tensor, Tensor]:
    """``(tokens [n, T], rare [n])``: sequences in which one value (``rare``, drawn per
    sequence) appears a number of times drawn from ``rare_counts`` (inclusive) and the nine
    others share the rest as evenly as counts allow, in a random order. They are not the
    task's distribution: they are built to hold many-way ties with one rare value, where the
    recorded mistakes are."""
    generator = torch.Generator().manual_seed(seed)
    n_values, length = task.d_vocab_out, task.n_ctx
    rare = torch.randint(0, n_values, (n,), generator=generator)
    n_rare = torch.randint(rare_counts[0], rare_counts[1] + 1, (n,), generator=generator)
    slot = torch.arange(length)[None, :].expand(n, length)
    others = (rare[:, None] + 1 + slot % (n_values - 1)) % n_values  # the nine, in turn
    bag = torch.where(slot >= length - n_rare[:, None], rare[:, None], others)
    order = torch.rand(n, length, generator=generator).argsort(1)
    return bag.gather(1, order), rare


@dataclass(frozen=True)
class RareValueMistakes:
    """A model's mistakes at positions ≥ 16 of sequences with one rare value
    (:func:`balanced_with_rare`): where they are (``wrong [B, T]``), whether each names the
    rare value and whether mean-ablating that value's minority neurons corrects it
    (``named``, ``fixed`` [M], row-major order), and the share corrected by as many random
    neurons in each draw (``random [draws]``)."""

    wrong: Tensor
    named: Tensor
    fixed: Tensor
    random: Tensor


@torch.no_grad()
def rare_value_mistakes(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, rare: Tensor, ranking: Tensor,
    mean: Tensor, draws: int = 10, seed: int = 0, min_position: int = 16,
) -> RareValueMistakes:
    """The test of the rare-mistake mechanism on ``tokens`` (whose rare values are ``rare
    [B]``): ``ranking [V, k]`` are the minority neurons (:func:`minority_neurons`, chosen
    on other inputs), ``mean [N]`` the activations a mean ablation sets."""
    targets = task.targets(tokens)
    answers = batched_logits(model, tokens).argmax(-1)
    wrong = (answers != targets) & (torch.arange(task.n_ctx) >= min_position)
    resid, neurons = neurons_at(model, tokens, wrong)
    rare_at, target_at = rare[:, None].expand_as(tokens)[wrong], targets[wrong]
    fixed = mean_ablated_answers(model, resid, neurons, ranking[rare_at], mean) == target_at
    generator = torch.Generator().manual_seed(seed)
    random = torch.tensor([(mean_ablated_answers(
        model, resid, neurons, random_neurons(len(rare_at), neurons.shape[-1], ranking.shape[1], generator),
        mean) == target_at).double().mean().item() for _ in range(draws)])
    return RareValueMistakes(wrong, answers[wrong] == rare_at, fixed, random)


__all__ = ["MajorityAccuracy", "RareValueMistakes", "balanced_with_rare", "majority_accuracy",
           "mistaken_sequences", "positions_by_tie_size", "rare_value_mistakes", "recorded_mistakes",
           "tie_size", "what_answers_name"]
