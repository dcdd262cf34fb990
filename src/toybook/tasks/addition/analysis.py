"""Addition question sets built by construction, one per question class, and accuracy on them.

Random questions rarely contain the hard cases: a cascade of two or more sum-9 columns
fed by a carry (e.g. 00555 + 00445) is a few percent of uniform questions, and depth 4
(e.g. 44445 + 55555) far rarer. :func:`question_sets` builds each class on purpose: it
chooses where the carries and sum-9 columns are (every placement the class allows, in
turn) and fills each column with a random digit pair of the required kind.

Shapes: B questions, n digits per operand (column 0 = units).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any, Iterable

import torch
from torch import Tensor

from toybook.analysis.probes import probe_accuracy
from toybook.errors import ToybookError
from toybook.evaluation import batch_rows, batched_cache, forward_batches, fresh_inputs
from toybook.tasks.addition.task import AdditionTask, operand_positions, prediction_position

# digit pairs (x_j, y_j) by what the column does: no carry and not 9, exactly 9, a carry
_PAIRS = {
    kind: torch.tensor([(a, b) for a in range(10) for b in range(10) if test(a + b)])
    for kind, test in (("plain", lambda s: s <= 8), ("nine", lambda s: s == 9), ("carry", lambda s: s >= 10))
}


def _fill(layouts: list[list[str]], per_layout: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Operand digits ``x, y [len(layouts) * per_layout, n]`` with column j of every question
    drawn from the pairs of kind ``layout[j]``."""
    xs, ys = [], []
    for layout in layouts:
        x = torch.empty(per_layout, len(layout), dtype=torch.long)
        y = torch.empty_like(x)
        for j, kind in enumerate(layout):
            pairs = _PAIRS[kind]
            chosen = pairs[torch.randint(0, len(pairs), (per_layout,), generator=generator)]
            x[:, j], y[:, j] = chosen[:, 0], chosen[:, 1]
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def _cascade_layouts(n: int, depth: int) -> list[list[str]]:
    """A carry in column c followed by ``depth`` sum-9 columns, every c that fits."""
    layouts = []
    for carry in range(n - depth):
        layout = ["plain"] * n
        layout[carry] = "carry"
        for j in range(carry + 1, carry + 1 + depth):
            layout[j] = "nine"
        layouts.append(layout)
    return layouts


def question_sets(task: AdditionTask, per_layout: int = 200, seed: int = 0) -> dict[str, Tensor]:
    """Questions ``[B, 3n+3]`` by class, ``per_layout`` random fillings of every layout:

    - ``BA``: no column carries and none sums to 9 (one layout);
    - ``UC1``: carries in every non-empty set of columns, no column sums to 9, so carries
      are used but never cascade (2^n − 1 layouts);
    - ``SimpleUS9``: one carry, then exactly one sum-9 column that passes it on (n − 1);
    - ``Cascade2``, ``Cascade3``, ``Cascade4``: one carry, then 2, 3 or 4 sum-9 columns in a
      row (n − d layouts each; d ≤ n − 1).
    """
    n = task.n_digits
    generator = torch.Generator().manual_seed(seed)
    layouts = {
        "BA": [["plain"] * n],
        "UC1": [
            ["carry" if j in chosen else "plain" for j in range(n)]
            for size in range(1, n + 1) for chosen in combinations(range(n), size)
        ],
        "SimpleUS9": _cascade_layouts(n, 1),
        **{f"Cascade{d}": _cascade_layouts(n, d) for d in range(2, min(4, n - 1) + 1)},
    }
    return {
        name: task.encode_digits(*_fill(class_layouts, per_layout, generator))
        for name, class_layouts in layouts.items()
    }


