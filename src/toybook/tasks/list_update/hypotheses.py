"""The list-update chapter's readings as programs: which head outputs, at which positions,
carry the answer, each kept whole (the rest of the universe, the one head of layer 0 at
positions 0..9 and of layer 1 at the queries 7..9, resampled). Two readings are the same
for every model; :func:`own_circuit` is each model's own, built from where it was measured
to read."""

from __future__ import annotations

from typing import Sequence

import torch

from toybook.analysis.faithfulness import Reading, whole
from toybook.analysis.patching import head
from toybook.claims import Inputs
from toybook.errors import ToybookError
from toybook.tasks.list_update.analysis import (
    ELT_POS, LIST_POS, NL_POS, QUERY_POS, b2_route, composition_paths, patching_pairs,
)
from toybook.tasks.list_update.presets import (
    LIST_UPDATE, LIST_UPDATE_SHORTFORMER, LIST_UPDATE_SHORTFORMER_BATCHWISE,
)
from toybook.tasks.list_update.task import ListUpdateTask

# Where each model's own reading is measured (the route, the idx paths): not the inputs the
# chapter measured on (toybook.tasks.list_update.record), nor those the faithfulness number is.
ROUTE_INPUTS = Inputs(2000, seed=7)
PATH_PAIRS = Inputs(200, seed=17)  # patching pairs (patching_pairs' n and seed)


def _heads(layer0: Sequence[int]) -> tuple:
    """Layer 0's head at ``layer0`` and layer 1's at the three queries, kept whole."""
    return (*whole(*(head(0, p, 0) for p in layer0)), *whole(*(head(1, p, 0) for p in QUERY_POS)))


READING = Reading(
    "reading", "the reading as the chapter states it: L1 at the queries (7–9) copies from the "
    "source; L0 tags `elt` with its index (6), copies `elt` into the second NL (7), and "
    "tells b2's query where `idx` points (9)", _heads((6, 7, 9)),
)
WITH_LIST = Reading(
    "with_list", "the reading restated after measuring it: also L0 at the list entries "
    "a0..a2 (1–3), whose output L1 copies along with the token", _heads((1, 2, 3, 6, 7, 9)),
)

QUERY_PATH_MIN = 0.25  # the path table's shares fall at <= 0.16 or >= 0.5


def own_circuit(route: int, idx_via_query: Sequence[float]) -> Reading:
    """A model's own reading (``"own"``, the headline), from two measurements on it: where it
    reads an updated ``b2`` (``route``, :func:`~toybook.tasks.list_update.analysis.b2_route`:
    ``ELT_POS`` or ``NL_POS``) and, per answer ``b0..b2``, the share of an ``idx`` change that
    reaches layer 1 through its queries (``idx_via_query``, path patching:
    :func:`~toybook.tasks.list_update.analysis.composition_paths`). Layer 1 at the queries,
    layer 0 at the list (what layer 1 copies along with the token) and at ``elt`` (the key
    that tells ``idx = k``), layer 0 at the second ``NL`` where ``b2`` is read there, and at
    ``b_k``'s query where at least :data:`QUERY_PATH_MIN` of ``idx`` comes that way."""
    if route not in (ELT_POS, NL_POS):
        raise ToybookError(f"route is {ELT_POS} (elt) or {NL_POS} (the second NL), got {route!r}")
    if len(idx_via_query) != len(QUERY_POS):
        raise ToybookError(f"idx_via_query has one share per answer b0..b2, got {list(idx_via_query)}")
    via_query = [QUERY_POS[k] for k, share in enumerate(idx_via_query) if share >= QUERY_PATH_MIN]
    l0 = sorted({*LIST_POS, ELT_POS, *([NL_POS] if route == NL_POS else []), *via_query})
    return Reading(
        "own", "each model's own reading: L1 at the queries; L0 at the list (1–3) and at elt "
        "(6); at the second NL (7) where b2 is read from it; at b_k's query where idx reaches "
        "b_k through layer 1's queries", _heads(l0), headline=True,
    )


@torch.no_grad()
def measured_own_circuit(model: torch.nn.Module, task: ListUpdateTask) -> Reading:
    """:func:`own_circuit` of ``model``, measured on inputs the faithfulness number is not
    (:data:`ROUTE_INPUTS` for the route, ``idx`` patching pairs of :data:`PATH_PAIRS` for
    the paths)."""
    pairs = [pair for pair in patching_pairs(task, PATH_PAIRS.n, PATH_PAIRS.seed) if pair.varied == "idx"]
    paths = composition_paths(model, pairs)
    return own_circuit(b2_route(model, ROUTE_INPUTS.of(task)),
                       [paths["idx", "q", k] for k in range(len(QUERY_POS))])


def readings(model: torch.nn.Module) -> tuple[Reading, ...]:
    """The two readings the chapter states for every model, and ``model``'s own (the
    headline), its route and query paths measured on inputs the score is not."""
    return READING, WITH_LIST, measured_own_circuit(model, ListUpdateTask())


READINGS = {preset.name: readings
            for preset in (LIST_UPDATE, LIST_UPDATE_SHORTFORMER, LIST_UPDATE_SHORTFORMER_BATCHWISE)}
