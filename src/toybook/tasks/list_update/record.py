"""The list-update chapter's measurements of one model, and their record in a sidecar.

The chapter measures the same things on each of its twelve models: the layer ablations and
the default route (:func:`~toybook.tasks.list_update.analysis.ablation_effects`,
:func:`~toybook.tasks.list_update.analysis.default_route`), the path decomposition
(:func:`~toybook.tasks.list_update.analysis.path_effects` from layer 0, directly, and from
unrelated inputs), and the fraction of loss recovered by the chapter's two readings and by
the model's own circuit. All twelve take longer than the book's build can spend, so the
nine seed models carry theirs in their sidecars (record :data:`RECORD`, written by
``scripts/record_list_update.py``). The chapter recomputes the three shipped models' at
build time and reads the seeds'; ``tests/test_list_update_record.py`` recomputes a seed's
and compares.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
from torch import Tensor

from toybook.errors import ToybookError
from toybook.tasks.list_update.analysis import (
    NL_POS, DefaultRoute, ablation_effects, b2_route, default_route, path_effects, patching_pairs,
)
from toybook.tasks.list_update.hypotheses import own_circuit
from toybook.tasks.list_update.task import ListUpdateTask

RECORD = "chapter_measurements"
Paths = dict[tuple[str, str, int], float]  # (varied, receiver, k) -> value, as path_effects gives


def route_inputs(task: ListUpdateTask) -> Tensor:
    """``[1000, 11]``: the inputs of the ablations and the default route (the first 1,000 of
    the chapter's 2,000 comparison inputs, seed 99)."""
    return task.generate(2000, seed=99)[:1000]


def path_pairs(task: ListUpdateTask):
    """The path decomposition's patching pairs (100 rows each, seed 5)."""
    return patching_pairs(task, n=100, seed=5)


def path_donors(task: ListUpdateTask) -> Tensor:
    """``[100, 11]``: the unrelated inputs of the paths' baseline (seed 6)."""
    return task.generate(100, seed=6)


@dataclass(frozen=True)
class Measurements:
    """One model's numbers in the chapter.

    - ``ablated``: ``{"L0 zero": [2, 3], ...}`` updated/kept accuracy per answer with each
      layer's head output zero-, mean- or resample-ablated;
    - ``route``: :class:`~toybook.tasks.list_update.analysis.DefaultRoute`;
    - ``paths`` and ``path_accuracy``: layer 0's paths into layer 1 (recovered logit
      difference and clean-answer share); ``direct``: the token's own paths; ``random_paths``:
      layer 0's paths carrying an unrelated input (the baseline);
    - ``b2_route``: where an updated ``b2`` is read (``ELT_POS`` or ``NL_POS``).

    The faithfulness of the readings is not recorded here: it is cheap enough to measure
    (:func:`toybook.faithfulness_report`).
    """

    ablated: dict[str, Tensor]
    route: DefaultRoute
    paths: Paths
    path_accuracy: Paths
    direct: Paths
    random_paths: Paths
    b2_route: int

    @property
    def own_circuit(self):
        """The model's own reading (:func:`~toybook.tasks.list_update.hypotheses.own_circuit`)."""
        return own_circuit(self.b2_route, [self.paths["idx", "q", k] for k in range(3)])


@torch.no_grad()
def measure(model: torch.nn.Module, task: ListUpdateTask) -> Measurements:
    """:class:`Measurements` of ``model`` (about 3 s for one model on 2 cores)."""
    tokens, pairs = route_inputs(task), path_pairs(task)
    ablated = {name.replace(" head, ", " ").replace("-ablated", ""): accuracy
               for name, accuracy in ablation_effects(model, task, tokens).items() if " head, " in name}
    paths, path_accuracy = path_effects(model, pairs)
    return Measurements(
        ablated, default_route(model, task, tokens), paths, path_accuracy,
        path_effects(model, pairs, sender="direct")[0],
        path_effects(model, pairs, donors=path_donors(task))[0], b2_route(model, tokens),
    )


def _paths_record(paths: Paths) -> dict[str, float]:
    return {f"{varied} {receiver} {k}": value for (varied, receiver, k), value in paths.items()}


def _read_paths(record: Mapping[str, float]) -> Paths:
    return {(varied, receiver, int(k)): value
            for (varied, receiver, k), value in ((key.split(), v) for key, v in record.items())}


def to_record(measured: Measurements) -> dict[str, Any]:
    """Plain JSON data for a sidecar (``toybook.checkpoint.record_evaluation``)."""
    return {
        "summary": f"the list-update chapter's measurements (an updated b2 read from "
                   f"{'the second NL' if measured.b2_route == NL_POS else 'elt'})",
        "ablated": {name: value.tolist() for name, value in measured.ablated.items()},
        "route": {field.name: getattr(measured.route, field.name).tolist() for field in fields(DefaultRoute)},
        **{name: _paths_record(getattr(measured, name))
           for name in ("paths", "path_accuracy", "direct", "random_paths")},
        "b2_route": measured.b2_route,
    }


def read_record(metadata: Mapping[str, Any]) -> Measurements:
    """The :class:`Measurements` recorded in a checkpoint's ``metadata`` (its sidecar)."""
    record = metadata.get("evaluations", {}).get(RECORD)
    if record is None:
        raise ToybookError(f"this checkpoint has no {RECORD!r} record; "
                           "scripts/record_list_update.py CHECKPOINT writes it")

    def tensor(values) -> Tensor:
        return torch.tensor(values, dtype=torch.float64)

    return Measurements(
        {name: tensor(value) for name, value in record["ablated"].items()},
        DefaultRoute(**{name: tensor(value) for name, value in record["route"].items()}),
        *(_read_paths(record[name]) for name in ("paths", "path_accuracy", "direct", "random_paths")),
        record["b2_route"],
    )
