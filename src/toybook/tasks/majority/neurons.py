"""The majority model's MLP neurons: the neurons that vote for each value (ranked, not
picked), how other values inhibit them and the asymmetry that breaks ties, where the MLP's
decision between two rivals flips, and ablations of chosen neurons against random ones.

In this one-layer model the neurons act on the logits only through the MLP's output, so
with the residual stream before the MLP kept (:func:`neurons_at`),
:func:`logits_from_neurons` gives the logits for any edit of the neurons without running
the model again: the ablation curves cost a matrix product each, not a forward pass.

Shapes: B batch, T = 128 positions, V = 10 values, D ``d_model``, N MLP neurons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from toybook.evaluation import activations, batched_cache, forward_batches
from toybook.tasks.majority.attention import running_histogram
from toybook.tasks.majority.task import MajorityTask, single_lowest

NEURONS = "blocks.0.mlp.hook_post"
PRE = "blocks.0.mlp.hook_pre"
RESID_MID = "blocks.0.hook_resid_mid"


@torch.no_grad()
def inhibition_weights(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, groups: Tensor,
    min_position: int = 32,
) -> Tensor:
    """``[V, V]``: entry ``[v, w]`` is the mean weight, over value v's neurons ``groups[v]``,
    of the fraction of value w in a least-squares fit of the neuron's pre-activation on the
    running histogram (plus a constant), positions ≥ ``min_position``. The diagonal is how
    much a value's own neurons gain from its count; off the diagonal, how much other values
    inhibit them."""
    pre = batched_cache(model, tokens, [PRE])[PRE][:, min_position:].double()
    histogram = running_histogram(task, tokens)[:, min_position:]
    design = torch.cat([histogram, torch.ones(*histogram.shape[:2], 1, dtype=torch.double)], -1)
    fit = torch.linalg.lstsq(design.flatten(0, 1), pre.flatten(0, 1)).solution[:-1]  # [V, N]
    return torch.stack([fit[:, group].mean(1) for group in groups])


def inhibition_asymmetry(weights: Tensor) -> float:
    """Mean inhibition from smaller values minus mean inhibition from larger ones: the mean
    of the entries below the diagonal of :func:`inhibition_weights` minus the mean of those
    above it. Negative: a smaller value inhibits a value's neurons more."""
    below = torch.tril(torch.ones_like(weights, dtype=torch.bool), -1)
    return (weights[below].mean() - weights[below.T].mean()).item()


def mirrored_inhibition(n_values: int) -> Tensor:
    """``[V, V]`` signs: +1 from a smaller value, −1 from a larger one, 0 on the diagonal.
    Added with a strength equal to the asymmetry's size, it reverses the asymmetry."""
    values = torch.arange(n_values)
    return (values[None, :] < values[:, None]).float() - (values[None, :] > values[:, None]).float()


@torch.no_grad()
def with_inhibition_edit(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, groups: Tensor, signs: Tensor,
    strength: float,
) -> Tensor:
    """Logits ``[B, T, V]`` with each value v's neurons ``groups[v]`` given, before their
    activation, an extra ``strength * Σ_w signs[v, w] * fraction(w)``: an edit of how much
    each other value inhibits them (:func:`inhibition_weights`)."""
    neurons, owners = groups.flatten(), torch.arange(len(groups)).repeat_interleave(groups.shape[1])

    def run(batch: Tensor) -> Tensor:
        extra = strength * running_histogram(task, batch).float() @ signs.T  # [b, T, V]

        def hook(pre: Tensor, hook=None) -> Tensor:
            pre = pre.clone()
            pre[..., neurons] += extra[..., owners].to(pre.dtype)
            return pre
        return model.run_with_hooks(batch, fwd_hooks=[(PRE, hook)])
    return torch.cat([logits for _, _, logits in forward_batches(model, tokens, run=run)])


def linear_vote(histogram: Tensor, gain: float, from_smaller: float, from_larger: float) -> Tensor:
    """``[..., ]`` answers of the reduced model: ``argmax_v gain·h_v + from_smaller·Σ_{w<v} h_w
    + from_larger·Σ_{w>v} h_w`` (three numbers; the two inhibitions are negative). With
    ``from_smaller < from_larger`` a tie goes to the smaller value."""
    smaller = histogram.cumsum(-1) - histogram
    larger = histogram.sum(-1, keepdim=True) - histogram.cumsum(-1)
    return (gain * histogram + from_smaller * smaller + from_larger * larger).argmax(-1)


