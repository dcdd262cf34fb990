"""Which part of the environment changes a training run's floats? A small experiment.

Trains the first ``--steps`` steps of a preset in a fresh process per condition (thread
count, torch's kernel dispatch level, MKL's code path) and compares the weights with
the first condition's, and with the shipped checkpoint's snapshot at that step when it
has one:

    python scripts/reproducibility_experiment.py                  # max_of_2, 100 steps
    python scripts/reproducibility_experiment.py --preset list_update --steps 50
    python scripts/reproducibility_experiment.py --steps 6000 --only AVX2   # a whole run

``ATEN_CPU_CAPABILITY`` caps torch's own vectorised kernels (softmax, reductions,
AdamW's element-wise maths) at a lower instruction set; ``MKL_ENABLE_INSTRUCTIONS`` and
``MKL_CBWR`` do the same for MKL's matrix multiplications. Both are read when the
process starts, so every condition runs in its own interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CONDITIONS = [
    ("as is, 2 threads", {}, 2),
    ("as is, 1 thread", {}, 1),
    ("torch kernels capped at DEFAULT", {"ATEN_CPU_CAPABILITY": "default"}, 2),
    ("MKL capped at SSE4.2", {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, 2),
    ("MKL CBWR=COMPATIBLE", {"MKL_CBWR": "COMPATIBLE"}, 2),
    ("torch DEFAULT + MKL COMPATIBLE", {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}, 2),
    ("torch kernels capped at AVX2", {"ATEN_CPU_CAPABILITY": "avx2"}, 2),
    ("torch AVX2 + MKL AVX2", {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 2),
]

CHILD = """
import dataclasses, hashlib, json, sys
import torch
from toybook.environment import current_environment
from toybook.registry import get_preset
from toybook.training import train
name, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
preset = get_preset(name)
cfg = dataclasses.replace(preset.train, steps=steps, snapshot_every=None)
state = train(preset.task, preset.model, cfg, progress=False).model.state_dict()
path = sys.argv[4]
torch.save({k: v.clone() for k, v in state.items()}, path)
digest = hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()
print(json.dumps({"sha": digest[:12], "env": current_environment("cpu")}))
"""


def run_condition(preset: str, steps: int, env: dict[str, str], threads: int, path: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, preset, str(steps), str(threads), path],
        env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def max_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="max_of_2")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default="/tmp/toybook-repro-experiment")
    parser.add_argument("--only", help="run only the conditions whose label contains this "
                        "text (and the first, the baseline)")
    args = parser.parse_args()

    import torch

    from toybook.checkpoint import load_snapshots
    from toybook.errors import CheckpointError
    from toybook.zoo import shipped_path

    try:
        shipped = load_snapshots(shipped_path(args.preset)).get(args.steps)
    except CheckpointError:
        shipped = None
    os.makedirs(args.out, exist_ok=True)
    first = None
    print(f"{args.preset}, first {args.steps} steps; Δ = max |weight difference|")
    print(f"{'condition':<34} {'capability':<10} {'thr':>3}  {'weights':<12} "
          f"{'Δ vs first':>11} {'Δ vs shipped':>13}")
    conditions = [c for i, c in enumerate(CONDITIONS) if i == 0 or not args.only or args.only in c[0]]
    for label, env, threads in conditions:
        path = os.path.join(args.out, f"{len(label)}-{threads}-{abs(hash(label))}.pt")
        result = run_condition(args.preset, args.steps, env, threads, path)
        state = torch.load(path)
        first = first or state
        versus_shipped = "n/a" if shipped is None else f"{max_difference(state, shipped):.3g}"
        print(f"{label:<34} {result['env']['cpu_capability']:<10} {threads:>3}  "
              f"{result['sha']:<12} {max_difference(state, first):>11.3g} {versus_shipped:>13}")


if __name__ == "__main__":
    main()
