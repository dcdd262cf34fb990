"""The addition chapter's readings as programs: the chapter's heads kept whole where each
answer digit is predicted, layer 0 at each ``y_j`` scrubbed by the column's digit sum, and
the MLPs at the prediction positions as their busiest quarter of neurons (the headline) or
whole (to show what the neurons miss). The universe (115 of the 2-layer model's 180
components) is every head and MLP from which an answer logit can be reached."""

from __future__ import annotations

from functools import partial

from torch import Tensor

from toybook.analysis.patching import head, mlp, neurons
from toybook.analysis.faithfulness import Feature, Part, Reading, whole
from toybook.claims import Inputs
from toybook.evaluation import activations
from toybook.tasks.addition.presets import ADDITION, ADDITION_1L, ADDITION_1L_MATCHED
from toybook.tasks.addition.task import DigitSubtask

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

NEURONS_CHOSEN_ON = Inputs(1000, seed=3)  # not the inputs the score is measured on
N_INPUTS = 200  # 1,200 answer digits


def column_sum(tokens: Tensor, column: int) -> Tensor:
    """``[B]``: ``x_j + y_j`` for column ``j`` (0 = units)."""
    n = ADDITION.task.n_digits
    return tokens[:, n - 1 - column] + tokens[:, 2 * n - column]


def busiest_neurons(model, layer: int, share: float = 0.25) -> list[int]:
    """The ``share`` of MLP ``layer``'s neurons with the largest mean activation at the
    prediction positions, on :data:`NEURONS_CHOSEN_ON`: the part of the MLP a reading keeps."""
    name = f"blocks.{layer}.mlp.hook_post"
    post = activations(model, NEURONS_CHOSEN_ON.of(ADDITION.task), [name])[name][:, PREDICTIONS]
    k = int(share * post.shape[-1])
    return sorted(post.abs().mean((0, 1)).topk(k).indices.tolist())


def columns_reading(model, name: str, text: str, mlps_whole: bool, headline: bool = False) -> Reading:
    """The chapter's heads whole where the answers are predicted (L0H0, L0H1 and L0H2; L0H3
    where A5 is; every layer-1 head); in two layers, layer 0 at each ``y_j`` scrubbed by the
    column's digit sum; the MLPs at the prediction positions whole, or as their busiest
    quarter of neurons (:func:`busiest_neurons`) with the rest resampled."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    layer0_heads = (0, 1, 2) if n_heads == 4 else tuple(range(n_heads))
    kept = {layer: busiest_neurons(model, layer) for layer in range(n_layers)} if not mlps_whole else {}
    parts = []
    for position in PREDICTIONS:
        parts += whole(*(head(0, position, h) for h in layer0_heads), group="L0 heads")
        if position == A5 and n_heads == 4:
            parts += whole(head(0, position, 3), group="L0H3 at A5")
        parts += whole(*(head(1, position, h) for layer in range(1, n_layers) for h in range(n_heads)),
                       group="L1 heads")
        for layer in range(n_layers):
            parts += (whole(mlp(layer, position), group=f"MLP{layer}") if mlps_whole
                      else whole(neurons(layer, position, kept[layer]), group=f"MLP{layer} neurons"))
    if n_layers == 2:
        for column in range(ADDITION.task.n_digits):
            total = Feature("the column's digit sum", partial(column_sum, column=column))
            y = 2 * ADDITION.task.n_digits - column
            parts += [Part(c, total, group="L0 at y") for c in (*(head(0, y, h) for h in range(n_heads)), mlp(0, y))]
    return Reading(name, text, tuple(parts), headline, n_inputs=N_INPUTS)


def readings(model) -> tuple[Reading, ...]:
    """The headline (the MLPs as their busiest neurons) and the same with the MLPs whole."""
    return (columns_reading(model, "columns", "the chapter's heads per column, layer 0 at y_j "
                            "as the column's digit sum, the MLPs as their busiest quarter of "
                            "neurons", mlps_whole=False, headline=True),
            columns_reading(model, "mlps_whole", "the same with the MLPs at the prediction "
                            "positions whole", mlps_whole=True))


READINGS = {preset.name: readings for preset in (ADDITION, ADDITION_1L, ADDITION_1L_MATCHED)}
