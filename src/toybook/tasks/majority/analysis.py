"""Experiments on the majority model: accuracy by position and margin, the histogram that
attention computes, logit contributions, and the MLP neurons that vote for each value.

Shapes: B batch, T = 128 positions, V = 10 values, D ``d_model``, N MLP neurons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from toybook.analysis.ablation import overwrite_hook
from toybook.analysis.patching import Patch, run_with_patches
from toybook.evaluation import (
    batch_rows, batched_cache, batched_logits, forward_batches, fresh_inputs,
)
from toybook.tasks.majority.task import MajorityTask

ATTN_OUT = "blocks.0.hook_attn_out"
NEURONS = "blocks.0.mlp.hook_post"


@dataclass(frozen=True)
class MajorityAccuracy:
    """Accuracy of a majority model on ``n`` sequences (seed ``seed``).

    ``by_margin_last`` and ``by_margin_all`` map a margin (top count − second count; 0 is a
    tie) to ``[inputs, correct]`` at the last position and over all positions.
    """

    n: int
    seed: int
    last_acc: float
    last_wrong: int
    tie_n: int  # sequences whose top two counts tie at the last position
    tie_acc: float
    all_acc: float  # over every position of every sequence
    acc_per_position: list[float]
    by_margin_last: dict[str, list[int]]
    by_margin_all: dict[str, list[int]]

    @property
    def summary(self) -> str:
        return (f"last position {self.last_acc:.4%}, ties {self.tie_acc:.4%} "
                f"({self.n:,} sequences)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


@torch.no_grad()
def majority_accuracy(
    model: torch.nn.Module, task: MajorityTask, n: int = 100_000, seed: int = 12345,
    batch_size: int | None = None, progress: bool = False,
) -> MajorityAccuracy:
    """Accuracy per position and by margin on ``n`` fresh uniform sequences."""
    correct_parts, margin_parts = [], []
    for _, tokens, logits in forward_batches(model, fresh_inputs(task, seed), n,
                                          batch_size or batch_rows(task.n_ctx), progress):
        correct_parts.append(task.correct(logits, tokens).cpu())
        margin_parts.append(task.margin(tokens).cpu())
    correct, margin = torch.cat(correct_parts), torch.cat(margin_parts)

    def by_margin(right: Tensor, margins: Tensor) -> dict[str, list[int]]:
        return {
            str(m): [int((margins == m).sum()), int(right[margins == m].sum())]
            for m in margins.unique().tolist()
        }

    last, last_margin = correct[:, -1], margin[:, -1]
    ties = last_margin == 0
    return MajorityAccuracy(
        n=n,
        seed=seed,
        last_acc=last.double().mean().item(),
        last_wrong=int((~last).sum()),
        tie_n=int(ties.sum()),
        tie_acc=last[ties].double().mean().item(),
        all_acc=correct.double().mean().item(),
        acc_per_position=correct.double().mean(0).tolist(),
        by_margin_last=by_margin(last, last_margin),
        by_margin_all=by_margin(correct.flatten(), margin.flatten()),
    )


def running_histogram(task: MajorityTask, tokens: Tensor) -> Tensor:
    """``[B, T, V]``: the fraction of each value in ``tokens[:, :i+1]`` (counts / (i + 1))."""
    counts = task.running_counts(tokens).double()
    return counts / torch.arange(1, tokens.shape[1] + 1, dtype=torch.double)[None, :, None]


def linear_fit_r2(features: Tensor, targets: Tensor, train_fraction: float = 0.5) -> float:
    """R² on held-out rows of the least-squares fit ``targets ≈ features @ A + b``.

    ``features [R, F]``, ``targets [R, D]``; the first ``train_fraction`` of the rows fit,
    the rest test. R² is 1 − residual variance / total variance, summed over the D outputs.
    """
    features, targets = features.double(), targets.double()
    design = torch.cat([features, torch.ones(len(features), 1, dtype=torch.double)], 1)
    split = int(len(design) * train_fraction)
    solution = torch.linalg.lstsq(design[:split], targets[:split]).solution
    residual = targets[split:] - design[split:] @ solution
    total = targets[split:] - targets[split:].mean(0)
    return 1 - (residual.pow(2).sum() / total.pow(2).sum()).item()


def permuted_prefixes(tokens: Tensor, position: int, seed: int = 0) -> Tensor:
    """``tokens`` with ``tokens[:, :position+1]`` shuffled in each row: the running histogram
    at ``position`` (and the answer there) is unchanged, the order is not."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.rand(tokens.shape[0], position + 1, generator=generator).argsort(1)
    shuffled = tokens.clone()
    shuffled[:, : position + 1] = tokens[:, : position + 1].gather(1, order)
    return shuffled


