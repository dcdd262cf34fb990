"""The plateau, tested causally: the drop in the QK token scores, and an edit that removes it.

On the plateau the score that ``=`` gives a key token rises with the token except at one
drop, so the tokens just above the drop lose to smaller ones. :func:`edit_drop` removes
that step, lifting every token above it by the drop's size (through
:func:`~toybook.analysis.run_with_shifted_scores`, which changes the QK scores and nothing
else), and compares the accuracy with the same lift given to as many random tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from toybook.analysis import one_layer_circuits, run_with_hard_attention, run_with_shifted_scores
from toybook.claims import accuracy
from toybook.errors import ToybookError
from toybook.tasks.max_of_2.task import EQUALS, N_VALUES, MaxOf2Task


def qk_scores(model: nn.Module) -> Tensor:
    """The score ``[N_VALUES]`` (float64, centred) that the ``=`` query gives each key token."""
    scores = one_layer_circuits(model, EQUALS, 2).qk_token[:N_VALUES]
    return scores - scores.mean()


@dataclass(frozen=True)
class ScoreDrop:
    """The largest fall of the QK scores between neighbouring tokens."""

    cliff: int  # the scores fall most between token cliff and cliff + 1
    size: float  # by this much (> 0 for a fall)
    below: tuple[int, ...]  # the tokens above the cliff that score below it: cliff + 1 .. the last such

    @property
    def blocked(self) -> str:
        if not self.below:
            return "none"
        return str(self.below[0]) if len(self.below) == 1 else f"{self.below[0]}..{self.below[-1]}"


def score_drop(scores: Tensor) -> ScoreDrop:
    """Where ``scores`` (one per token) fall most, and which tokens above that point score
    lower than the token just below it (the ones a smaller rival outscores)."""
    steps = scores[1:] - scores[:-1]
    cliff = int(steps.argmin())
    under = torch.nonzero(scores[cliff + 1:] < scores[cliff])
    top = cliff + 1 + int(under.max()) if len(under) else cliff
    return ScoreDrop(cliff, float(-steps[cliff]), tuple(range(cliff + 1, top + 1)))


def run_with_lifted_tokens(model: nn.Module, inputs: Tensor, tokens, lift: float) -> Tensor:
    """Logits when the ``=`` query scores each operand in ``tokens`` higher by ``lift``."""
    operands = inputs[:, :2]
    shift = torch.isin(operands, torch.as_tensor(list(tokens), dtype=operands.dtype)).double() * lift
    return run_with_shifted_scores(model, inputs, 2, shift)


def _p95(values) -> float:
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(0.95 * len(ranked)))]


@dataclass(frozen=True)
class DropEdit:
    """Accuracy on all inputs of one model: as trained, with the drop's step removed, with
    only the outscored tokens lifted, and each edit given to as many random tokens."""

    drop: ScoreDrop
    as_trained: float
    step_removed: float  # every token above the cliff lifted by the drop: only that one step changes
    step_removed_random: tuple[float, ...]  # as many random tokens lifted by as much, one per draw
    below_lifted: float  # only drop.below lifted by the drop: a new fall opens above them
    below_lifted_random: tuple[float, ...]
    forced: float  # attention forced onto the larger operand
    wrong_left: int  # wrong inputs with the step removed
    wrong_left_ov: int  # of those, inputs whose larger token the OV circuit does not copy to itself

    @property
    def step_removed_p95(self) -> float:
        return _p95(self.step_removed_random)

    @property
    def below_lifted_p95(self) -> float:
        return _p95(self.below_lifted_random)


def edit_drop(model: nn.Module, task: MaxOf2Task, n_random: int = 100, seed: int = 0) -> DropEdit:
    """Remove the step :func:`score_drop` finds (and, separately, lift only the tokens it
    outscores), then give each edit to ``n_random`` draws of as many random tokens;
    accuracy on all inputs each time."""
    inputs = task.all_inputs()
    drop = score_drop(qk_scores(model))
    if drop.size <= 0:
        raise ToybookError("the QK scores of this model rise from every token to the next: there is no "
                           "drop to remove (edit_drop reads a plateau snapshot, not a generalised model)")
    above = range(drop.cliff + 1, N_VALUES)
    generator = torch.Generator().manual_seed(seed)

    def lifted(tokens) -> float:
        return accuracy(task, run_with_lifted_tokens(model, inputs, tokens, drop.size), inputs)

    def random_draws(count: int) -> tuple[float, ...]:
        return tuple(lifted(torch.randperm(N_VALUES, generator=generator)[:count].tolist())
                     for _ in range(n_random))

    removed = run_with_lifted_tokens(model, inputs, above, drop.size)
    wrong = ~task.correct(removed, inputs)[:, 0]
    ov = one_layer_circuits(model, EQUALS, 2).ov_token[:N_VALUES]
    not_copied = ov.argmax(1) != torch.arange(N_VALUES)
    return DropEdit(
        drop=drop,
        as_trained=accuracy(task, model(inputs), inputs),
        step_removed=accuracy(task, removed, inputs),
        step_removed_random=random_draws(len(above)),
        below_lifted=lifted(drop.below),
        below_lifted_random=random_draws(len(drop.below)),
        forced=accuracy(task, run_with_hard_attention(model, inputs, 2, inputs[:, :2].argmax(1)), inputs),
        wrong_left=int(wrong.sum()),
        wrong_left_ov=int((wrong & not_copied[inputs[:, :2].max(1).values]).sum()),
    )


PLATEAU_RECORD = "plateau_snapshots"  # the sidecar evaluation a seed's retrained snapshots are kept under


def mid_plateau_step(history, steps, threshold: float = 0.99) -> int | None:
    """The snapshot step nearest halfway between fitting the training pairs (training
    accuracy ≥ ``threshold``) and generalising (test accuracy ≥ ``threshold``)."""
    from toybook.analysis.dynamics import first_step_at_least

    fit = first_step_at_least(history, "train_acc", threshold)
    reached = first_step_at_least(history, "eval_acc", threshold)
    if fit is None or reached is None:
        return None
    return min(steps, key=lambda s: abs(s - (fit + reached) / 2))


def plateau_record(snapshots: dict[int, nn.Module], history, task: MaxOf2Task) -> dict:
    """What the book reads of a run's snapshots, small enough for a sidecar: per snapshot
    its accuracy on all inputs and its QK token scores, and the drop edit on the
    mid-plateau snapshot."""
    inputs = task.all_inputs()
    steps = sorted(snapshots)
    mid = mid_plateau_step(history, steps)
    edit = edit_drop(snapshots[mid], task) if mid is not None else None
    return {
        "steps": steps,
        "accuracy": [accuracy(task, snapshots[s](inputs), inputs) for s in steps],
        "qk_scores": [[round(v, 3) for v in qk_scores(snapshots[s]).tolist()] for s in steps],
        "mid_step": mid,
        "edit": None if edit is None else {
            "cliff": edit.drop.cliff, "size": edit.drop.size, "below": list(edit.drop.below),
            "as_trained": edit.as_trained, "step_removed": edit.step_removed,
            "step_removed_p95": edit.step_removed_p95, "below_lifted": edit.below_lifted,
            "below_lifted_p95": edit.below_lifted_p95, "forced": edit.forced,
            "wrong_left": edit.wrong_left, "wrong_left_ov": edit.wrong_left_ov,
        },
    }
