"""Each task's accuracy measurement, the one its chapter reports, as the single path behind
``toybook eval``, ``toybook eval --record`` and ``toybook reproduce``.

=============  ===============================================  ==========================
task           measurement                                      recorded as
=============  ===============================================  ==========================
max_of_2,      every input (:func:`evaluate_exhaustively`)       ``exhaustive``
list_update    (list_update without ``--all``: a random sample)  (``random_<n>_seed<s>``)
addition       seeded random questions and every hand-built set  ``accuracy_<n>_seed<s>``
majority       seeded uniform sequences, by position and margin  ``uniform_<n>_seed<s>``
=============  ===============================================  ==========================

A :class:`Measurement` counts ``n_wrong`` of ``n`` in the unit its chapter uses (whole
sequences; majority: the last position), so a rerun can be compared with the record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toybook.errors import ToybookError

if TYPE_CHECKING:  # imported when a measurement runs: the CLI's help needs only the constants
    import torch

    from toybook.tasks import Task

DEFAULT_SEED = 12345
DEFAULT_N = 10_000
SMALL_INPUT_SPACE = 100_000  # always measured exhaustively (max_of_2: 4,096)


@dataclass(frozen=True)
class Measurement:
    """One accuracy measurement: ``n_wrong`` of ``n`` counted the chapter's way."""

    label: str  # its key in the sidecar's evaluations
    what: str  # e.g. "all 4,096 inputs"
    n: int
    n_wrong: int
    details: tuple[str, ...]  # further report lines
    result: dict[str, Any]  # what --record stores
    seconds: float

    def report(self, name: str) -> str:
        head = (f"{name} on {self.what}: {self.n - self.n_wrong:,} correct, "
                f"{self.n_wrong:,} wrong ({self.seconds:.0f} s)")
        return "\n".join([head, *(f"  {line}" for line in self.details)])


def measure(
    model: torch.nn.Module, task: Task, n: int | None = None, seed: int = DEFAULT_SEED,
    exhaustive: bool = False, batch_size: int | None = None, progress: bool = False,
) -> Measurement:
    """The task's measurement on ``model``: every input where ``exhaustive`` or where the
    task has at most :data:`SMALL_INPUT_SPACE` inputs; otherwise ``n`` seeded inputs
    (default :data:`DEFAULT_N`) measured the chapter's way."""
    if n is not None and n < 1:
        raise ToybookError(f"a measurement needs at least one input, got n={n}")
    if exhaustive and task.n_inputs is None:
        raise ToybookError(f"task {task.name!r} has no finite input space; use --n instead of --all")
    started = time.perf_counter()
    if exhaustive or is_small(task):
        kind, args = "exhaustive", (model, task, batch_size, progress)
    else:
        kind, args = _sampled_kind(task), (model, task, n or DEFAULT_N, seed, batch_size, progress)
    label, what, count, wrong, details, result = _KINDS[kind](*args)
    return Measurement(label, what, count, wrong, tuple(details), result,
                       time.perf_counter() - started)


def remeasure(
    model: torch.nn.Module, task: Task, evaluations: dict[str, Any], progress: bool = False,
) -> tuple[Measurement, int | None]:
    """Repeat on ``model`` the measurement recorded in ``evaluations`` (a sidecar's): the new
    measurement, and the recorded ``n_wrong`` (``None`` where nothing was recorded; then the
    task's measurement runs with 100,000 inputs, or every input where they can be listed)."""
    if task.n_inputs is not None and _sampled_kind(task) == "random":
        measurement = measure(model, task, exhaustive=True, progress=progress)
        recorded = evaluations.get("exhaustive")
        return measurement, None if recorded is None else int(recorded["n_wrong"])
    kind = _sampled_kind(task)
    for label, record in evaluations.items():
        if label.startswith(_PREFIX[kind]):
            n, seed = (record[key] for key in _PARAMETERS[kind])
            measurement = measure(model, task, n, seed, progress=progress)
            return measurement, _RECORDED_WRONG[kind](record)
    return measure(model, task, 100_000, DEFAULT_SEED, progress=progress), None


