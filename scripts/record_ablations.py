"""Run the addition chapter's mean-ablation scans, MLP ablations and cascade patching on
checkpoints and store them in their sidecars.

The scans (one position at a time, then one head at one position at a time), the cascade
patching (every column) and the MLP ablations (every MLP at every place, on each of the
three models) take longer than the chapter's build can spend, so the chapter reads them
from these records and reruns part of each at build time to check it. The two-layer model
gets all three records, the one-layer models the MLP ablations.

    python scripts/record_ablations.py src/toybook/checkpoints/addition \
        src/toybook/checkpoints/addition_1l src/toybook/checkpoints/addition_1l_matched
"""

from __future__ import annotations

import sys
import time

import torch

from toybook.checkpoint import load_checkpoint, record_evaluation
from toybook.tasks.addition.circuit import (
    ABLATION_RECORD, CASCADE_RECORD, MLP_ABLATION_RECORD, ablation_record, cascade_record,
    mlp_ablation_record,
)


def main(paths: list[str]) -> None:
    torch.set_grad_enabled(False)
    for path in paths:
        checkpoint = load_checkpoint(path)
        records = ((ABLATION_RECORD, ablation_record), (CASCADE_RECORD, cascade_record),
                   (MLP_ABLATION_RECORD, mlp_ablation_record))
        for name, make in records if checkpoint.model.cfg.n_layers > 1 else records[-1:]:
            started = time.perf_counter()
            record = make(checkpoint.model, checkpoint.task)
            seconds = time.perf_counter() - started
            record_evaluation(path, name, {**record, "seconds": round(seconds, 1)})
            print(f"{path}: {record['summary']} in {seconds:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