@torch.no_grad()
def rival_boundaries(
    model: torch.nn.Module, heads: Callable[[Tensor], Tensor], pairs: list[tuple[int, int]],
    offsets: Tensor, level: float = 0.16,
) -> Tensor:
    """``[pairs, offsets, T]``: the smaller rival's logit minus the larger's, for synthetic
    histograms fed through ``heads`` (:func:`~toybook.tasks.majority.hypotheses.histogram_map`)
    into the rest of the model.

    At position i (n = i + 1 tokens) rival ``u`` has ``c + x`` counts and rival ``v`` has
    ``c`` (x from ``offsets``, fractions allowed), c = ``level`` · n rounded (at least 1);
    the other values share the rest evenly, and the token at i is one of them. The sign
    change along x is where the MLP's decision flips: between x = −1 and x = 0 means a tie
    goes to ``u`` and a one-count lead of ``v`` to ``v``."""
    n_values, n = model.cfg.d_vocab_out, model.cfg.n_ctx
    length = torch.arange(1, n + 1, dtype=torch.double)
    level_counts = torch.round(level * length).clamp(min=1)
    out = torch.empty(len(pairs), len(offsets), n, dtype=torch.double)
    for p, (u, v) in enumerate(pairs):
        rival_u = level_counts[None] + offsets[:, None].double()  # [X, T]
        rest = (length[None] - rival_u - level_counts[None]) / (n_values - 2)
        histogram = rest[..., None].repeat(1, 1, n_values)
        histogram[..., u], histogram[..., v] = rival_u, level_counts[None].expand_as(rival_u)
        histogram = histogram / length[None, :, None]
        other = next(w for w in range(n_values) if w not in (u, v))
        stated = heads(histogram)
        logits = model.run_with_hooks(
            torch.full((len(offsets), n), other),
            fwd_hooks=[("blocks.0.attn.hook_z", lambda z, hook=None: stated)])
        out[p] = (logits[..., u] - logits[..., v]).double()
    return out


def boundary_offsets(differences: Tensor, offsets: Tensor) -> Tensor:
    """``[pairs, T]``: the smallest offset at which the smaller rival's logit is ahead
    (:func:`rival_boundaries`), linearly interpolated between grid points."""
    ahead = differences > 0
    first = ahead.double().argmax(1).clamp(min=1)  # [pairs, T]
    lower, upper = offsets[first - 1].double(), offsets[first].double()
    d_low = differences.gather(1, (first - 1)[:, None])[:, 0]
    d_high = differences.gather(1, first[:, None])[:, 0]
    return lower + (upper - lower) * (-d_low) / (d_high - d_low)


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
    return ranked_neurons(model, tokens, task.targets(tokens), task.d_vocab_out, k, min_position)


@torch.no_grad()
def minority_neurons(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, k: int = 5, min_position: int = 16
) -> Tensor:
    """``[V, k]``: for each value v, the k neurons whose activation most separates "v is the
    least frequent value so far" (the only one with the lowest count) from the rest, ranked
    as :func:`value_neurons` ranks a value's own neurons."""
    labels = single_lowest(task.running_counts(tokens))  # -1: no single one
    return ranked_neurons(model, tokens, labels, task.d_vocab_out, k, min_position)


@torch.no_grad()
def ranked_neurons(
    model: torch.nn.Module, tokens: Tensor, labels: Tensor, n_values: int, k: int,
    min_position: int = 16,
) -> Tensor:
    """``[V, k]``: for each value v, the k neurons with the largest signal-to-noise ratio
    between the positions ≥ ``min_position`` labelled v (``labels [B, T]``; -1 for none)
    and all the others: the difference of the neuron's two mean activations divided by its
    standard deviation overall."""
    sums, count, total, squares, n = neuron_moments(model, tokens, labels, n_values, min_position)
    spread = ((squares - total.pow(2) / n) / (n - 1)).clamp(min=0).sqrt() + 1e-6
    inside = sums / count
    outside = (total - sums) / (n - count)
    return ((inside - outside) / spread).topk(k, dim=1).indices


