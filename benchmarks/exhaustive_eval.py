"""Throughput of the exhaustive list-update check, and the time it implies for all 18.75M inputs.

    python benchmarks/exhaustive_eval.py [--device cuda] [--threads 2]

Times ``evaluate_exhaustively`` on the first 262,144 inputs of the enumeration (four
batches of 65,536) with the shipped model.
"""

import argparse

import torch

import toybook
from toybook.evaluation import evaluate_exhaustively


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = toybook.get_task("list_update")
    model = toybook.load_model("list_update", device=args.device)
    evaluate_exhaustively(model, task, 0, 65_536)  # warm-up
    result = evaluate_exhaustively(model, task, 0, 4 * 65_536)
    rate = result.n / result.wall_time_s
    print(f"list_update exhaustive check on {args.device} ({args.threads} threads): "
          f"{rate:,.0f} sequences/s, {rate * task.n_ctx:,.0f} tokens/s")
    print(f"all {task.n_inputs:,} inputs: {task.n_inputs / rate / 60:.1f} min")


if __name__ == "__main__":
    main()
