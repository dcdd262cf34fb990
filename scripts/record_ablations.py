"""Run the addition chapter's two mean-ablation scans and its cascade patching on a
checkpoint and store them in its sidecar.

The scans (one position at a time, then one head at one position at a time) and the
cascade patching (every column) take longer than the chapter's build can spend, so the
chapter reads them from these records and reruns part of each at build time to check it.

    python scripts/record_ablations.py src/toybook/checkpoints/addition
"""

from __future__ import annotations

import sys
import time

import torch

from toybook.checkpoint import load_checkpoint, record_evaluation
from toybook.tasks.addition.circuit import (
    ABLATION_RECORD, CASCADE_RECORD, ablation_record, cascade_record,
)


def main(paths: list[str]) -> None:
    torch.set_grad_enabled(False)
    for path in paths:
        checkpoint = load_checkpoint(path)
        for name, make in ((ABLATION_RECORD, ablation_record), (CASCADE_RECORD, cascade_record)):
            started = time.perf_counter()
            record = make(checkpoint.model, checkpoint.task)
            seconds = time.perf_counter() - started
            record_evaluation(path, name, {**record, "seconds": round(seconds, 1)})
            print(f"{path}: {record['summary']} in {seconds:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
