"""Throughput of the exhaustive list-update check, and the time it implies for all 18.75M
inputs, with each method of ``evaluate_exhaustively``.

    python benchmarks/exhaustive_eval.py [--device cuda] [--threads 2] [--n 300000]

Times the first ``--n`` inputs of the enumeration (a multiple of 150, so the shared-prefix
method applies) with the shipped model. Goal: all inputs in 6 minutes on 2 cores.
"""

import argparse

import torch

import toybook
from toybook.evaluation import evaluate_exhaustively

GOAL_MIN = 6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=300_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = toybook.get_task("list_update")
    model = toybook.load_model("list_update", device=args.device)
    print(f"list_update exhaustive check on {args.device} ({args.threads} threads), "
          f"{args.n:,} inputs timed; goal: all {task.n_inputs:,} in {GOAL_MIN} min")
    for method in ("auto", "plain"):
        evaluate_exhaustively(model, task, 0, 15_000, method=method)  # warm-up
        result = evaluate_exhaustively(model, task, 0, args.n, method=method)
        rate = result.n / result.wall_time_s
        minutes = task.n_inputs / rate / 60
        print(f"  {result.method:<14} batches of {result.batch_size:>6,}: {rate:>9,.0f} inputs/s, "
              f"all inputs {minutes:5.1f} min  {'ok' if minutes <= GOAL_MIN else 'OVER'}")


if __name__ == "__main__":
    main()
