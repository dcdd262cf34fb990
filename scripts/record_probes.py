"""Fit the addition chapter's linear probes on a checkpoint and store them in its sidecar.

The probes take minutes on two CPU cores (a few hundred logistic fits), more than the
chapter's build can spend, so the chapter reads them from this record and refits one
column at build time to check it.

    python scripts/record_probes.py src/toybook/checkpoints/addition [more checkpoints]
"""

from __future__ import annotations

import sys
import time

import torch

from toybook.checkpoint import load_checkpoint, record_evaluation
from toybook.tasks.addition.analysis import PROBE_RECORD, PROBE_SETTINGS, column_probes


def main(paths: list[str]) -> None:
    torch.set_grad_enabled(False)
    for path in paths:
        checkpoint = load_checkpoint(path)
        started = time.perf_counter()
        rows = column_probes(checkpoint.model, checkpoint.task, **PROBE_SETTINGS)
        seconds = time.perf_counter() - started
        record_evaluation(path, PROBE_RECORD, {
            **PROBE_SETTINGS, "rows": rows, "seconds": round(seconds, 1),
            "summary": f"{len(rows)} logistic probes of column sums, carries and sum-9s "
                       f"({PROBE_SETTINGS['n_train']:,} questions to fit, "
                       f"{PROBE_SETTINGS['n_test']:,} to score)",
        })
        print(f"{path}: {len(rows)} probes in {seconds:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
