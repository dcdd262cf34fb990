"""Measure an addition model on 1,000,000 random questions and on the hand-built question
sets (BA, UC1 without US9, simple US9, cascades of depth 2–4), and record the result.

    python scripts/addition_accuracy.py addition             # a shipped model
    python scripts/addition_accuracy.py --checkpoint PATH --record

``--record`` stores the result in the checkpoint's sidecar as ``accuracy_<n>_seed<seed>``.
"""

from __future__ import annotations

import argparse
import time

import torch

import toybook
from toybook.analysis.addition import addition_accuracy
from toybook.checkpoint import load_checkpoint, record_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", default="addition", help="a shipped model name")
    parser.add_argument("--checkpoint", help="a saved checkpoint instead of a shipped model")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--per-layout", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = (load_checkpoint(args.checkpoint, device=args.device) if args.checkpoint
                  else toybook.load_shipped(args.name, device=args.device))
    if checkpoint.task.name != "addition":
        parser.error(f"{checkpoint.name} is a {checkpoint.task.name} model, not an addition model")
    started = time.perf_counter()
    result = addition_accuracy(checkpoint.model, checkpoint.task, args.n, args.seed,
                               args.per_layout, progress=True)
    print(f"{checkpoint.name}: {time.perf_counter() - started:.0f} s")
    print(f"  {args.n:,} random questions (seed {args.seed}): {result.random_wrong:,} wrong; "
          f"per answer digit {result.random_wrong_per_digit}")
    for name, (n, wrong) in result.sets.items():
        print(f"  {name:<10} {n:>6,} questions, {wrong:,} wrong")
    if args.record:
        label = f"accuracy_{args.n}_seed{args.seed}"
        record_evaluation(checkpoint.path, label, result.to_dict())
        print(f"recorded as {label!r} in {checkpoint.path}")


if __name__ == "__main__":
    main()
