"""The majority chapter's measurement: seeded uniform sequences, counted at the last
position (by margin, ties apart; recorded as ``uniform_<n>_seed<s>``)."""

from __future__ import annotations

from toybook.measurement import SampledMeasurement


def _run(model, task, n, seed, batch_size, progress):
    from toybook.tasks.majority.mistakes import majority_accuracy

    result = majority_accuracy(model, task, n, seed, batch_size=batch_size, progress=progress)
    details = [f"last-position ties: {result.tie_acc:.4%} of {result.tie_n:,}",
               f"all positions: {result.all_acc:.5%}",
               *(f"margin {margin} at the last position: {right:,}/{count:,} = "
                 f"{right / count:.4%}"
                 for margin, (count, right) in list(result.by_margin_last.items())[:6])]
    return (f"uniform_{n}_seed{seed}", f"the last position of {n:,} sequences (seed {seed})",
            n, result.last_wrong, details, result.to_dict())


SAMPLED = SampledMeasurement(
    prefix="uniform_", parameters=("n", "seed"), run=_run,
    recorded_wrong=lambda record: int(record["last_wrong"]),
    describe=lambda record: (record["n"], f"the last position of {record['n']:,} sequences "
                                          f"(seed {record['seed']})"),
)
