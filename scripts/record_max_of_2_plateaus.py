"""Retrain the max-of-2 seed models with snapshots and keep what the book reads of them.

The seed models ship without training snapshots (ten more snapshot files would overrun
the 64 MB checkpoint budget), so this retrains each seed from its own sidecar's configs
with a snapshot every 100 steps and stores, in that seed's sidecar, the per-snapshot
accuracy and QK token scores, the drop edit on its mid-plateau snapshot, and whether the
retrain reproduced the shipped weights (bit for bit only on the kind of CPU that trained
them), ends at every input right, and holds the seed's claims.

    python scripts/record_max_of_2_plateaus.py 1-10
"""

from __future__ import annotations

import dataclasses
import sys
import time

import torch

from toybook.checkpoint import load_checkpoint, record_evaluation
from toybook.claims import check_claims
from toybook.configs import ModelConfig, TrainConfig
from toybook.environment import bit_identity_mismatch
from toybook.model import attach_task, build_model
from toybook.sweep import parse_seeds
from toybook.tasks.max_of_2.plateau import PLATEAU_RECORD, plateau_record
from toybook.training import train
from toybook.zoo import SHIPPED_DIR


def main(seeds: list[int]) -> None:
    for seed in seeds:
        path = SHIPPED_DIR / f"max_of_2_s{seed}"
        shipped = load_checkpoint(path)
        metadata = shipped.metadata
        train_config = dataclasses.replace(TrainConfig.from_dict(metadata["train_config"]), snapshot_every=100)
        started = time.perf_counter()
        run = train(shipped.task, ModelConfig.from_dict(metadata["model_config"]), train_config, progress=False)
        torch.set_grad_enabled(False)
        snapshots = {}
        for step, state in run.snapshots.items():
            snapshot = attach_task(build_model(run.model_config), shipped.task)
            snapshot.load_state_dict(state, strict=True)
            snapshots[step] = snapshot.eval()
        record = plateau_record(snapshots, run.history, shipped.task)
        inputs = shipped.task.all_inputs()
        same = all(torch.equal(a, b) for a, b in zip(run.model.state_dict().values(), shipped.model.state_dict().values()))
        record |= {
            "same_weights_as_shipped": same,
            "environment": run.environment,
            "shipped_environment_differs": bit_identity_mismatch(metadata["training"]["environment"], run.environment),
            "history": [{k: row[k] for k in ("step", "train_acc", "eval_acc")} for row in run.history],
            "final_wrong": int((~shipped.task.correct(run.model(inputs), inputs)[:, 0]).sum()),
            "claims": {r.claim.name: {"value": r.value, "low": r.claim.low, "high": r.claim.high, "holds": r.holds}
                       for r in check_claims(f"max_of_2_s{seed}", run.model)},
            "seconds": round(time.perf_counter() - started, 1),
        }
        record["summary"] = (f"retrained with {len(record['steps'])} snapshots; {len(inputs) - record['final_wrong']}"
                             f"/{len(inputs)} right; mid-plateau step {record['mid_step']}")
        record_evaluation(path, PLATEAU_RECORD, record)
        torch.set_grad_enabled(True)
        print(f"seed {seed}: {record['summary']}; edit {record['edit'] and record['edit']['step_removed']}; "
              f"claims {all(c['holds'] for c in record['claims'].values())}; {record['seconds']} s", flush=True)


if __name__ == "__main__":
    main(parse_seeds(sys.argv[1] if len(sys.argv) > 1 else "1-10"))
