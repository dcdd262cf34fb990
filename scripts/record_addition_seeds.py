"""Measure the addition chapter's seed readings on seed checkpoints and store them in their
sidecars (``toybook.tasks.addition.record``), with the ablation scans, cascade patching and
MLP ablations of ``scripts/record_ablations.py``.

The chapter shows the MLP patching, layer 1's relevance per question set and the fraction
of loss recovered per kind of digit for six seed models, more than its build can spend, so
it reads them from these records.

    python scripts/record_addition_seeds.py src/toybook/checkpoints/addition_s{2,3,4} \\
        src/toybook/checkpoints/addition_1l_s{2,3,4}
"""

from __future__ import annotations

import re
import sys
import time

import torch

from toybook.checkpoint import load_checkpoint, record_evaluation
from toybook.tasks.addition.record import RECORD, measure, to_record

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import record_ablations  # noqa: E402


def main(paths: list[str]) -> None:
    torch.set_grad_enabled(False)
    record_ablations.main(paths)
    for path in paths:
        checkpoint = load_checkpoint(path)
        preset = re.sub(r"_s\d+$", "", checkpoint.metadata["name"])
        started = time.perf_counter()
        record = to_record(measure(checkpoint.model, checkpoint.task, preset))
        seconds = time.perf_counter() - started
        record_evaluation(path, RECORD, {**record, "seconds": round(seconds, 1)})
        print(f"{path}: {record['summary']} in {seconds:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