@torch.no_grad()
def neuron_moments(
    model: torch.nn.Module, tokens: Tensor, labels: Tensor | None = None, n_values: int = 0,
    min_position: int = 16,
) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """``(sums [V, N], count [V, 1], total [N], squares [N], n)`` of the MLP neurons'
    activations over the ``n`` positions ≥ ``min_position`` of ``tokens``: per value the sum
    at the positions labelled with it (``labels [B, T]``, -1 for none) and their number, and
    over every position the sum and the sum of squares. Streamed batch by batch (no
    ``[B, T, N]`` cache), in float64."""
    sums = count = total = squares = None
    for start, batch, cache in forward_batches(model, tokens, run=lambda batch: activations(model, batch, [NEURONS])):
        values = cache[NEURONS][:, min_position:].reshape(-1, cache[NEURONS].shape[-1]).double()
        label = (torch.full(batch.shape, -1) if labels is None else labels[start:start + len(batch)])
        label = label[:, min_position:].reshape(-1)
        one_hot = torch.nn.functional.one_hot(label.clamp(min=0), max(n_values, 1)).double()
        one_hot[label < 0] = 0
        parts = (one_hot.T @ values, one_hot.sum(0)[:, None], values.sum(0), values.pow(2).sum(0))
        sums, count, total, squares = parts if sums is None else (
            a + b for a, b in zip((sums, count, total, squares), parts))
    return sums, count, total, squares, tokens[:, min_position:].numel()


@torch.no_grad()
def mean_activations(model: torch.nn.Module, tokens: Tensor, min_position: int = 16) -> Tensor:
    """``[N]``: each MLP neuron's mean activation over the positions ≥ ``min_position`` of
    ``tokens``, batch by batch (the baseline of a mean ablation)."""
    _, _, total, _, n = neuron_moments(model, tokens, min_position=min_position)
    return (total / n).float()


@torch.no_grad()
def neurons_at(model: torch.nn.Module, tokens: Tensor, where: Tensor) -> tuple[Tensor, Tensor]:
    """``(resid_mid [M, D], neurons [M, N])`` at the positions where ``where [B, T]`` is
    true, in row-major order, batch by batch (only those positions are kept). With
    :func:`logits_from_neurons` they give the logits for any edit of the neurons there."""
    names = (RESID_MID, NEURONS)
    resid, neurons = [], []
    for start, batch, cache in forward_batches(model, tokens, run=lambda batch: activations(model, batch, names)):
        mask = where[start:start + len(batch)].to(batch.device)
        resid.append(cache[names[0]][mask])
        neurons.append(cache[NEURONS][mask])
    return torch.cat(resid), torch.cat(neurons)


@torch.no_grad()
def mlp_readout(model: torch.nn.Module, tokens: Tensor, min_position: int = 16) -> dict[str, Tensor]:
    """What the MLP's neurons see and write, flattened over positions ≥ ``min_position``:
    ``{"resid_mid": [R, D], "neurons": [R, N], "majority": [R]}``.

    In this one-layer model the neurons act on the logits only through the MLP's output, so
    with ``resid_mid`` kept, :func:`logits_from_neurons` gives the logits for any edit of the
    neurons without running the model again: the ablation curves below cost a matrix
    product each, not a forward pass."""
    where = torch.zeros(tokens.shape, dtype=torch.bool)
    where[:, min_position:] = True
    resid_mid, neurons = neurons_at(model, tokens, where)
    return {"resid_mid": resid_mid, "neurons": neurons, "majority": MajorityTask().targets(tokens)[where]}


@torch.no_grad()
def logits_from_neurons(model: torch.nn.Module, resid_mid: Tensor, neurons: Tensor) -> Tensor:
    """``[..., V]``: the logits when the MLP's neurons (``hook_post``) are ``neurons``: their
    output added to ``resid_mid``, then the final LayerNorm and the unembedding."""
    return model.unembed(model.ln_final(resid_mid + neurons @ model.W_out[0] + model.b_out[0]))


@torch.no_grad()
def neuron_ablation_table(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, neurons: Tensor,
    min_position: int = 16,
) -> Tensor:
    """``[V ablated, V majority]``: accuracy at positions ≥ ``min_position`` whose majority
    is the column's value, with the row value's neurons mean-ablated (means over ``tokens``)."""
    readout = mlp_readout(model, tokens, min_position)
    mean = readout["neurons"].mean(0)
    table = torch.empty(len(neurons), task.d_vocab_out)
    for v, chosen in enumerate(neurons):
        edited = readout["neurons"].clone()
        edited[:, chosen] = mean[chosen]
        right = logits_from_neurons(model, readout["resid_mid"], edited).argmax(-1) == readout["majority"]
        for u in range(task.d_vocab_out):
            table[v, u] = right[readout["majority"] == u].double().mean()
    return table


