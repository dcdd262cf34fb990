"""The addition chapter's measurement: seeded random questions plus every hand-built
question set (:func:`toybook.tasks.addition.analysis.question_sets`), one count of wrong
answers over both (recorded as ``accuracy_<n>_seed<s>``)."""

from __future__ import annotations

from toybook.measurement import SampledMeasurement


def _run(model, task, n, seed, batch_size, progress):
    from toybook.tasks.addition.analysis import addition_accuracy

    result = addition_accuracy(model, task, n, seed, batch_size=batch_size, progress=progress)
    n_sets = sum(count for count, _ in result.sets.values())
    wrong = result.random_wrong + sum(wrong for _, wrong in result.sets.values())
    details = [f"{n:,} random questions: {result.random_wrong:,} wrong; per answer digit "
               f"{result.random_wrong_per_digit}",
               *(f"{name:<10} {count:>6,} questions, {wrong_here:,} wrong"
                 for name, (count, wrong_here) in result.sets.items())]
    return (f"accuracy_{n}_seed{seed}", f"{n:,} random questions (seed {seed}) and "
            f"{n_sets:,} hand-built", n + n_sets, wrong, details, result.to_dict())


def _recorded_wrong(record) -> int:
    return int(record["random_wrong"]) + sum(wrong for _, wrong in record["sets"].values())


def _describe(record) -> tuple[int, str]:
    n_sets = sum(count for count, _ in record["sets"].values())
    return record["n_random"] + n_sets, (f"{record['n_random']:,} random questions "
                                         f"(seed {record['seed']}) and {n_sets:,} hand-built")


SAMPLED = SampledMeasurement(prefix="accuracy_", parameters=("n_random", "seed"), run=_run,
                             recorded_wrong=_recorded_wrong, describe=_describe)
