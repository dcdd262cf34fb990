"""Record every shipped model's faithfulness report (``toybook.faithfulness_report``) in
``src/toybook/checkpoints/records/faithfulness.json``.

The chapters show the reports of every seed, more than their builds can spend, so they
recompute their shipped models' and read the seeds' from this record; a test recomputes one
model of each task and compares. About 6 minutes on 2 cores:

    python scripts/record_faithfulness.py            # every shipped model with readings
    python scripts/record_faithfulness.py majority_s3 list_update   # or some of them
"""

from __future__ import annotations

import re
import sys

import torch

from toybook import registry
from toybook.analysis.faithfulness import record_reports
from toybook.zoo import list_models


def main(names: list[str]) -> None:
    torch.set_grad_enabled(False)
    every = [info.name for info in list_models() if re.sub(r"_s\d+$", "", info.name) in registry.readings()]
    names = names or every
    unknown = sorted(set(names) - set(every))
    if unknown:
        raise SystemExit(f"no readings for {', '.join(unknown)}; models with readings: {', '.join(every)}")
    record_reports(names)


if __name__ == "__main__":
    main(sys.argv[1:])
