"""The addition chapter's reading as data. The universe is every head and both MLPs at
every position (the 2-layer model: 2 × (4 + 1) × 18 = 180 components). The MLPs, which the
chapter does not read, are kept whole where answers are predicted."""

from __future__ import annotations

from torch import Tensor

from toybook.analysis.faithfulness import Hypothesis, head, mlp
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
