"""Where an addition model computes each answer digit: ablations and column patching.

Three questions, three tools:

- *Which positions does the algorithm use?* :func:`position_ablation_losses` mean-ablates
  the residual stream after layer 0 at one position at a time and records each answer
  digit's loss.
- *Which heads, at which positions, compute which digit?* :func:`head_ablation_wrong`
  mean-ablates one head at one position at a time (every layer, head, position) and
  records which answers break.
- *Where does a given sub-task happen?* The ``*_pairs`` functions build clean/donor
  question pairs that differ in exactly what one sub-task of answer digit ``A_j`` reads
  (column ``j`` for base add, column ``j-1`` for the carry, the columns below a sum-9
  column for a cascade), and :func:`donor_agreement` patches chosen activations from
  the donor into the clean run and measures how often ``A_j`` becomes the donor's.

Columns are indexed from the units (column 0) as in :mod:`toybook.tasks.addition.task`.
Shapes: B questions, T ``n_ctx``, L layers, H heads, A = n + 1 answer digits in answer
order (``A_n`` first).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from toybook.analysis.ablation import mean_activation, overwrite_hook
from toybook.analysis.patching import Patch, patched_answers
from toybook.errors import ToybookError
from toybook.tasks.addition.analysis import question_sets
from toybook.tasks.addition.task import (
    AdditionTask, DigitSubtask, QuestionClass, operand_positions, prediction_position,
)


def class_frequencies(task: AdditionTask, n: int = 100_000, seed: int = 0) -> dict[str, float]:
    """Fraction of ``task``'s training questions (uniform or enriched) in each question class,
    and of questions with a cascade of depth ≥ 2, 3, 4."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.cat([task.train_batch(1000, generator) for _ in range(n // 1000)])
    classes, depth = task.classify(tokens), task.cascade_depth(tokens)
    result = {kind.name: (classes == kind).double().mean().item() for kind in QuestionClass}
    result.update({f"depth ≥ {d}": (depth >= d).double().mean().item() for d in (2, 3, 4)})
    return result


@torch.no_grad()
def position_ablation_losses(
    model: torch.nn.Module, task: AdditionTask, tokens: Tensor, reference: Tensor, layer: int = 0,
    positions: Sequence[int] | None = None,
) -> Tensor:
    """``[P, A]``: each answer digit's mean loss on ``tokens`` when the residual stream after
    ``layer`` is replaced, at one of ``positions`` (default all, P = T), by its mean over
    ``reference``."""
    name = f"blocks.{layer}.hook_resid_post"
    mean = mean_activation(model, reference, name)[0]
    positions = list(range(tokens.shape[1])) if positions is None else list(positions)
    losses = torch.empty(len(positions), task.n_answers, dtype=torch.float64)
    for index, position in enumerate(positions):
        hook = overwrite_hook((slice(None), position), mean[position])
        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
        losses[index] = task.token_losses(logits, tokens).mean(0)
    return losses


@torch.no_grad()
def mlp_ablation_wrong(
    model: torch.nn.Module, task: AdditionTask, tokens: Tensor, mean: Tensor, layer: int,
    positions: Sequence[int],
) -> Tensor:
    """``[B, A]`` bool: the answer digits of ``tokens`` that are wrong when MLP ``layer``'s
    output at ``positions`` is replaced by ``mean [T, d_model]``, its mean over reference
    questions (``mean_activation(model, reference, f"blocks.{layer}.hook_mlp_out")[0]``)."""
    name = f"blocks.{layer}.hook_mlp_out"
    positions = torch.as_tensor(list(positions), dtype=torch.long)
    hook = overwrite_hook((slice(None), positions), mean[positions])
    return ~task.correct(model.run_with_hooks(tokens, fwd_hooks=[(name, hook)]), tokens)