@dataclass(frozen=True)
class AdditionAccuracy:
    """Wrong answers of an addition model on random questions and on each question set."""

    n_random: int
    seed: int
    random_wrong: int  # questions with any wrong digit
    random_wrong_per_digit: list[int]  # answer order, A_n first
    sets: dict[str, list[int]]  # name → [questions, wrong questions]

    @property
    def summary(self) -> str:
        wrong_sets = sum(wrong for _, wrong in self.sets.values())
        n_sets = sum(n for n, _ in self.sets.values())
        return (f"{self.random_wrong:,} wrong of {self.n_random:,} random; "
                f"{wrong_sets:,} wrong of {n_sets:,} hand-built (BA, UC1, US9, cascades)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


@torch.no_grad()
def addition_accuracy(
    model: torch.nn.Module, task: AdditionTask, n_random: int = 1_000_000, seed: int = 12345,
    per_layout: int = 200, batch_size: int | None = None, progress: bool = False,
) -> AdditionAccuracy:
    """Accuracy on ``n_random`` uniform random questions and on :func:`question_sets`."""
    wrong_rows, wrong_per_digit = 0, torch.zeros(task.n_answers, dtype=torch.long)
    for _, tokens, logits in forward_batches(
        model, fresh_inputs(task, seed), n_random, batch_size or batch_rows(task.n_ctx), progress,
        desc="random questions",
    ):
        wrong = (~task.correct(logits, tokens)).cpu()
        wrong_rows += int(wrong.any(1).sum())
        wrong_per_digit += wrong.sum(0)
    sets = {}
    for name, tokens in question_sets(task, per_layout, seed).items():
        wrong = sum(
            int((~task.correct(logits, batch)).any(1).sum())
            for _, batch, logits in forward_batches(model, tokens, batch_size=batch_size)
        )
        sets[name] = [len(tokens), wrong]
    return AdditionAccuracy(n_random, seed, wrong_rows, wrong_per_digit.tolist(), sets)


PROBE_NINE_SHARE = 0.3  # the probes' questions: the chance that a column is a sum-9 pair


def probe_questions(task: AdditionTask, n: int, seed: int, nine_share: float = PROBE_NINE_SHARE) -> Tensor:
    """``n`` questions whose columns each sum to 9 with probability about ``nine_share``
    (``y_j = 9 - x_j``), uniform otherwise: enough sum-9 columns for a probe to see cascades."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 10, (n, task.n_digits), generator=generator)
    y = torch.randint(0, 10, (n, task.n_digits), generator=generator)
    force = torch.rand(y.shape, generator=generator) < nine_share
    return task.encode_digits(x, torch.where(force, 9 - x, y))


PROBE_TARGETS = {  # name → (what, classes); at "answer", column j's at the position predicting A_j
    "sum": ("x_j + y_j", 19),
    "sum mod 10": ("(x_j + y_j) mod 10, the base add", 10),
    "carry below": ("column j-1 sums to 10 or more", 2),
    "nine below": ("column j-1 sums to exactly 9", 2),
    "carry in": ("a carry reaches column j (cascades included), scored where column j-1 sums to 9", 2),
    "carry here": ("column j sums to 10 or more", 2),  # at "operand": at y_j's position
    "nine here": ("column j sums to exactly 9", 2),
}
PROBE_PLACES = {  # where → the targets probed there
    "answer": ("sum", "sum mod 10", "carry below", "nine below", "carry in"),
    "operand": ("sum", "carry here", "nine here"),
}
PROBE_SETTINGS = {"n_train": 4000, "n_test": 2000, "seed": 0}
PROBE_RECORD = "probes_4000_2000_seed0"  # a sidecar's record of column_probes(**PROBE_SETTINGS)


def residual_stages(n_layers: int) -> dict[str, str]:
    """Stage label → hook of the residual stream before and after each attention and MLP."""
    stages = {"embeddings": "blocks.0.hook_resid_pre"}
    for layer in range(n_layers):
        stages[f"after L{layer} attention"] = f"blocks.{layer}.hook_resid_mid"
        stages[f"after MLP{layer}"] = f"blocks.{layer}.hook_resid_post"
    return stages


def _probe_position(task: AdditionTask, place: str, j: int) -> int:
    """Where column ``j`` is probed: the position that predicts ``A_j``, or that of ``y_j``."""
    return prediction_position(task, j) if place == "answer" else operand_positions(task, j)[1]


def _check_probe_choice(stages, all_stages, targets, columns, all_columns, places) -> None:
    for asked, allowed, what in ((stages, all_stages, "stages"), (targets, PROBE_TARGETS, "targets"),
                                 (columns, all_columns, "columns"), (places, PROBE_PLACES, "places")):
        if asked is not None and not set(asked) <= set(allowed):
            raise ToybookError(f"no probe {what} {sorted(set(asked) - set(allowed))}; "
                               f"they are: {', '.join(map(str, allowed))}")


def column_quantities(task: AdditionTask, tokens: Tensor) -> list[dict[str, Tensor]]:
    """Per column ``j`` (0..n_digits), the quantities that :data:`PROBE_TARGETS` names,
    ``{name: [N]}``, for the questions ``tokens``: those of the column itself
    (``j < n_digits``), of the column below (``j > 0``) and the carry into it (``j > 1``)."""
    x, y = task.operand_digits(tokens)
    column_sum, labels = x + y, task.subtasks(tokens)
    columns = []
    for j in range(task.n_digits + 1):
        quantities = {}
        if j < task.n_digits:
            quantities["sum"] = column_sum[:, j]
            quantities["sum mod 10"], quantities["carry here"] = column_sum[:, j] % 10, labels.MC1[:, j]
            quantities["nine here"] = labels.MS9[:, j]
        if j > 0:
            quantities["carry below"], quantities["nine below"] = labels.MC1[:, j - 1], labels.MS9[:, j - 1]
        if j > 1:
            quantities["carry in"] = labels.UC1[:, j] if j < task.n_digits else (
                labels.MC1[:, j - 1] | (labels.MS9[:, j - 1] & labels.UC1[:, j - 1]))
        columns.append(quantities)
    return columns


def column_probes(
    model: torch.nn.Module, task: AdditionTask, n_train: int = 4000, n_test: int = 2000, seed: int = 0,
    columns: Iterable[int] | None = None, targets: Iterable[str] | None = None,
    stages: Iterable[str] | None = None, places: Iterable[str] = tuple(PROBE_PLACES),
    baseline: bool = True,
) -> list[dict[str, Any]]:
    """Logistic probes (:func:`~toybook.analysis.probes.probe_accuracy`) of column ``j``'s
    quantities (:data:`PROBE_TARGETS`) at each residual stage, at two places: the position
    that predicts ``A_j`` (``"answer"``) and, in layer 0, the position of ``y_j``
    (``"operand"``). Fitted on ``n_train`` questions of :func:`probe_questions`, scored on
    ``n_test`` others (``carry in``: on those where column ``j-1`` sums to 9, where it
    depends on the cascade) against the same probe fitted to shuffled labels. One row per
    probe; ``columns``, ``targets``, ``stages`` (labels of :func:`residual_stages`) and
    ``places`` pick a subset, fitted exactly as in the whole table; ``baseline=False`` skips
    the shuffled-label fits (a claim needs only the accuracy)."""
    all_stages, all_columns = residual_stages(model.cfg.n_layers), range(task.n_digits + 1)
    _check_probe_choice(stages, all_stages, targets, columns, all_columns, places)
    stages = {name: hook for name, hook in all_stages.items() if stages is None or name in set(stages)}
    wanted_targets = set(PROBE_TARGETS if targets is None else targets)
    wanted_columns = set(all_columns if columns is None else columns)
    kept = sorted({_probe_position(task, place, j) for place in places for j in wanted_columns
                   if place == "answer" or j < task.n_digits})
    tokens = probe_questions(task, n_train + n_test, seed)
    cache = batched_cache(model, tokens, list(stages.values()), batch_size=500,  # a Binder kernel's memory
                          positions=kept)  # [N, len(kept), d]
    labels, by_column = task.subtasks(tokens), column_quantities(task, tokens)
    rows = []
    for place in places:
        for j in sorted(wanted_columns):
            quantities = by_column[j]
            if place == "answer":
                here = stages
            elif j < task.n_digits:  # layer 0 only: layer 1 reads what layer 0 left there
                here = {name: hook for name, hook in stages.items() if name in list(all_stages)[:3]}
            else:
                continue
            at = kept.index(_probe_position(task, place, j))
            for target in PROBE_PLACES[place]:
                if target not in wanted_targets or target not in quantities:
                    continue
                keep = torch.ones(len(tokens), dtype=torch.bool)
                if target == "carry in":  # fitted on all, scored where it depends on the cascade
                    keep[n_train:] = labels.MS9[n_train:, j - 1]
                for stage, hook in here.items():
                    result = probe_accuracy(cache[hook][keep, at], quantities[target][keep].long(), n_train,
                                            n_classes=PROBE_TARGETS[target][1], seed=seed + j,
                                            shuffled_baseline=baseline)
                    rows.append({"place": place, "column": j, "target": target, "stage": stage,
                                 **asdict(result)})
    return rows