def patch_attention_output(
    model: torch.nn.Module, tokens: Tensor, donor: Tensor, position: int
) -> Tensor:
    """Logits of ``tokens`` with the attention output at ``position`` taken from ``donor``."""
    return run_with_patches(model, tokens, [Patch(ATTN_OUT, (position,))], source=donor)


@torch.no_grad()
def logit_contributions(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor
) -> tuple[list[str], Tensor]:
    """``(names, [B, C, T])``: each component's share of the correct logit minus the mean
    logit, with the final LayerNorm folded in.

    The final LayerNorm is linear once its scale (cached per position) is fixed: each
    component is centred, divided by that scale, multiplied by the LayerNorm weight and
    unembedded. The LayerNorm bias and ``b_U`` make the last component, "biases". The
    contributions add up to the model's own correct-minus-mean logit.
    """
    names = ["hook_embed", "hook_pos_embed", "blocks.0.hook_attn_out", "blocks.0.hook_mlp_out"]
    wanted = set(names) | {"ln_final.hook_scale"}
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in wanted)
    scale = cache["ln_final.hook_scale"]  # [B, T, 1]
    unembed = model.W_U  # [D, V]
    targets = task.targets(tokens)  # [B, T]
    direction = (model.ln_final.w[:, None] * unembed).T  # [V, D]
    correct_direction = direction[targets] - direction.mean(0)  # [B, T, D]
    parts = []
    for name in names:
        component = cache[name]
        component = (component - component.mean(-1, keepdim=True)) / scale
        parts.append((component * correct_direction).sum(-1))
    biases = model.ln_final.b @ unembed + model.b_U  # [V]
    parts.append((biases - biases.mean())[targets])
    return [*names, "biases"], torch.stack(parts, 1)


@torch.no_grad()
def value_neurons(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, k: int = 5, min_position: int = 16
) -> Tensor:
    """``[V, k]``: for each value v, the k MLP neurons whose activation most separates
    "v is the majority" from "v is not", over positions ≥ ``min_position``.

    The score of a neuron for v is the difference of its mean activation between the two
    groups, divided by its standard deviation overall (a signal-to-noise ratio); no neuron
    is picked by hand.
    """
    post = batched_cache(model, tokens, [NEURONS])[NEURONS]
    activations = post[:, min_position:].reshape(-1, post.shape[-1])
    majority = task.targets(tokens)[:, min_position:].reshape(-1)
    spread = activations.std(0) + 1e-6
    scores = torch.stack([
        (activations[majority == v].mean(0) - activations[majority != v].mean(0)) / spread
        for v in range(task.d_vocab_out)
    ])
    return scores.topk(k, dim=1).indices


@torch.no_grad()
def neuron_ablation_table(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, neurons: Tensor,
    min_position: int = 16,
) -> Tensor:
    """``[V ablated, V majority]``: accuracy at positions ≥ ``min_position`` whose majority
    is the column's value, with the row value's neurons mean-ablated."""
    mean = batched_cache(model, tokens, [NEURONS])[NEURONS].mean(dim=(0, 1))  # [N]
    majority = task.targets(tokens)[:, min_position:]
    table = torch.empty(len(neurons), task.d_vocab_out)
    for v, chosen in enumerate(neurons):
        replace = overwrite_hook((..., chosen), mean[chosen])
        correct = torch.cat([
            task.correct(logits, batch) for _, batch, logits in forward_batches(
                model, tokens, run=lambda batch: model.run_with_hooks(batch, fwd_hooks=[(NEURONS, replace)]))
        ])[:, min_position:]
        for u in range(task.d_vocab_out):
            table[v, u] = correct[majority == u].double().mean()
    return table


__all__ = [
    "MajorityAccuracy", "batched_logits", "linear_fit_r2", "logit_contributions",
    "majority_accuracy", "neuron_ablation_table", "patch_attention_output",
    "permuted_prefixes", "running_histogram", "value_neurons",
]
