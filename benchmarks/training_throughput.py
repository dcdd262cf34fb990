"""Training throughput of every preset's model on this machine: ms/step and tokens/s.

Times forward + float64 loss + backward + AdamW step on the preset's batch size (the
whole fixed training set for full-batch presets), after warm-up steps.

    python benchmarks/training_throughput.py [--steps 20] [--threads 2]
"""

import argparse
import time

import torch

from toybook.model import build_model, count_parameters, trainable_parameters
from toybook.registry import presets


def measure(preset, steps: int, warmup: int = 3) -> tuple[float, int, int]:
    model = build_model(preset.model, seed=0)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=preset.train.lr)
    fixed = preset.task.train_data()
    generator = torch.Generator().manual_seed(0)
    batch_size = preset.train.batch_size or len(fixed)
    elapsed = 0.0
    for step in range(warmup + steps):
        tokens = fixed if fixed is not None else preset.task.train_batch(batch_size, generator)
        start = time.perf_counter()
        loss = preset.task.loss(model(tokens), tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            elapsed += time.perf_counter() - start
    return elapsed / steps, len(tokens) * tokens.shape[1], count_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.steps} timed steps each")
    print(f"{'preset':<12} {'params':>10} {'batch':>6} {'ms/step':>9} {'tokens/s':>10} {'preset steps':>13} {'est. train':>11}")
    for name, preset in presets().items():
        seconds, tokens, params = measure(preset, args.steps)
        batch = preset.train.batch_size or len(preset.task.train_data())
        print(
            f"{name:<12} {params:>10,} {batch:>6} {seconds * 1e3:>9.1f} {tokens / seconds:>10,.0f} "
            f"{preset.train.steps:>13,} {seconds * preset.train.steps / 60:>9.1f} m"
        )


if __name__ == "__main__":
    main()
