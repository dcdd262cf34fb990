"""The max-of-2 proof strategies on the shipped model and its ten seeds: inputs certified,
cost in scalar operations (counted) and time (best of five, this machine), next to the
exhaustive check. Goal (issue 30): a strategy cheaper than brute force that certifies
4096/4096 on the shipped model.

    python benchmarks/max_of_2_proofs.py
"""

import torch

import toybook
from toybook.tasks.max_of_2.bound import STRATEGIES, max_of_2_bound
from toybook.timing import best_of


@torch.no_grad()
def main() -> None:
    task = toybook.get_task("max_of_2")
    inputs = task.all_inputs()
    names = ["max_of_2", *(f"max_of_2_s{seed}" for seed in range(1, 11))]
    print(f"{'model':<14}{'right':>7}" + "".join(f"{s:>28}" for s in STRATEGIES))
    for name in names:
        model = toybook.load_model(name)
        right = int(task.correct(model(inputs), inputs).sum())
        cells = []
        for strategy in STRATEGIES:
            bound, seconds = best_of(lambda: max_of_2_bound(model, strategy))
            cells.append(f"{bound.n_certified:>5} {bound.cost / 1e6:>8.2f} Mop {seconds * 1e3:>6.1f} ms")
        print(f"{name:<14}{right:>7}" + "".join(f"{c:>28}" for c in cells))
    print("cells: inputs certified, cost (millions of scalar operations), time")


if __name__ == "__main__":
    main()
