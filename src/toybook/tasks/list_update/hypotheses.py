"""The list-update chapter's reading as data: which head outputs, at which positions, carry
the answer (every head at every position is the universe: 2 layers × 11 positions)."""

from __future__ import annotations

from toybook.analysis.faithfulness import Hypothesis, head
from toybook.tasks.list_update.presets import (
    LIST_UPDATE, LIST_UPDATE_SHORTFORMER, LIST_UPDATE_SHORTFORMER_BATCHWISE,
)

UNIVERSE = tuple(head(layer, p) for layer in range(2) for p in range(11))
_L1_READS = tuple(head(1, p) for p in (7, 8, 9))  # L1 at the three queries

READING = Hypothesis(
    "reading", "the reading as the chapter states it: L1 at the queries (7–9) copies from the "
    "source; L0 tags `elt` with its index (6), copies `elt` into the second NL (7), and "
    "tells b2's query where `idx` points (9)",
    circuit=(head(0, 6), head(0, 7), head(0, 9), *_L1_READS), universe=UNIVERSE, n_inputs=500,
)
WITH_LIST = Hypothesis(
    "with_list", "the reading restated after measuring it: also L0 at the list entries "
    "a0..a2 (1–3), whose output L1 copies along with the token",
    circuit=(*(head(0, p) for p in (1, 2, 3, 6, 7, 9)), *_L1_READS), universe=UNIVERSE, n_inputs=500,
)

HYPOTHESES = {LIST_UPDATE.name: (READING, WITH_LIST),
              LIST_UPDATE_SHORTFORMER.name: (READING, WITH_LIST),
              LIST_UPDATE_SHORTFORMER_BATCHWISE.name: (READING, WITH_LIST)}
