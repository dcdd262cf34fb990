"""Each task's accuracy measurement, the one its chapter reports, as the single path behind
``toybook eval``, ``toybook eval --record`` and ``toybook reproduce``.

A task whose inputs can be listed (at most :data:`SMALL_INPUT_SPACE` of them, or any
number with ``--all``) is measured on every input (:func:`evaluate_exhaustively`,
recorded as ``exhaustive``). Otherwise a seeded sample is measured: the plain way
(:data:`RANDOM`, recorded as ``random_<n>_seed<s>``), or the way the task's folder says
in its ``measure`` module, whose ``SAMPLED`` is a :class:`SampledMeasurement` (e.g. random
questions plus every hand-built question set, or the last position only).

A :class:`Measurement` counts ``n_wrong`` of ``n`` in the unit its chapter uses (whole
sequences, or the unit the task's ``measure`` names), so a rerun can be compared with the
record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from toybook.errors import ToybookError

if TYPE_CHECKING:  # imported when a measurement runs: the CLI's help needs only the constants
    import torch

    from toybook.task import Task

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


@dataclass(frozen=True)
class SampledMeasurement:
    """How a task measures a seeded sample of ``n`` inputs its chapter's way."""

    prefix: str  # its label starts with this, e.g. "random_": "random_10000_seed12345"
    parameters: tuple[str, str]  # the record's keys of n and of the seed
    # (model, task, n, seed, batch_size, progress) -> (label, what, n, n_wrong, details, result)
    run: Callable[..., tuple[str, str, int, int, list[str], dict[str, Any]]]
    recorded_wrong: Callable[[dict[str, Any]], int]  # n_wrong of a record, counted as run counts
    describe: Callable[[dict[str, Any]], tuple[int, str]]  # a record's (n, what)


def measure(
    model: torch.nn.Module, task: Task, n: int | None = None, seed: int = DEFAULT_SEED,
    exhaustive: bool = False, batch_size: int | None = None, progress: bool = False,
) -> Measurement:
    """The task's measurement on ``model``: every input where ``exhaustive`` or where the
    task has at most :data:`SMALL_INPUT_SPACE` inputs; otherwise ``n`` seeded inputs
    (default :data:`DEFAULT_N`) measured the chapter's way."""
    from toybook.model import check_model_fits

    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ToybookError(f"a measurement needs at least one input, got n={n!r}")
    check_model_fits("measure", model, task)
    if n is not None:
        task.check_request("measure", n)
    if exhaustive and task.n_inputs is None:
        raise ToybookError(f"task {task.name!r} has no finite input space; use --n instead of --all")
    started = time.perf_counter()
    if exhaustive or is_small(task):
        run, args = _exhaustive, (model, task, batch_size, progress)
    else:
        run, args = sampled_measurement(task).run, (model, task, n or DEFAULT_N, seed, batch_size, progress)
    label, what, count, wrong, details, result = run(*args)
    return Measurement(label, what, count, wrong, tuple(details), result,
                       time.perf_counter() - started)


def remeasure(
    model: torch.nn.Module, task: Task, evaluations: dict[str, Any], progress: bool = False,
) -> tuple[Measurement, int | None]:
    """Repeat on ``model`` the measurement recorded in ``evaluations`` (a sidecar's): the new
    measurement, and the recorded ``n_wrong`` (``None`` where nothing was recorded; then the
    task's measurement runs with 100,000 inputs, or every input where they can be listed)."""
    sampled = sampled_measurement(task)
    if task.n_inputs is not None and sampled is RANDOM:
        measurement = measure(model, task, exhaustive=True, progress=progress)
        recorded = evaluations.get("exhaustive")
        return measurement, None if recorded is None else int(recorded["n_wrong"])
    for label, record in evaluations.items():
        if label.startswith(sampled.prefix):
            n, seed = (record[key] for key in sampled.parameters)
            measurement = measure(model, task, n, seed, progress=progress)
            return measurement, sampled.recorded_wrong(record)
    return measure(model, task, 100_000, DEFAULT_SEED, progress=progress), None


def describe_record(label: str, record: dict[str, Any]) -> tuple[str, str, int, int]:
    """``(label, what, n, n_wrong)`` of a recorded measurement, counted as :func:`measure`
    counts it."""
    if label == "exhaustive":
        return label, f"all {record['n']:,} inputs", int(record["n"]), int(record["n_wrong"])
    from toybook.registry import collect

    kinds = [*collect("measure", "SAMPLED").values(), RANDOM]
    sampled = next((kind for kind in kinds if label.startswith(kind.prefix)), None)
    if sampled is None:
        raise ToybookError(f"no measurement is recorded as {label!r}; labels start with "
                           f"'exhaustive' or one of {', '.join(repr(k.prefix) for k in kinds)}")
    n, what = sampled.describe(record)
    return label, what, int(n), sampled.recorded_wrong(record)


def wilson_interval(n_wrong: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of an error rate seen as ``n_wrong`` of ``n``
    (95% at the default ``z``). Unlike ``n_wrong / n`` ± a normal error it stays inside [0, 1]
    and is not empty at 0 wrong: 0 of 1,200 gives (0, 0.32%), close to the rule of three's 3/n."""
    if not (isinstance(n, int) and isinstance(n_wrong, int) and 0 <= n_wrong <= n and n > 0):
        raise ToybookError(f"an error rate needs 0 <= n_wrong <= n and n > 0; got {n_wrong} of {n}")
    rate, z2 = n_wrong / n, z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z * ((rate * (1 - rate) + z2 / (4 * n)) / n) ** 0.5 / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def is_small(task: Task) -> bool:
    return task.n_inputs is not None and task.n_inputs <= SMALL_INPUT_SPACE


def sampled_measurement(task: Task) -> SampledMeasurement:
    """The task's own sampled measurement (its folder's ``measure.SAMPLED``), else :data:`RANDOM`
    (also for a task defined outside the task folders)."""
    from toybook.registry import collect

    return collect("measure", "SAMPLED").get(task.name, RANDOM)


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


RANDOM = SampledMeasurement(
    prefix="random_", parameters=("n", "seed"), run=_random,
    recorded_wrong=lambda record: int(record["n_wrong"]),
    describe=lambda record: (record["n"], f"{record['n']:,} random sequences (seed {record['seed']})"),
)

__all__ = ["DEFAULT_N", "DEFAULT_SEED", "RANDOM", "Measurement", "SampledMeasurement",
           "describe_record", "measure", "remeasure", "sampled_measurement", "wilson_interval"]