@dataclass(frozen=True)
class AblationCurve:
    """Accuracy on the positions a value leads, averaged over the values, with k of that
    value's neurons mean-ablated: its top k (``chosen [K]``) or k random others
    (``random [K, draws]``, each draw averaged over the values)."""

    ks: list[int]
    chosen: Tensor
    random: Tensor


@torch.no_grad()
def neuron_ablation_curve(
    model: torch.nn.Module, tokens: Tensor, ranking: Tensor, ks: list[int], draws: int = 10,
    seed: int = 0, min_position: int = 16,
) -> AblationCurve:
    """For each k in ``ks``: mean-ablate ``ranking[v, :k]`` (neurons ranked for value v on
    other inputs, :func:`value_neurons`) and measure accuracy at the positions ≥
    ``min_position`` of ``tokens`` whose majority is v; the baseline ablates k neurons drawn
    at random from those not in ``ranking[v]``, ``draws`` times."""
    readout = mlp_readout(model, tokens, min_position)
    mean = readout["neurons"].mean(0)
    generator = torch.Generator().manual_seed(seed)
    n_values, n_neurons = ranking.shape[0], readout["neurons"].shape[1]
    chosen = torch.zeros(len(ks), dtype=torch.double)
    random = torch.zeros(len(ks), draws, dtype=torch.double)
    for v in range(n_values):
        rows = readout["majority"] == v
        resid, neurons = readout["resid_mid"][rows], readout["neurons"][rows]
        others = torch.tensor([n for n in range(n_neurons) if n not in set(ranking[v].tolist())])

        written = resid + neurons @ model.W_out[0] + model.b_out[0]  # the unablated stream

        def accuracy(ablated: Tensor) -> float:
            """Mean-ablating ``ablated`` changes the stream by their columns of W_out only."""
            change = (mean[ablated] - neurons[:, ablated]) @ model.W_out[0][ablated]
            logits = model.unembed(model.ln_final(written + change))
            return (logits.argmax(-1) == v).double().mean().item()

        for i, k in enumerate(ks):
            chosen[i] += accuracy(ranking[v, :k]) / n_values
            for d in range(draws):
                pick = others[torch.randperm(len(others), generator=generator)[:k]]
                random[i, d] += accuracy(pick) / n_values
    return AblationCurve(list(ks), chosen, random)


def scaled_neuron_answers(
    model: torch.nn.Module, resid_mid: Tensor, neurons: Tensor, chosen: list[Tensor],
    factor: float,
) -> Tensor:
    """``[M]``: the answers with the neurons ``chosen[m]`` of row ``m`` multiplied by
    ``factor``, from :func:`neurons_at`'s ``resid_mid [M, D]`` and ``neurons [M, N]``."""
    edited = neurons.clone()
    for m, index in enumerate(chosen):
        edited[m, index] *= factor
    return logits_from_neurons(model, resid_mid, edited).argmax(-1)


def mean_ablated_answers(
    model: torch.nn.Module, resid_mid: Tensor, neurons: Tensor, chosen: Tensor, mean: Tensor,
) -> Tensor:
    """``[M]``: the answers with the neurons ``chosen [M, k]`` of each row set to their mean
    activation ``mean [N]`` (over other inputs), from :func:`neurons_at`'s ``resid_mid``
    and ``neurons``."""
    edited = neurons.clone().scatter_(1, chosen, mean.to(neurons.dtype)[chosen])
    return logits_from_neurons(model, resid_mid, edited).argmax(-1)


def random_neurons(rows: int, n_neurons: int, k: int, generator: torch.Generator) -> Tensor:
    """``[rows, k]``: k distinct neurons drawn at random for each row (a baseline of the same
    size as a chosen set)."""
    return torch.rand(rows, n_neurons, generator=generator).argsort(1)[:, :k]


__all__ = ["AblationCurve", "NEURONS", "PRE", "boundary_offsets", "inhibition_asymmetry",
           "inhibition_weights", "linear_vote", "logits_from_neurons", "mean_ablated_answers",
           "mean_activations", "minority_neurons", "mirrored_inhibition", "mlp_readout",
           "neuron_ablation_curve", "neuron_ablation_table", "neuron_moments", "neurons_at",
           "random_neurons", "ranked_neurons", "rival_boundaries", "scaled_neuron_answers",
           "value_neurons", "with_inhibition_edit"]
