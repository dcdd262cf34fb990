"""The addition chapter's readings as programs: the chapter's heads kept whole where each
answer digit is predicted, layer 0 at each ``y_j`` scrubbed by the column's digit sum, and
each MLP at the prediction positions scrubbed by the digit sums (and, for MLP1, the carry)
that the digit predicted there depends on (the headline), or whole (to show what the MLP
features miss). The universe (115 of the 2-layer model's 180
components) is every head and MLP from which an answer logit can be reached."""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from toybook.analysis.patching import head, mlp
from toybook.analysis.faithfulness import Feature, Part, Reading, whole
from toybook.tasks.addition.presets import ADDITION, ADDITION_1L, ADDITION_1L_MATCHED
from toybook.tasks.addition.task import DigitSubtask, operand_positions, prediction_position

PREDICTIONS = range(11, 17)  # A5..A0 are predicted at 11..16
A5 = 11  # where the final carry is predicted: the chapter reads L0H2 and L0H3 there


def by_digit_subtask(tokens: Tensor) -> dict[str, Tensor]:
    """The answer digits of ``tokens [B, T]`` grouped by :class:`DigitSubtask` (what each
    needs beyond base add): ``{"BA" | "UC1" | "US9": bool [B, 6]}``, the ``groups`` of
    :func:`~toybook.analysis.faithfulness.faithfulness`. A kind no digit has is left
    out."""
    kinds = ADDITION.task.digit_subtasks(tokens)
    return {kind.name: kinds == kind for kind in DigitSubtask if (kinds == kind).any()}


ANSWER_GROUPS = by_digit_subtask  # the groups of answers faithfulness_report scores one by one


# ---- readings as programs (toybook.analysis.faithfulness) ------------------------------------

N_INPUTS = 200  # 1,200 answer digits


def column_sum(tokens: Tensor, column: int) -> Tensor:
    """``[B]``: ``x_j + y_j`` for column ``j`` (0 = units)."""
    x, y = ADDITION.task.operand_digits(tokens)
    return x[:, column] + y[:, column]


def sums_here_and_below(tokens: Tensor, answer: int) -> Tensor:
    """``[B, 2]``: the digit sums of the column answer digit ``A_answer`` is read from and of
    the column below (0 below the units): what layer 0's heads bring to its position (base
    add, and the carry or 9 below). ``A5``, the final carry, is read from column 4."""
    column = min(answer, ADDITION.task.n_digits - 1)
    below = column_sum(tokens, column - 1) if column else torch.zeros(len(tokens), dtype=torch.long)
    return torch.stack([column_sum(tokens, column), below], 1)


def sum_and_carry(tokens: Tensor, answer: int) -> Tensor:
    """``[B, 2]``: the digit sum of ``A_answer``'s column and the carry into it, cascades
    included: what determines the digit."""
    column = min(answer, ADDITION.task.n_digits - 1)
    carry = ADDITION.task.subtasks(tokens).UC1[:, column].long()
    return torch.stack([column_sum(tokens, column), carry], 1)


def answer_digit(tokens: Tensor, answer: int) -> Tensor:
    """``[B]``: the answer digit ``A_answer`` itself (a control: the coarsest key that
    determines what the MLP must write)."""
    return ADDITION.task.targets(tokens)[:, ADDITION.task.n_digits - answer]


MLP_KEYS = {"sums": ("the column's and the one below's digit sums", sums_here_and_below),
            "sum_and_carry": ("the column's digit sum and its carry in", sum_and_carry),
            "answer": ("the answer digit", answer_digit)}


def columns_reading(model, name: str, text: str, mlp_keys: tuple[str | None, ...], headline: bool = False,
                    every_head: bool = False) -> Reading:
    """The chapter's heads whole where each answer digit is predicted (L0H0, L0H1 and L0H2,
    or every head of the 8-head model; L0H3 where A5 is; every layer-1 head); in two layers,
    layer 0 at each ``y_j`` scrubbed by the column's digit sum; and each MLP ``layer`` at the
    prediction positions scrubbed by ``MLP_KEYS[mlp_keys[layer]]`` of the digit predicted
    there (whole where the key is None)."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    layer0_heads = (0, 1, 2) if n_heads == 4 and not every_head else tuple(range(n_heads))
    parts = []
    for position in PREDICTIONS:
        answer = prediction_position(ADDITION.task, 0) - position
        parts += whole(*(head(0, position, h) for h in layer0_heads), group="L0 heads")
        if position == A5 and len(layer0_heads) < n_heads:
            parts += whole(head(0, position, 3), group="L0H3 at A5")
        parts += whole(*(head(1, position, h) for layer in range(1, n_layers) for h in range(n_heads)),
                       group="L1 heads")
        for layer, key in enumerate(mlp_keys):
            if key is None:
                parts += whole(mlp(layer, position), group=f"MLP{layer}")
            else:
                feature = Feature(MLP_KEYS[key][0], partial(MLP_KEYS[key][1], answer=answer))
                parts.append(Part(mlp(layer, position), feature, group=f"MLP{layer}"))
    if n_layers == 2:
        for column in range(ADDITION.task.n_digits):
            total = Feature("the column's digit sum", partial(column_sum, column=column))
            y = operand_positions(ADDITION.task, column)[1]
            parts += [Part(c, total, group="L0 at y") for c in (*(head(0, y, h) for h in range(n_heads)), mlp(0, y))]
    return Reading(name, text, tuple(parts), headline, n_inputs=N_INPUTS)


def readings(model) -> tuple[Reading, ...]:
    """The headline, ``columns``: every head kept whole where each digit is predicted (not
    named by number: the seeds number their heads differently), layer 0 at each ``y_j`` as
    the column's digit sum (two layers), MLP0 at each prediction position as a function of
    the two column sums its heads bring, and MLP1 of the column sum and the carry in. Then,
    where they are not the whole model: the same with the chapter's heads by number
    (``named_heads``, the shipped 4-head models' reading), with MLP1 keyed by the answer
    digit alone (``mlp1_by_answer``, a control), and with the MLPs whole (``mlps_whole``)."""
    two, four = model.cfg.n_layers == 2, model.cfg.n_heads == 4
    keys = ("sums", "sum_and_carry") if two else ("sums",)
    found = (columns_reading(model, "columns", "every head where each digit is predicted; layer 0 at "
                             "y_j as the column's digit sum; MLP0 as a function of the column's and the "
                             "one below's digit sums" + ("; MLP1 of the digit sum and the carry in" if two else ""),
                             keys, headline=True, every_head=True),)
    if four:
        found += (columns_reading(model, "named_heads", "the same with layer 0's heads by number: L0H0, "
                                  "L0H1 and L0H2, and L0H3 where A5 is predicted", keys),)
    if two:
        found += (columns_reading(model, "mlp1_by_answer", "the headline with MLP1 keyed by the "
                                  "answer digit alone (a control)", ("sums", "answer"), every_head=True),
                  columns_reading(model, "mlps_whole", "the headline with the MLPs at the prediction "
                                  "positions whole", (None, None), every_head=True))
    return found


READINGS = {preset.name: readings for preset in (ADDITION, ADDITION_1L, ADDITION_1L_MATCHED)}
