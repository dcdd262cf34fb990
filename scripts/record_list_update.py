"""Measure the list-update chapter's numbers on checkpoints and store them in their sidecars.

The chapter shows the same measurements for twelve models, more than its build can spend,
so it recomputes the three shipped models' and reads the seeds' from this record
(``toybook.tasks.list_update.record``).

    python scripts/record_list_update.py src/toybook/checkpoints/list_update_s{1,2,3,4,5} \\
        src/toybook/checkpoints/list_update_shortformer_s{1,2} \\
        src/toybook/checkpoints/list_update_shortformer_batchwise_s{1,2}
"""

from __future__ import annotations

import sys
import time

import torch

from toybook.checkpoint import load_checkpoint, record_evaluation
from toybook.tasks.list_update.record import RECORD, measure, to_record


def main(paths: list[str]) -> None:
    torch.set_grad_enabled(False)
    for path in paths:
        checkpoint = load_checkpoint(path)
        started = time.perf_counter()
        record = to_record(measure(checkpoint.model, checkpoint.task))
        seconds = time.perf_counter() - started
        record_evaluation(path, RECORD, {**record, "seconds": round(seconds, 1)})
        print(f"{path}: {record['summary']} in {seconds:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
