"""Scaling out, measured here and projected: the adder's check and a seed sweep on Ray.

    python benchmarks/scale_out.py [--shard 12000] [--device cpu]

Measures, on this machine, with the shipped five-digit adder (``addition``):
1. the plain loop (``evaluate_exhaustively`` on one shard) with 2 threads and with 1;
2. ``toybook verify`` on a local Ray cluster of 1 worker (3 shards), then of 2 workers
   (6 shards): end-to-end questions/s, the cluster's start, a worker's start, and Ray's
   overhead per later shard (a task's round trip, less the shard's own compute);
3. one training step of the list-update preset, with 1 thread and with 2.

Then prints the arithmetic the README's "Scaling out" section states: the full check of all
10^10 questions, and a 100-seed list-update sweep, on a cluster of CPU workers, from these
figures. GPU figures are measured only where the script runs with ``--device cuda``.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

import toybook
from toybook.evaluation import evaluate_exhaustively
from toybook.registry import get_preset
from toybook.scale import RayOptions, ray_session
from toybook.verify import verify

ALL_QUESTIONS = 10**10
SEEDS = 100
CLUSTER_CPUS = (64, 1024)


def plain_rate(model, task, shard: int, threads: int) -> float:
    torch.set_num_threads(threads)
    evaluate_exhaustively(model, task, 0, 2000, batch_size=1000)  # warm-up
    result = evaluate_exhaustively(model, task, 0, shard, batch_size=1500, method="plain")
    return result.n / result.wall_time_s


def ray_rates(workers: int, shards: int, shard: int, device: str) -> dict[str, float]:
    """End-to-end and in-worker rates of a Ray check; with 1 worker, its start (the first
    task's import of torch and toybook, and the model's loading) and the steady overhead of
    each later task (its round trip less the shard's compute)."""
    import json

    started = time.perf_counter()
    options = RayOptions(workers=workers, gpu=device.startswith("cuda"))
    with ray_session(options), tempfile.TemporaryDirectory() as folder:
        cluster_s = time.perf_counter() - started
        results = Path(folder) / "check.jsonl"
        done: list[float] = []
        begun = time.perf_counter()
        merged = verify("addition", results, stop=shards * shard, shard_size=shard,
                        batch_size=1500, device=device, ray=options,
                        log=lambda line: done.append(time.perf_counter() - begun))
        wall = time.perf_counter() - begun
        records = [json.loads(line) for line in results.read_text().splitlines()[1:]]
    compute = [record["result"]["wall_time_s"] for record in records]
    figures = dict(cluster_s=cluster_s, rate=merged.n / wall, worker_rate=merged.n / sum(compute))
    if workers == 1:  # done[0] is the plan's line; then one line per shard, in order
        figures["start_s"] = done[1] - compute[0]
        figures["overhead_s"] = sum(b - a - c for a, b, c in zip(done[1:], done[2:], compute[1:])) \
            / (shards - 1)
    return figures


def training_step_seconds(preset_name: str, threads: int, steps: int = 10) -> float:
    """Seconds per optimizer step of the preset's model and batch (forward, loss, backward,
    AdamW), after 3 warm-up steps."""
    from toybook.model import build_model, trainable_parameters

    torch.set_num_threads(threads)
    preset = get_preset(preset_name)
    model = build_model(preset.model, seed=0)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=preset.train.lr)
    generator = torch.Generator().manual_seed(0)
    fixed = preset.task.train_data()
    elapsed = 0.0
    for step in range(3 + steps):
        tokens = fixed if fixed is not None else preset.task.train_batch(preset.train.batch_size, generator)
        begun = time.perf_counter()
        loss = preset.task.loss(model(tokens), tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 3:
            elapsed += time.perf_counter() - begun
    return elapsed / steps


def duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shard", type=int, default=12_000, help="questions per shard (×1500)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    task = toybook.get_task("addition")
    model = toybook.load_model("addition", device=args.device)
    print(f"the adder ({sum(p.numel() for p in model.parameters()):,} parameters) on "
          f"{args.device}; shards of {args.shard:,} questions, batches of 1,500")
    plain = {threads: plain_rate(model, task, args.shard, threads) for threads in (2, 1)}
    for threads, rate in plain.items():
        print(f"  plain loop, {threads} thread{'s' * (threads > 1)}: {rate:,.0f} questions/s")
    ray = {workers: ray_rates(workers, 3 * workers, args.shard, args.device) for workers in (1, 2)}
    for workers, figures in ray.items():
        print(f"  Ray, {workers} worker{'s' * (workers > 1)} (1 thread each), {3 * workers} shards: "
              f"{figures['rate']:,.0f} questions/s end to end ({figures['worker_rate']:,.0f} per "
              f"worker inside its shards); cluster start {figures['cluster_s']:.1f} s")
    print(f"  Ray's cost per worker: {ray[1]['start_s']:.1f} s to start (imports, the model's "
          f"loading); then {ray[1]['overhead_s']:.2f} s per shard")
    per_core = ray[1]["worker_rate"]
    print(f"  Ray against the plain loop (1 thread each): the same shard computes at "
          f"{ray[1]['worker_rate'] / plain[1]:.0%} of the plain loop's rate inside a worker; each "
          f"later task adds {ray[1]['overhead_s'] / (args.shard / ray[1]['worker_rate']):.1%}; end "
          f"to end, the worker's start included, {1 - ray[1]['rate'] / plain[1]:.1%} less "
          f"throughput over 3 shards")
    print(f"  2 workers against 1: {ray[2]['rate'] / ray[1]['rate']:.2f}× "
          f"(2 threads in one plain loop: {plain[2] / plain[1]:.2f}×)")

    step = {threads: training_step_seconds("list_update", threads) for threads in (1, 2)}
    steps = get_preset("list_update").train.steps
    print(f"list_update preset: {step[1] * 1000:.1f} ms/step with 1 thread, "
          f"{step[2] * 1000:.1f} with 2; {steps:,} steps → one seed in "
          f"{duration(step[1] * steps)} (1 thread), {duration(step[2] * steps)} (2 threads)")

    print("projections (linear in workers; the 2-worker figure above checks that here):")
    print(f"  every one of the {ALL_QUESTIONS:,} questions: {ALL_QUESTIONS:,} / "
          f"{per_core:,.0f} per core = {duration(ALL_QUESTIONS / per_core)} on one core; "
          f"here (2 cores, {ray[2]['rate']:,.0f}/s) {duration(ALL_QUESTIONS / ray[2]['rate'])}")
    for cpus in CLUSTER_CPUS:
        print(f"    on {cpus:,} CPU workers: {duration(ALL_QUESTIONS / (per_core * cpus))}")
    print(f"  {SEEDS} list-update seeds: {SEEDS} × {duration(step[1] * steps)} = "
          f"{duration(SEEDS * step[1] * steps)} on one core, "
          f"{duration(SEEDS * step[2] * steps)} here one after another with 2 threads")
    for cpus in CLUSTER_CPUS[:1]:
        print(f"    on {cpus} CPU workers: {duration(-(-SEEDS // cpus) * step[1] * steps)} "
              f"({-(-SEEDS // cpus)} seed{'s' * (SEEDS > cpus)} per worker)")


if __name__ == "__main__":
    main()
