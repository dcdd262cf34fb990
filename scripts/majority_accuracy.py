"""Measure a majority model's accuracy on fresh uniform sequences and record it.

    python scripts/majority_accuracy.py                      # the shipped model, 100,000 sequences
    python scripts/majority_accuracy.py --checkpoint PATH --record

Prints last-position accuracy, accuracy on last-position ties, and accuracy by margin;
``--record`` stores the full result (also the per-position curve) in the checkpoint's
sidecar as ``uniform_<n>_seed<seed>``, where the book reads it.
"""

from __future__ import annotations

import argparse
import time

import torch

import toybook
from toybook.analysis.majority import majority_accuracy
from toybook.checkpoint import load_checkpoint, record_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="a saved majority checkpoint (default: shipped)")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        checkpoint = load_checkpoint(args.checkpoint, device=args.device)
    else:
        checkpoint = toybook.load_shipped("majority", device=args.device)
    if checkpoint.task.name != "majority":
        parser.error(f"{checkpoint.name} is a {checkpoint.task.name} model, not a majority model")
    started = time.perf_counter()
    result = majority_accuracy(checkpoint.model, checkpoint.task, args.n, args.seed)
    seconds = time.perf_counter() - started
    print(f"{checkpoint.name}: {args.n:,} uniform sequences (seed {args.seed}), {seconds:.0f} s")
    print(f"  last position: {result.last_acc:.4%} ({result.last_wrong} wrong)")
    print(f"  last-position ties: {result.tie_acc:.4%} of {result.tie_n:,}")
    print(f"  all positions: {result.all_acc:.5%}")
    for margin, (count, right) in list(result.by_margin_last.items())[:6]:
        print(f"  margin {margin} at the last position: {right:,}/{count:,} = {right / count:.4%}")
    if args.record:
        label = f"uniform_{args.n}_seed{args.seed}"
        record_evaluation(checkpoint.path, label, result.to_dict())
        print(f"recorded as {label!r} in {checkpoint.path}")


if __name__ == "__main__":
    main()
