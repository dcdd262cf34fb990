"""The addition chapter's reading as data. The universe is every head and both MLPs at
every position (the 2-layer model: 2 × (4 + 1) × 18 = 180 components). The MLPs, which the
chapter does not read, are kept whole where answers are predicted."""

from __future__ import annotations

from functools import partial

from torch import Tensor

from toybook.analysis.faithfulness import Hypothesis, head, mlp
from toybook.analysis.patching import neurons
from toybook.analysis.scrubbing import Feature, Part, Reading, whole
from toybook.claims import Inputs
from toybook.evaluation import activations
from toybook.tasks.addition.presets import ADDITION, ADDITION_1L, ADDITION_1L_MATCHED
from toybook.tasks.addition.task import DigitSubtask

N_CTX, PREDICTIONS, OPERANDS = 18, range(11, 17), range(0, 11)  # A5..A0 predicted at 11..16
A5 = 11  # where the final carry is predicted: the chapter reads L0H2 and L0H3 there
N_INPUTS = 200  # 1,200 answer digits; a 1,000-input measurement takes ~20 s on 2 cores


def _universe(n_layers, n_heads=4):
    return (*(head(layer, p, h) for layer in range(n_layers) for h in range(n_heads) for p in range(N_CTX)),
            *(mlp(layer, p) for layer in range(n_layers) for p in range(N_CTX)))


def _at_predictions(n_layers, layer0_heads):
    return (*(head(0, p, h) for p in PREDICTIONS for h in layer0_heads),
            *(head(layer, p, h) for layer in range(1, n_layers) for p in PREDICTIONS for h in range(4)),
            *(mlp(layer, p) for layer in range(n_layers) for p in PREDICTIONS))


def _as_stated(n_layers):
    """The chapter's heads at the prediction positions, L0H3 only where A5 is predicted."""
    return (*_at_predictions(n_layers, (0, 1, 2)), head(0, A5, 3))


READING = Hypothesis(
    "reading", "the reading as the chapter states it: L0H0 and L0H1 add the digit pair, "
    "L0H2 reads the carry (with L0H3 for A5), layer 1 resolves cascades (all at the "
    "prediction positions, with both MLPs there)",
    circuit=_as_stated(2), universe=_universe(2), n_inputs=N_INPUTS,
)
WITH_H3 = Hypothesis(
    "with_h3", "the reading with L0H3 at every prediction position",
    circuit=_at_predictions(2, (0, 1, 2, 3)), universe=_universe(2), n_inputs=N_INPUTS,
)
WITH_OPERANDS = Hypothesis(
    "with_operands", "the reading with L0H3, and layer 0 (heads and MLP) at the operand "
    "positions, which layer 1 reads",
    circuit=(*_at_predictions(2, (0, 1, 2, 3)),
             *(head(0, p, h) for p in OPERANDS for h in range(4)), *(mlp(0, p) for p in OPERANDS)),
    universe=_universe(2), n_inputs=N_INPUTS,
)
READING_1L = Hypothesis(
    "reading", "the 2-layer reading's layer 0 in one layer: L0H0, L0H1, L0H2 (and L0H3 for "
    "A5) and the MLP at the prediction positions",
    circuit=_as_stated(1), universe=_universe(1), n_inputs=N_INPUTS,
)
WITH_H3_1L = Hypothesis(
    "with_h3", "all four heads and the MLP at the prediction positions",
    circuit=_at_predictions(1, (0, 1, 2, 3)), universe=_universe(1), n_inputs=N_INPUTS,
)

MATCHED_HEADS = ADDITION_1L_MATCHED.model.n_heads
AT_ANSWERS_MATCHED = Hypothesis(
    "at_answers", "all heads and the MLP at the prediction positions: in one layer, "
    "what the answers use is computed where they are predicted (the probes find the cascade "
    "there, after attention)",
    circuit=(*(head(0, p, h) for p in PREDICTIONS for h in range(MATCHED_HEADS)),
             *(mlp(0, p) for p in PREDICTIONS)),
    universe=_universe(1, MATCHED_HEADS), n_inputs=N_INPUTS,
)

def by_digit_subtask(tokens: Tensor) -> dict[str, Tensor]:
    """The answer digits of ``tokens [B, T]`` grouped by :class:`DigitSubtask` (what each
    needs beyond base add): ``{"BA" | "UC1" | "US9": bool [B, 6]}``, the ``groups`` of
    :meth:`~toybook.analysis.faithfulness.Hypothesis.measure`. A kind no digit has is left
    out."""
    kinds = ADDITION.task.digit_subtasks(tokens)
    return {kind.name: kinds == kind for kind in DigitSubtask if (kinds == kind).any()}


HYPOTHESES = {ADDITION.name: (READING, WITH_H3, WITH_OPERANDS),
              ADDITION_1L.name: (READING_1L, WITH_H3_1L),
              ADDITION_1L_MATCHED.name: (AT_ANSWERS_MATCHED,)}


# ---- readings as programs (toybook.analysis.scrubbing) ------------------------------------

NEURONS_CHOSEN_ON = Inputs(1000, seed=3)  # not the inputs the score is measured on
N_INPUTS_SCRUBBED = 200


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
    return Reading(name, text, tuple(parts), headline, n_inputs=N_INPUTS_SCRUBBED)


def readings(model) -> tuple[Reading, ...]:
    """The headline (the MLPs as their busiest neurons) and the same with the MLPs whole."""
    return (columns_reading(model, "columns", "the chapter's heads per column, layer 0 at y_j "
                            "as the column's digit sum, the MLPs as their busiest quarter of "
                            "neurons", mlps_whole=False, headline=True),
            columns_reading(model, "mlps_whole", "the same with the MLPs at the prediction "
                            "positions whole", mlps_whole=True))


READINGS = {name: readings for name in HYPOTHESES}