def describe_record(label: str, record: dict[str, Any]) -> tuple[str, str, int, int]:
    """``(label, what, n, n_wrong)`` of a recorded measurement, counted as :func:`measure`
    counts it."""
    if label == "exhaustive":
        return label, f"all {record['n']:,} inputs", int(record["n"]), int(record["n_wrong"])
    kind = next((kind for kind, prefix in _PREFIX.items() if label.startswith(prefix)), None)
    if kind is None:
        raise ToybookError(f"no measurement is recorded as {label!r}")
    if kind == "addition":
        n_sets = sum(count for count, _ in record["sets"].values())
        n, what = record["n_random"] + n_sets, (f"{record['n_random']:,} random questions "
                                                f"(seed {record['seed']}) and {n_sets:,} hand-built")
    elif kind == "majority":
        n, what = record["n"], f"the last position of {record['n']:,} sequences (seed {record['seed']})"
    else:
        n, what = record["n"], f"{record['n']:,} random sequences (seed {record['seed']})"
    return label, what, int(n), _RECORDED_WRONG[kind](record)


def is_small(task: Task) -> bool:
    return task.n_inputs is not None and task.n_inputs <= SMALL_INPUT_SPACE


def _sampled_kind(task: Task) -> str:
    return task.name if task.name in ("addition", "majority") else "random"


def _exhaustive(model, task, batch_size, progress):
    from toybook.evaluation import evaluate_exhaustively

    result = evaluate_exhaustively(model, task, batch_size=batch_size, progress=progress)
    details = [
        f"smallest margin {result.min_margin:.3g} (batches of {result.batch_size:,} on "
        f"{result.device})",
        "wrong per answer position: " + "  ".join(
            f"{name} {wrong:,}" for name, wrong in zip(task.answer_names, result.wrong_per_pos)),
        *(f"  {result.group_slot} = {value}: {result.n_by_group[value]:,} inputs, wrong per "
          f"answer position {wrong}" for value, wrong in result.wrong_by_group.items()),
    ]
    return ("exhaustive", f"all {result.n:,} inputs", result.n, result.n_wrong, details,
            result.to_dict())


def _random(model, task, n, seed, batch_size, progress):
    from toybook.evaluation import evaluate

    result = evaluate(model, task, task.eval_data(n, seed), batch_size=batch_size)
    details = [f"accuracy {result.acc:.4%}, loss {result.loss:.3g}"]
    if task.n_answers <= 12:
        details.append("per answer position: " + "  ".join(
            f"{name} {acc:.4%}" for name, acc in zip(task.answer_names, result.acc_per_pos)))
    return (f"random_{n}_seed{seed}", f"{n:,} random sequences (seed {seed})", n,
            result.n_wrong, details, {**result.to_dict(), "seed": seed})


def _addition(model, task, n, seed, batch_size, progress):
    from toybook.analysis.addition import addition_accuracy

    result = addition_accuracy(model, task, n, seed, batch_size=batch_size, progress=progress)
    n_sets = sum(count for count, _ in result.sets.values())
    wrong = result.random_wrong + sum(wrong for _, wrong in result.sets.values())
    details = [f"{n:,} random questions: {result.random_wrong:,} wrong; per answer digit "
               f"{result.random_wrong_per_digit}",
               *(f"{name:<10} {count:>6,} questions, {wrong_here:,} wrong"
                 for name, (count, wrong_here) in result.sets.items())]
    return (f"accuracy_{n}_seed{seed}", f"{n:,} random questions (seed {seed}) and "
            f"{n_sets:,} hand-built", n + n_sets, wrong, details, result.to_dict())


def _majority(model, task, n, seed, batch_size, progress):
    from toybook.analysis.majority import majority_accuracy

    result = majority_accuracy(model, task, n, seed, batch_size=batch_size, progress=progress)
    details = [f"last-position ties: {result.tie_acc:.4%} of {result.tie_n:,}",
               f"all positions: {result.all_acc:.5%}",
               *(f"margin {margin} at the last position: {right:,}/{count:,} = "
                 f"{right / count:.4%}"
                 for margin, (count, right) in list(result.by_margin_last.items())[:6])]
    return (f"uniform_{n}_seed{seed}", f"the last position of {n:,} sequences (seed {seed})",
            n, result.last_wrong, details, result.to_dict())


_KINDS = {"exhaustive": _exhaustive, "random": _random, "addition": _addition,
          "majority": _majority}
_PREFIX = {"random": "random_", "addition": "accuracy_", "majority": "uniform_"}
_PARAMETERS = {"random": ("n", "seed"), "addition": ("n_random", "seed"),
               "majority": ("n", "seed")}
_RECORDED_WRONG = {
    "random": lambda record: int(record["n_wrong"]),
    "addition": lambda record: int(record["random_wrong"])
    + sum(wrong for _, wrong in record["sets"].values()),
    "majority": lambda record: int(record["last_wrong"]),
}

__all__ = ["DEFAULT_N", "DEFAULT_SEED", "Measurement", "describe_record", "measure", "remeasure"]
