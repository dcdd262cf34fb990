"""Batched evaluation of a model on a task: exact-match accuracy and loss.

Shapes: N sequences, T ``n_ctx``, A answer positions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from toybook.config_checks import check_integer
from toybook.errors import ToybookError
from toybook.model import check_model_fits
from toybook.resources import check_batch_fits
from toybook.shared_prefix import answer_logits_by_prefix, supports_shared_prefix
from toybook.task import Task, answer_losses


def batch_rows(n_ctx: int) -> int:
    """A batch size for sequences of ``n_ctx`` tokens: at most 2**15 tokens and 2**22
    query-key pairs (one head's attention pattern: 16 MB). Measured on 2 cores, larger
    batches are slower as well as larger (11-token inputs: 30,000 inputs/s in batches of
    3,000, 20,000 in batches of 12,000). 11 tokens: 2,978 rows; 18: 1,820; 128: 256."""
    return max(1, min(2**22 // (n_ctx * n_ctx), 2**15 // n_ctx))


def require_hooks(model: torch.nn.Module, names: Sequence[str]) -> None:
    """Refuse, by name, hook names the model does not have (or a single string where a list
    of names belongs)."""
    if isinstance(names, str):
        raise ToybookError(f"hook names are a list of names, got the string {names!r}; "
                           f"write [{names!r}]")
    missing = sorted(set(names) - set(model.hook_dict))
    if missing:
        raise ToybookError(f"the model has no activation named {', '.join(map(repr, missing))}; "
                           "hook names look like 'blocks.0.hook_attn_out' or "
                           "'blocks.1.attn.hook_z'")


def blocks_needed(model: torch.nn.Module, names: Sequence[str]) -> int | None:
    """How many blocks a run must go through to produce every activation in ``names``
    (``blocks.N.…`` needs ``N + 1``), or ``None`` where that is all of them, or where a name
    lies outside the blocks (the embeddings, the final norm, the unembedding)."""
    layers = [re.match(r"blocks\.(\d+)\.", name) for name in names]
    if not layers or None in layers:
        return None
    needed = max(int(match.group(1)) for match in layers) + 1
    return needed if needed < model.cfg.n_layers else None


@torch.no_grad()
def activations(model: torch.nn.Module, tokens: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """``{name: [B, T, ...]}``: the activations ``names`` of one run of ``model`` on
    ``tokens``. The run stops after the last block that ``names`` need (the same values as a
    full run, bit for bit: later blocks cannot change earlier ones), so reading layer 0 of a
    two-layer model costs about half a forward pass."""
    require_hooks(model, names)
    wanted = set(names)
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in wanted,
                                    stop_at_layer=blocks_needed(model, names))
    return {name: cache[name] for name in wanted}


@torch.no_grad()
def forward_batches(
    model: torch.nn.Module, inputs: Tensor | Callable[[int, int], Tensor], n: int | None = None,
    batch_size: int | None = None, progress: bool = False, desc: str | None = None,
    run: Callable[[Tensor], Any] | None = None,
) -> Iterator[tuple[int, Tensor, Any]]:
    """Run ``model`` batch by batch without autograd: yields ``(start, tokens [b, T],
    logits [b, T, V])`` with ``tokens`` on the model's device; ``run(tokens)`` replaces
    ``model(tokens)`` where given (e.g. a ``run_with_cache`` or ``run_with_hooks`` call).

    ``inputs`` is a token tensor ``[N, T]``, or a function ``(start, stop) → tokens`` called
    in order for ``n`` inputs (e.g. a task's enumeration, or a seeded generator), so only one
    batch is ever in memory. ``batch_size`` defaults to :func:`batch_rows` (a function's
    callers give it).
    """
    check_integer("forward_batches", "batch_size", batch_size, minimum=1, optional=True)
    if callable(inputs):
        if n is None or batch_size is None:
            raise ToybookError("forward_batches: give n and batch_size when inputs is a function")
    else:
        n = len(inputs) if n is None else n
        batch_size = batch_size or batch_rows(inputs.shape[-1])
    device = next(model.parameters()).device
    check_batch_fits("forward_batches", model, min(batch_size, n), device)
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress):
        stop = min(start + batch_size, n)
        tokens = inputs(start, stop) if callable(inputs) else inputs[start:stop]
        tokens = tokens.to(device)
        yield start, tokens, model(tokens) if run is None else run(tokens)


def fresh_inputs(task: Task, seed: int) -> Callable[[int, int], Tensor]:
    """``(start, stop) → tokens``: ``stop - start`` fresh sequences from one generator seeded
    once, so consecutive calls continue one seeded stream (as :func:`forward_batches` makes
    them)."""
    generator = torch.Generator().manual_seed(seed)
    return lambda start, stop: task.generate(stop - start, generator)


def batched_cache(
    model: torch.nn.Module, tokens: Tensor, names: list[str], batch_size: int | None = None,
    positions: list[int] | None = None,
) -> dict[str, Tensor]:
    """``run_with_cache`` in batches, keeping only the hooks ``names``: ``{name: [N, ...]}``,
    and of each only ``positions`` (dimension 1, in that order) where given. Peak memory is
    one batch's forward pass plus what is kept."""
    def cached(batch: Tensor) -> Any:
        cache = activations(model, batch, names)
        return cache if positions is None else {name: cache[name][:, positions] for name in names}

    parts: dict[str, list[Tensor]] = {name: [] for name in names}
    for _, _, cache in forward_batches(model, tokens, batch_size=batch_size, run=cached):
        for name in names:
            parts[name].append(cache[name])
    return {name: torch.cat(part) for name, part in parts.items()}


def batched_logits(model: torch.nn.Module, tokens: Tensor, batch_size: int | None = None) -> Tensor:
    """``model(tokens)`` in batches without autograd, ``[N, T, V]``."""
    return torch.cat([logits for _, _, logits in forward_batches(model, tokens, None, batch_size)])


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of a model on ``n`` sequences."""

    n: int
    n_wrong: int  # sequences with at least one wrong answer
    acc: float  # whole-sequence exact match
    acc_per_pos: list[float]  # one per answer position
    wrong_per_pos: list[int]
    loss: float  # mean float64 cross-entropy over answers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, task: Task, tokens: Tensor, batch_size: int | None = None
) -> EvalResult:
    """Run ``model`` on ``tokens [N, T]`` in batches and compare with the task's targets."""
    check_integer("evaluate", "batch_size", batch_size, minimum=1, optional=True)
    check_model_fits("evaluate", model, task)
    task.validate(tokens)
    wrong_rows, loss_sum = 0, 0.0
    wrong_per_pos = torch.zeros(task.n_answers, dtype=torch.long)
    for _, batch, logits in forward_batches(model, tokens, batch_size=batch_size):
        correct = task.correct(logits, batch).cpu()
        wrong_rows += int((~correct.all(-1)).sum())
        wrong_per_pos += (~correct).sum(0)
        loss_sum += float(task.token_losses(logits, batch).sum())
    n = len(tokens)
    return EvalResult(
        n=n,
        n_wrong=wrong_rows,
        acc=1 - wrong_rows / n,
        acc_per_pos=(1 - wrong_per_pos.double() / n).tolist(),
        wrong_per_pos=wrong_per_pos.tolist(),
        loss=loss_sum / (n * task.n_answers),
    )


@dataclass(frozen=True)
class ExhaustiveResult:
    """Accuracy on every input of a task (or on one range of its enumeration).

    ``margin`` is the correct answer's logit minus the largest other logit: positive
    means correct, and its minimum over all answers says how close the model comes to
    its first mistake. ``hardest`` lists the answers with the smallest margins; ``wrong``
    lists wrong answers in rank order, as many as were asked for (``list_wrong``), each
    with its rank, answer position, predicted and correct token, and margin.
    """

    n: int
    n_wrong: int
    acc: float
    acc_per_pos: list[float]
    wrong_per_pos: list[int]
    loss: float  # mean float64 cross-entropy over answers
    max_loss: float
    min_margin: float
    group_slot: str | None
    n_by_group: dict[str, int]  # slot value → inputs with that value
    wrong_by_group: dict[str, list[int]]  # slot value → wrong answers per answer position
    hardest: list[dict[str, Any]]  # rank, tokens, answer position, margin
    start: int
    stop: int
    batch_size: int
    device: str
    wall_time_s: float
    method: str = "plain"  # or "shared_prefix" (see toybook.shared_prefix)
    wrong: list[dict[str, Any]] = field(default_factory=list)  # the first list_wrong

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def evaluate_exhaustively(
    model: torch.nn.Module, task: Task, start: int = 0, stop: int | None = None,
    batch_size: int | None = None, n_hardest: int = 10, progress: bool = False,
    method: str = "auto", list_wrong: int = 0,
) -> ExhaustiveResult:
    """Evaluate ``model`` on the inputs of ranks ``start..stop-1`` (default: all of them).

    Inputs are generated batch by batch from the task's enumeration, so memory stays at one
    batch however large the space (tens of millions of inputs). ``method="auto"``
    computes each shared prefix once (:mod:`toybook.shared_prefix`) where the task, the
    model and the range allow it, else runs ``model(tokens)`` (``method="plain"``).
    The first ``list_wrong`` wrong answers are listed one by one (``wrong``).
    """
    stop = task.check_rank_range(start, stop)
    check_model_fits("evaluate_exhaustively", model, task)
    check_integer("evaluate_exhaustively", "batch_size", batch_size, minimum=1, optional=True)
    check_integer("evaluate_exhaustively", "list_wrong", list_wrong, minimum=0)
    if method not in ("auto", "plain"):
        raise ToybookError(f"unknown method {method!r}; use 'auto' or 'plain'")
    device = next(model.parameters()).device
    run = task.prefix_run
    shared = (method == "auto" and task.shared_prefix > 0 and start % run == 0
              and stop % run == 0 and supports_shared_prefix(model))
    if shared:
        batch_size = max(run, (batch_size or 20 * run) // run * run)

        def answers(batch: Tensor) -> Tensor:
            return answer_logits_by_prefix(model, batch, task.shared_prefix, run,
                                           task.answer_positions)
    else:
        batch_size = batch_size or batch_rows(task.n_ctx)

        def answers(batch: Tensor) -> Tensor:
            return task.answer_logits(model(batch))
    slot_index = None
    if task.group_slot is not None:
        slot_index = [slot.name for slot in task.slots].index(task.group_slot)
        group_values = task.slots[slot_index].tokens
    wrong_per_pos = torch.zeros(task.n_answers, dtype=torch.long)
    wrong_by_group: dict[int, Tensor] = {}
    n_by_group: dict[int, int] = {}
    n_wrong_rows, loss_sum, max_loss = 0, 0.0, 0.0
    hardest_margin = torch.empty(0)
    hardest_key = torch.empty(0, 2, dtype=torch.long)  # (rank, answer position)
    listed: list[dict[str, Any]] = []
    started = time.perf_counter()
    batches = forward_batches(
        model, lambda first, last: task.inputs(start + first, start + last), stop - start,
        batch_size, progress, desc=f"{task.name}: all inputs", run=answers,
    )
    for offset, batch, answer_logits in batches:
        batch_start = start + offset
        targets = task.targets(batch)
        wrong = (answer_logits.argmax(-1) != targets).cpu()
        wrong_per_pos += wrong.sum(0)
        n_wrong_rows += int(wrong.any(1).sum())
        losses = answer_losses(answer_logits, targets)
        loss_sum += float(losses.sum())
        max_loss = max(max_loss, float(losses.max()))
        margin = _margins(answer_logits, targets).cpu()
        if len(listed) < list_wrong and bool(wrong.any()):
            rows, columns = (index[: list_wrong - len(listed)] for index in wrong.nonzero(as_tuple=True))
            predicted = answer_logits.argmax(-1).cpu()[rows, columns].tolist()
            listed += [dict(rank=batch_start + row, answer=task.answer_names[column],
                            predicted=guess, target=answer, margin=gap)
                       for row, column, guess, answer, gap in zip(
                           rows.tolist(), columns.tolist(), predicted,
                           targets.cpu()[rows, columns].tolist(), margin[rows, columns].tolist())]
        rank, position = torch.meshgrid(
            torch.arange(batch_start, batch_start + len(batch)), torch.arange(margin.shape[1]),
            indexing="ij",
        )
        hardest_margin = torch.cat([hardest_margin, margin.flatten()])
        hardest_key = torch.cat([hardest_key, torch.stack([rank, position], -1).reshape(-1, 2)])
        keep = hardest_margin.topk(min(n_hardest, len(hardest_margin)), largest=False).indices
        hardest_margin, hardest_key = hardest_margin[keep], hardest_key[keep]
        if slot_index is not None:
            values = batch[:, slot_index].cpu()
            for value in group_values:
                rows = values == value
                n_by_group[value] = n_by_group.get(value, 0) + int(rows.sum())
                wrong_by_group[value] = wrong_by_group.get(value, 0) + wrong[rows].sum(0)
    n = stop - start
    order = hardest_margin.argsort()
    return ExhaustiveResult(
        n=n,
        n_wrong=n_wrong_rows,
        acc=1 - n_wrong_rows / n if n else float("nan"),
        acc_per_pos=(1 - wrong_per_pos.double() / n).tolist() if n else [],
        wrong_per_pos=wrong_per_pos.tolist(),
        loss=loss_sum / (n * task.n_answers) if n else float("nan"),
        max_loss=max_loss,
        min_margin=float(hardest_margin.min()) if len(hardest_margin) else float("nan"),
        group_slot=task.group_slot,
        n_by_group={str(value): count for value, count in n_by_group.items()},
        wrong_by_group={str(value): wrong.tolist() for value, wrong in wrong_by_group.items()},
        hardest=[
            dict(
                rank=rank,
                tokens=task.inputs(rank, rank + 1)[0].tolist(),
                answer=task.answer_names[position],
                margin=float(hardest_margin[i]),
            )
            for i in order.tolist()
            for rank, position in [hardest_key[i].tolist()]
        ],
        start=start,
        stop=stop,
        batch_size=batch_size,
        device=str(device),
        wall_time_s=time.perf_counter() - started,
        method="shared_prefix" if shared else "plain",
        wrong=listed,
    )


def _margins(answer_logits: Tensor, targets: Tensor) -> Tensor:
    """Correct logit minus the best other logit, ``[B, A]``, from ``[B, A, V]`` and ``[B, A]``."""
    correct = answer_logits.gather(-1, targets[..., None]).squeeze(-1)
    others = answer_logits.scatter(-1, targets[..., None], float("-inf"))
    return correct - others.max(-1).values