@torch.no_grad()
def head_ablation_wrong(
    model: torch.nn.Module, task: AdditionTask, tokens: Tensor, reference: Tensor,
    positions: Sequence[int] | None = None,
) -> Tensor:
    """``[L, H, P, B, A]`` bool: answer digits that are wrong when one head's output
    (``hook_z``) at one of ``positions`` (default all) is replaced by its mean over
    ``reference``. Answers already wrong without the ablation count as wrong too.

    An ablation at position p reaches only positions ≥ p, and in the last layer only p
    itself. Where it can reach no position that predicts an answer, it changes nothing:
    those entries are the unablated model's wrong answers, without a forward pass (52 of
    the 144 in the 2-layer model). In the last layer the ablations at different positions
    never meet, so one pass per head ablates all of them and each keeps its own answer
    (the same numbers, a quarter of the passes)."""
    positions = list(range(tokens.shape[1])) if positions is None else list(positions)
    cfg = model.cfg
    wrong = torch.zeros(cfg.n_layers, cfg.n_heads, len(positions), *task.targets(tokens).shape, dtype=torch.bool)
    unablated = ~task.correct(model(tokens), tokens)
    predicting = list(range(task.n_ctx)[task.answer_positions])  # answer a is predicted at predicting[a]
    for layer in range(cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_z"
        mean = mean_activation(model, reference, name)[0]  # [T, H, d_head]
        last_layer = layer == cfg.n_layers - 1
        for head in range(cfg.n_heads):
            reached = [p for p in positions if p in predicting] if last_layer else \
                [p for p in positions if p <= max(predicting)]
            for index, position in enumerate(positions):
                if position not in reached:
                    wrong[layer, head, index] = unablated
            if last_layer and reached:
                where = (slice(None), torch.tensor(reached), head)
                hook = overwrite_hook(where, mean[reached, head])
                together = ~task.correct(model.run_with_hooks(tokens, fwd_hooks=[(name, hook)]), tokens)
                for position in reached:
                    answer = predicting.index(position)
                    wrong[layer, head, positions.index(position)] = unablated
                    wrong[layer, head, positions.index(position), :, answer] = together[:, answer]
                continue
            for position in reached:
                hook = overwrite_hook((slice(None), position, head), mean[position, head])
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
                wrong[layer, head, positions.index(position)] = ~task.correct(logits, tokens)
    return wrong


# ---- column patching ----------------------------------------------------------------------

@dataclass(frozen=True)
class QuestionPairs:
    """Clean and donor questions ``[B, T]`` that differ in what one sub-task of ``A_column``
    reads, kept only where the right answer ``A_column`` differs between them."""

    clean: Tensor
    donor: Tensor
    column: int


def _packed(wrong: Tensor) -> str:
    """A bool tensor as base64 of its packed bits (a sidecar stores it as text)."""
    return base64.b64encode(np.packbits(wrong.flatten().numpy()).tobytes()).decode()


def _unpacked(bits: str, shape: Sequence[int]) -> Tensor:
    """The bool tensor of ``shape`` that :func:`_packed` wrote."""
    flat = np.unpackbits(np.frombuffer(base64.b64decode(bits), dtype=np.uint8))
    return torch.from_numpy(flat[: int(np.prod(shape))].reshape(shape).astype(bool))


ABLATION_SETTINGS = {"n_reference": 2000, "reference_seed": 1, "n_probe": 1000, "probe_seed": 5,
                     "n_random": 200, "random_seed": 12, "per_layout": 8, "sets_seed": 11}


@dataclass(frozen=True)
class HeadBreak:
    """The single head ablation (at one position) that breaks most of one kind of digit."""

    layer: int
    head: int
    position: int
    rate: float  # share of the digits of that kind it breaks


def heads_by_subtask(wrong: Tensor, kinds: Tensor) -> dict[str, tuple[HeadBreak, float]]:
    """Per digit sub-task (:class:`~toybook.tasks.addition.task.DigitSubtask` name): the head
    ablation that breaks most digits needing it, and the most any layer-1 head breaks.
    ``wrong`` is :func:`head_ablation_wrong`'s ``[L, H, T, B, A]``, ``kinds`` the questions'
    :meth:`~toybook.tasks.addition.task.AdditionTask.digit_subtasks` ``[B, A]``."""
    out = {}
    for kind in DigitSubtask:
        rates = wrong[..., kinds == kind].float().mean(-1)  # [L, H, T]
        layer, head, position = np.unravel_index(int(rates.argmax()), tuple(rates.shape))
        layer1 = float(rates[1:].max()) if len(rates) > 1 else 0.0
        out[kind.name] = (HeadBreak(int(layer), int(head), int(position), float(rates.max())), layer1)
    return out


ABLATION_RECORD = "ablation_scans"  # a sidecar's record of ablation_record(model, task)


def ablation_inputs(task: AdditionTask, n_reference: int, reference_seed: int, n_probe: int,
                    probe_seed: int, n_random: int, random_seed: int, per_layout: int,
                    sets_seed: int) -> tuple[Tensor, Tensor, Tensor, list[str]]:
    """``(reference, probe, mix, set_of_row)``: the inputs of the chapter's two ablation scans
    (:data:`ABLATION_SETTINGS`): means come from ``reference``, position ablations are scored
    on ``probe``, head ablations on ``mix`` (``n_random`` random questions and ``per_layout``
    fillings of every layout of :func:`~toybook.tasks.addition.analysis.question_sets`, each
    row's set named in ``set_of_row``)."""
    sets = question_sets(task, per_layout=per_layout, seed=sets_seed)
    mix = torch.cat([task.generate(n_random, seed=random_seed), *sets.values()])
    set_of_row = ["random"] * n_random + [name for name, tokens in sets.items() for _ in range(len(tokens))]
    return (task.generate(n_reference, seed=reference_seed), task.generate(n_probe, seed=probe_seed),
            mix, set_of_row)


@torch.no_grad()
def ablation_record(model: torch.nn.Module, task: AdditionTask) -> dict[str, Any]:
    """Both ablation scans on :func:`ablation_inputs` of :data:`ABLATION_SETTINGS`, as a
    sidecar record (``scripts/record_ablations.py``): :func:`position_ablation_losses` as
    lists, :func:`head_ablation_wrong` as packed bits. They take longer than a chapter's
    build can spend; :func:`read_ablation_record` reads them back."""
    reference, probe, mix, _ = ablation_inputs(task, **ABLATION_SETTINGS)
    losses = position_ablation_losses(model, task, probe, reference)
    wrong = head_ablation_wrong(model, task, mix, reference)
    return {**ABLATION_SETTINGS, "position_losses": losses.tolist(), "head_wrong_shape": list(wrong.shape),
            "head_wrong_bits": _packed(wrong),
            "summary": f"mean-ablation scans: {losses.shape[0]} positions on {len(probe):,} questions, "
                       f"{wrong.shape[0] * wrong.shape[1]} heads × {wrong.shape[2]} positions on "
                       f"{len(mix):,} questions"}


def read_ablation_record(record: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """``(position_losses [T, A], head_wrong [L, H, T, B, A] bool)`` from an
    :func:`ablation_record`."""
    wrong = _unpacked(record["head_wrong_bits"], record["head_wrong_shape"])
    return torch.tensor(record["position_losses"], dtype=torch.float64), wrong


CASCADE_SETTINGS = {"n": 1000, "seed": 20}  # pairs drawn per column, and the seed of column 0
CASCADE_RECORD = "cascade_patching"  # a sidecar's record of cascade_record(model, task)


def cascade_patch_sets(task: AdditionTask, column: int) -> dict[str, list[Patch]]:
    """The patches of the cascade experiment for ``A_column``: layer 0's and layer 1's
    attention output at the position predicting it (each alone and both), and the
    residual stream after layer 0 at each ``y`` operand position (``"layer-0 output at P"``)."""
    q = prediction_position(task, column)
    attention = [Patch(f"blocks.{layer}.hook_attn_out", (q,)) for layer in (0, 1)]
    ys = range(operand_positions(task, task.n_digits - 1)[1], operand_positions(task, 0)[1] + 1)
    return {"layer 0 attention": attention[:1], "layer 1 attention": attention[1:], "both": attention,
            **{f"layer-0 output at {p}": [Patch("blocks.0.hook_resid_post", (p,))] for p in ys}}


@torch.no_grad()
def cascade_patching(model: torch.nn.Module, task: AdditionTask, column: int, n: int = 1000,
                     seed: int = 20) -> dict[str, float]:
    """:func:`donor_agreements` of :func:`cascade_patch_sets` on :func:`cascade_pairs` of
    ``column`` (``n`` drawn, seed ``seed + column``), and ``"pairs"``: how many were kept."""
    pairs = cascade_pairs(task, column, n=n, seed=seed + column)
    return {**donor_agreements(model, task, pairs, cascade_patch_sets(task, column)),
            "pairs": len(pairs.clean)}


@torch.no_grad()
def cascade_record(model: torch.nn.Module, task: AdditionTask) -> dict[str, Any]:
    """:func:`cascade_patching` of every column 2..n with :data:`CASCADE_SETTINGS`, as a
    sidecar record (``scripts/record_ablations.py``); :func:`read_cascade_record` reads it."""
    columns = {str(j): cascade_patching(model, task, j, **CASCADE_SETTINGS) for j in range(2, task.n_digits + 1)}
    return {**CASCADE_SETTINGS, "columns": columns,
            "summary": f"cascade patching: {len(columns)} columns, "
                       f"{sum(c['pairs'] for c in columns.values()):,} pairs"}


def read_cascade_record(record: Mapping[str, Any]) -> dict[int, dict[str, float]]:
    """``{column: {patch set: share of A_column that became the donor's, "pairs": n}}``, top
    column first, from a :func:`cascade_record`."""
    return {int(j): values for j, values in sorted(record["columns"].items(), key=lambda item: -int(item[0]))}


MLP_ABLATION_SETTINGS = {"n_reference": 1000, "reference_seed": 1, "n_random": 1000, "random_seed": 9,
                         "per_layout": 10, "sets_seed": 2024}
MLP_ABLATION_RECORD = "mlp_ablations"  # a sidecar's record of mlp_ablation_record(model, task)


def mlp_ablation_inputs(task: AdditionTask, n_reference: int, reference_seed: int, n_random: int,
                        random_seed: int, per_layout: int, sets_seed: int) -> tuple[Tensor, Tensor, int]:
    """``(reference, tokens, n_random)``: the MLP ablations' means come from ``reference``;
    they are scored on ``tokens``, ``n_random`` random questions followed by the cascade sets
    of depth 2 to 4 of :func:`~toybook.tasks.addition.analysis.question_sets`."""
    sets = question_sets(task, per_layout=per_layout, seed=sets_seed)
    cascades = [tokens for name, tokens in sets.items() if name.startswith("Cascade")]
    return (task.generate(n_reference, seed=reference_seed),
            torch.cat([task.generate(n_random, seed=random_seed), *cascades]), n_random)


def mlp_ablation_places(task: AdditionTask, model: torch.nn.Module) -> dict[tuple[int, str], list[int]]:
    """``{(layer, place): positions}`` where the chapter mean-ablates each MLP: in every layer
    but the last, the first operand, the ``+``, each ``y`` digit and every answer position; in
    the last layer, whose output at a question position reaches no answer, only the answer
    positions."""
    last = model.cfg.n_layers - 1
    answers = [prediction_position(task, j) for j in range(task.n_digits + 1)]
    earlier = {"x4 .. x0": [operand_positions(task, j)[0] for j in range(task.n_digits)],
               "+": [task.n_digits],
               **{f"y{j}": [operand_positions(task, j)[1]] for j in reversed(range(task.n_digits))},
               "every answer position": answers}
    return {(layer, place): positions for layer in range(last + 1)
            for place, positions in (earlier.items() if layer < last else [("every answer position", answers)])}


@torch.no_grad()
def mlp_ablation_scan(model: torch.nn.Module, task: AdditionTask,
                      places: Sequence[tuple[int, str]] | None = None) -> dict[tuple[int, str], Tensor]:
    """``{(layer, place): [B, A] bool}``: :func:`mlp_ablation_wrong` at each of
    :func:`mlp_ablation_places` (or those named in ``places``) on :func:`mlp_ablation_inputs`
    of :data:`MLP_ABLATION_SETTINGS`."""
    reference, tokens, _ = mlp_ablation_inputs(task, **MLP_ABLATION_SETTINGS)
    every = mlp_ablation_places(task, model)
    chosen = list(every) if places is None else list(places)
    unknown = [place for place in chosen if place not in every]
    if unknown:
        raise ToybookError(f"no MLP ablation at {unknown}; the places are {list(every)}")
    means = {layer: mean_activation(model, reference, f"blocks.{layer}.hook_mlp_out")[0]
             for layer in sorted({layer for layer, _ in chosen})}
    return {(layer, place): mlp_ablation_wrong(model, task, tokens, means[layer], layer, every[layer, place])
            for layer, place in chosen}


@torch.no_grad()
def mlp_ablation_record(model: torch.nn.Module, task: AdditionTask) -> dict[str, Any]:
    """:func:`mlp_ablation_scan` at every place, as a sidecar record
    (``scripts/record_ablations.py``): the wrong answers as packed bits;
    :func:`read_mlp_ablation_record` reads them back."""
    scan = mlp_ablation_scan(model, task)
    wrong = torch.stack(list(scan.values()))  # [P, B, A]
    return {**MLP_ABLATION_SETTINGS, "places": [[layer, place] for layer, place in scan],
            "wrong_shape": list(wrong.shape),
            "wrong_bits": _packed(wrong),
            "summary": f"MLP mean-ablations: {len(scan)} (layer, place) pairs on {wrong.shape[1]:,} questions"}


def read_mlp_ablation_record(record: Mapping[str, Any]) -> dict[tuple[int, str], Tensor]:
    """``{(layer, place): [B, A] bool}`` from an :func:`mlp_ablation_record`."""
    wrong = _unpacked(record["wrong_bits"], record["wrong_shape"])
    return {(layer, place): wrong[i] for i, (layer, place) in enumerate(record["places"])}


def _digits(task: AdditionTask, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    shape = (n, task.n_digits)
    return torch.randint(0, 10, shape, generator=generator), torch.randint(0, 10, shape, generator=generator)


def _keep_changed(task: AdditionTask, clean: Tensor, donor: Tensor, column: int) -> QuestionPairs:
    index = task.n_digits - column  # answer order
    changed = task.targets(clean)[:, index] != task.targets(donor)[:, index]
    return QuestionPairs(clean[changed], donor[changed], column)


def _redraw_column(task: AdditionTask, redrawn: int, column: int, n: int, seed: int) -> QuestionPairs:
    """Random questions and donors that redraw the digits of column ``redrawn`` only."""
    generator = torch.Generator().manual_seed(seed)
    x, y = _digits(task, n, generator)
    x2, y2 = x.clone(), y.clone()
    x2[:, redrawn], y2[:, redrawn] = (torch.randint(0, 10, (n,), generator=generator) for _ in range(2))
    return _keep_changed(task, task.encode_digits(x, y), task.encode_digits(x2, y2), column)


def base_add_pairs(task: AdditionTask, column: int, n: int = 1000, seed: int = 0) -> QuestionPairs:
    """The donor redraws the digits of ``column`` itself: ``A_column``'s base add changes,
    its incoming carry does not (``column`` in 0..n-1)."""
    return _redraw_column(task, column, column, n, seed)


def carry_pairs(task: AdditionTask, column: int, n: int = 1000, seed: int = 0) -> QuestionPairs:
    """The donor redraws the digits of ``column - 1``: only the carry into ``column`` can
    change (``column`` in 1..n)."""
    if column < 1:
        raise ToybookError("A0 receives no carry")
    return _redraw_column(task, column - 1, column, n, seed)


def cascade_pairs(task: AdditionTask, column: int, n: int = 2000, seed: int = 0) -> QuestionPairs:
    """Column ``column - 1`` sums to 9 in both questions, so the carry into ``column`` is
    whatever carry reaches ``column - 1`` from below; the donor redraws every column below
    ``column - 1``, and pairs are kept where that cascaded carry differs (``column`` in 2..n)."""
    if column < 2:
        raise ToybookError(f"a cascade into A{column} needs a column below column {column - 1}")
    generator = torch.Generator().manual_seed(seed)
    x, y = _digits(task, n, generator)
    y[:, column - 1] = 9 - x[:, column - 1]
    x2, y2 = x.clone(), y.clone()
    below = (n, column - 1)
    x2[:, : column - 1] = torch.randint(0, 10, below, generator=generator)
    y2[:, : column - 1] = torch.randint(0, 10, below, generator=generator)
    return _keep_changed(task, task.encode_digits(x, y), task.encode_digits(x2, y2), column)


@torch.no_grad()
def donor_agreements(
    model: torch.nn.Module, task: AdditionTask, pairs: QuestionPairs,
    patch_sets: Mapping[str, Sequence[Patch]],
) -> dict[str, float]:
    """:func:`donor_agreement` of each named set of patches, from one donor run
    (:func:`toybook.analysis.patching.patched_answers`)."""
    index = task.n_digits - pairs.column
    donor_answer = task.targets(pairs.donor)[:, index]
    predicted = patched_answers(model, pairs.clean, pairs.donor, patch_sets,
                                lambda logits: task.answer_logits(logits)[:, index].argmax(-1))
    return {label: (answer == donor_answer).double().mean().item()
            for label, answer in predicted.items()}


def donor_agreement(model: torch.nn.Module, task: AdditionTask, pairs: QuestionPairs, patches: Sequence[Patch]) -> float:
    """Fraction of clean questions whose predicted ``A_column`` becomes the donor's right
    answer when every activation in ``patches`` is copied from the donor run."""
    return donor_agreements(model, task, pairs, {"": patches})[""]