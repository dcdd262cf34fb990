"""Experiments on the majority model: accuracy by position and margin, the histogram that
attention computes, logit contributions, and the MLP neurons that vote for each value.

Shapes: B batch, T = 128 positions, V = 10 values, D ``d_model``, N MLP neurons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from toybook.analysis.patching import Patch, run_with_patches
from toybook.evaluation import (
    batch_rows, batched_cache, batched_logits, forward_batches, fresh_inputs,
)
from toybook.tasks.majority.task import MajorityTask

ATTN_OUT = "blocks.0.hook_attn_out"
NEURONS = "blocks.0.mlp.hook_post"
PRE = "blocks.0.mlp.hook_pre"


@dataclass(frozen=True)
class MajorityAccuracy:
    """Accuracy of a majority model on ``n`` sequences (seed ``seed``).

    ``by_margin_last`` and ``by_margin_all`` map a margin (top count − second count; 0 is a
    tie) to ``[inputs, correct]`` at the last position and over all positions; ``wrong_at``
    lists every mistake as ``[sequence, position]``, the sequence counted in the seeded
    stream (:func:`mistaken_sequences` regenerates them).
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
    wrong_at: list[list[int]] = field(default_factory=list)  # [sequence, position] of each mistake

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
    wrong_at = (~correct).nonzero().tolist()  # sequence numbers count from 0 in the seeded stream

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
        wrong_at=wrong_at,
    )


def mistaken_sequences(task: MajorityTask, record: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """``(tokens [M, T], positions [M])``: the sequences of a recorded measurement
    (:func:`majority_accuracy`) at which the model was wrong, regenerated from the record's
    seed, and the position of each mistake. Regenerating the stream is cheap; running the
    model on all of it is not."""
    wrong = torch.tensor(record["wrong_at"], dtype=torch.long).reshape(-1, 2)
    stream = fresh_inputs(task, record["seed"])(0, int(wrong[:, 0].max()) + 1 if len(wrong) else 0)
    return stream[wrong[:, 0]], wrong[:, 1]


def what_answers_name(counts: Tensor, answers: Tensor) -> tuple[Tensor, Tensor]:
    """``(rarest [M], tied [M])``: whether each of ``answers [M]`` names the least frequent
    value (the only one with the lowest count in ``counts [M, V]``) and whether it names one
    of the values tied for the lead."""
    lowest = counts == counts.min(-1, keepdim=True).values
    tied = counts == counts.max(-1, keepdim=True).values
    rarest = lowest.gather(-1, answers[:, None])[:, 0] & (lowest.sum(-1) == 1)
    return rarest, tied.gather(-1, answers[:, None])[:, 0]


@torch.no_grad()
def recorded_mistakes(
    model: torch.nn.Module, task: MajorityTask, record: dict[str, Any],
) -> tuple[Tensor, Tensor, Tensor]:
    """``(counts [M, V], answers [M], targets [M])`` at the mistakes a recorded measurement
    (:func:`majority_accuracy`) lists, with ``model``'s answers there now (another CPU may
    round a near-tie the other way)."""
    tokens, positions = mistaken_sequences(task, record)
    rows = torch.arange(len(tokens))
    answers = batched_logits(model, tokens)[rows, positions].argmax(-1) if len(tokens) else positions
    return task.running_counts(tokens)[rows, positions], answers, task.targets(tokens)[rows, positions]


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


def permuted_prefixes(
    tokens: Tensor, position: int, seed: int = 0, keep_current: bool = False
) -> Tensor:
    """``tokens`` with ``tokens[:, :position+1]`` shuffled in each row: the running histogram
    at ``position`` (and the answer there) is unchanged, the order is not. With
    ``keep_current`` only ``tokens[:, :position]`` are shuffled: the token at ``position``
    itself stays."""
    generator = torch.Generator().manual_seed(seed)
    length = position if keep_current else position + 1
    order = torch.rand(tokens.shape[0], length, generator=generator).argsort(1)
    shuffled = tokens.clone()
    shuffled[:, :length] = tokens[:, :length].gather(1, order)
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
def tie_contributions(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, min_position: int = 16
) -> tuple[list[str], Tensor]:
    """``(names, [R, C])``: at every position ≥ ``min_position`` where exactly two values tie
    for the lead (R of them), each component's share of the smaller tied value's logit minus
    the larger's, with the final LayerNorm folded in as in :func:`logit_contributions`."""
    names = ["hook_embed", "hook_pos_embed", "blocks.0.hook_attn_out", "blocks.0.hook_mlp_out"]
    cache = batched_cache(model, tokens, [*names, "ln_final.hook_scale"])
    counts = task.running_counts(tokens)
    top = counts.max(-1, keepdim=True).values
    tied = counts == top
    rows = (tied.sum(-1) == 2)
    rows[:, :min_position] = False
    values = torch.arange(task.d_vocab_out)
    smaller = torch.where(tied, values, task.d_vocab_out).min(-1).values[rows]
    larger = torch.where(tied, values, -1).max(-1).values[rows]
    direction = (model.ln_final.w[:, None] * model.W_U).T  # [V, D]
    difference = direction[smaller] - direction[larger]  # [R, D]
    scale = cache["ln_final.hook_scale"][rows]  # [R, 1]
    parts = []
    for name in names:
        component = cache[name][rows]
        component = (component - component.mean(-1, keepdim=True)) / scale
        parts.append((component * difference).sum(-1))
    biases = model.ln_final.b @ model.W_U + model.b_U
    parts.append(biases[smaller] - biases[larger])
    return [*names, "biases"], torch.stack(parts, 1)


@torch.no_grad()
def with_uniform_attention(model: torch.nn.Module, tokens: Tensor) -> Tensor:
    """Logits ``[B, T, V]`` with both heads' patterns replaced by exactly uniform attention
    over the prefix (weight ``1 / (i + 1)`` on each token ``0..i``)."""
    n = tokens.shape[1]
    uniform = torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None]

    def hook(pattern: Tensor, hook=None) -> Tensor:
        return uniform.to(pattern.dtype).expand_as(pattern).clone()
    return torch.cat([logits for _, _, logits in forward_batches(
        model, tokens, run=lambda batch: model.run_with_hooks(
            batch, fwd_hooks=[("blocks.0.attn.hook_pattern", hook)]))])


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
    counts = task.running_counts(tokens)
    lowest = counts == counts.min(-1, keepdim=True).values
    labels = torch.where(lowest.sum(-1) == 1, counts.argmin(-1), -1)  # -1: no single one
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
    sums = count = total = squares = None  # accumulated batch by batch: no [B, T, N] cache
    for start, batch, cache in forward_batches(model, tokens, run=lambda batch: model.run_with_cache(
            batch, names_filter=lambda name: name == NEURONS)[1]):
        activations = cache[NEURONS][:, min_position:].reshape(-1, cache[NEURONS].shape[-1]).double()
        label = labels[start:start + len(batch), min_position:].reshape(-1)
        one_hot = torch.nn.functional.one_hot(label.clamp(min=0), n_values).double()
        one_hot[label < 0] = 0
        parts = (one_hot.T @ activations, one_hot.sum(0)[:, None], activations.sum(0),
                 activations.pow(2).sum(0))
        if sums is None:
            sums, count, total, squares = parts
        else:
            sums, count, total, squares = (a + b for a, b in zip((sums, count, total, squares), parts))
    n = labels[:, min_position:].numel()
    spread = ((squares - total.pow(2) / n) / (n - 1)).clamp(min=0).sqrt() + 1e-6
    inside = sums / count
    outside = (total - sums) / (n - count)
    return ((inside - outside) / spread).topk(k, dim=1).indices


def balanced_with_rare(
    task: MajorityTask, n: int, seed: int, rare_counts: tuple[int, int] = (1, 6),
) -> tuple[Tensor, Tensor]:
    """``(tokens [n, T], rare [n])``: sequences in which one value (``rare``, drawn per
    sequence) appears a number of times drawn from ``rare_counts`` (inclusive) and the nine
    others share the rest as evenly as counts allow, in a random order. They are not the
    task's distribution: they are built to hold many-way ties with one rare value, where the
    recorded mistakes are."""
    generator = torch.Generator().manual_seed(seed)
    n_values, length = task.d_vocab_out, task.n_ctx
    rare = torch.randint(0, n_values, (n,), generator=generator)
    n_rare = torch.randint(rare_counts[0], rare_counts[1] + 1, (n,), generator=generator)
    slot = torch.arange(length)[None, :].expand(n, length)
    others = (rare[:, None] + 1 + slot % (n_values - 1)) % n_values  # the nine, in turn
    bag = torch.where(slot >= length - n_rare[:, None], rare[:, None], others)
    order = torch.rand(n, length, generator=generator).argsort(1)
    return bag.gather(1, order), rare


@torch.no_grad()
def mlp_readout(model: torch.nn.Module, tokens: Tensor, min_position: int = 16) -> dict[str, Tensor]:
    """What the MLP's neurons see and write, flattened over positions ≥ ``min_position``:
    ``{"resid_mid": [R, D], "neurons": [R, N], "majority": [R]}``.

    In this one-layer model the neurons act on the logits only through the MLP's output, so
    with ``resid_mid`` kept, :func:`logits_from_neurons` gives the logits for any edit of the
    neurons without running the model again: the ablation curves below cost a matrix
    product each, not a forward pass."""
    cache = batched_cache(model, tokens, ["blocks.0.hook_resid_mid", NEURONS])
    return {
        "resid_mid": cache["blocks.0.hook_resid_mid"][:, min_position:].flatten(0, 1),
        "neurons": cache[NEURONS][:, min_position:].flatten(0, 1),
        "majority": MajorityTask().targets(tokens)[:, min_position:].flatten(),
    }


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


def tie_size(counts: Tensor) -> Tensor:
    """``[...]``: how many values share the top count (1: one value leads; 2: a two-way
    tie), from running counts ``[..., V]``."""
    return (counts == counts.max(-1, keepdim=True).values).sum(-1)


def positions_by_tie_size(task: MajorityTask, record: dict[str, Any], chunk: int = 20_000) -> Tensor:
    """``[V + 1]``: how many positions of a recorded measurement's sequences
    (:func:`majority_accuracy`, regenerated from its seed, chunk by chunk) have each
    :func:`tie_size`; with the record's ``wrong_at``, the base rate of its mistakes.
    Counts are int16, so 12.8M positions take about 1.5 s."""
    stream = fresh_inputs(task, record["seed"])
    sizes = torch.zeros(task.d_vocab_out + 1, dtype=torch.long)
    for start in range(0, record["n"], chunk):
        tokens = stream(start, min(record["n"], start + chunk))
        counts = torch.zeros(*tokens.shape, task.d_vocab_out, dtype=torch.int16)
        counts = counts.scatter_(-1, tokens[..., None], 1).cumsum(1, dtype=torch.int16)
        tied = (counts == counts.amax(-1, keepdim=True)).sum(-1)
        sizes += torch.bincount(tied.flatten(), minlength=len(sizes))
    return sizes


@torch.no_grad()
def neurons_at(model: torch.nn.Module, tokens: Tensor, where: Tensor) -> tuple[Tensor, Tensor]:
    """``(resid_mid [M, D], neurons [M, N])`` at the positions where ``where [B, T]`` is
    true, in row-major order, batch by batch (only those positions are kept). With
    :func:`logits_from_neurons` they give the logits for any edit of the neurons there."""
    names = ("blocks.0.hook_resid_mid", NEURONS)

    def cached(batch: Tensor) -> Any:
        return model.run_with_cache(batch, names_filter=lambda name: name in names)[1]

    resid, neurons = [], []
    for start, batch, cache in forward_batches(model, tokens, run=cached):
        mask = where[start:start + len(batch)].to(batch.device)
        resid.append(cache[names[0]][mask])
        neurons.append(cache[NEURONS][mask])
    return torch.cat(resid), torch.cat(neurons)


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


@torch.no_grad()
def mean_activations(model: torch.nn.Module, tokens: Tensor, min_position: int = 16) -> Tensor:
    """``[N]``: each MLP neuron's mean activation over the positions ≥ ``min_position`` of
    ``tokens``, batch by batch (the baseline of a mean ablation)."""
    total, count = None, 0
    for _, batch, cache in forward_batches(model, tokens, run=lambda batch: model.run_with_cache(
            batch, names_filter=lambda name: name == NEURONS)[1]):
        part = cache[NEURONS][:, min_position:].double()
        total = part.sum((0, 1)) if total is None else total + part.sum((0, 1))
        count += part.shape[0] * part.shape[1]
    return (total / count).float()


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


@dataclass(frozen=True)
class RareValueMistakes:
    """A model's mistakes at positions ≥ 16 of sequences with one rare value
    (:func:`balanced_with_rare`): where they are (``wrong [B, T]``), whether each names the
    rare value and whether mean-ablating that value's minority neurons corrects it
    (``named``, ``fixed`` [M], row-major order), and the share corrected by as many random
    neurons in each draw (``random [draws]``)."""

    wrong: Tensor
    named: Tensor
    fixed: Tensor
    random: Tensor


@torch.no_grad()
def rare_value_mistakes(
    model: torch.nn.Module, task: MajorityTask, tokens: Tensor, rare: Tensor, ranking: Tensor,
    mean: Tensor, draws: int = 10, seed: int = 0, min_position: int = 16,
) -> RareValueMistakes:
    """The test of the rare-mistake mechanism on ``tokens`` (whose rare values are ``rare
    [B]``): ``ranking [V, k]`` are the minority neurons (:func:`minority_neurons`, chosen
    on other inputs), ``mean [N]`` the activations a mean ablation sets."""
    targets = task.targets(tokens)
    answers = batched_logits(model, tokens).argmax(-1)
    wrong = (answers != targets) & (torch.arange(task.n_ctx) >= min_position)
    resid, neurons = neurons_at(model, tokens, wrong)
    rare_at, target_at = rare[:, None].expand_as(tokens)[wrong], targets[wrong]
    fixed = mean_ablated_answers(model, resid, neurons, ranking[rare_at], mean) == target_at
    generator = torch.Generator().manual_seed(seed)
    random = torch.tensor([(mean_ablated_answers(
        model, resid, neurons, random_neurons(len(rare_at), neurons.shape[-1], ranking.shape[1], generator),
        mean) == target_at).double().mean().item() for _ in range(draws)])
    return RareValueMistakes(wrong, answers[wrong] == rare_at, fixed, random)


__all__ = [
    "AblationCurve", "MajorityAccuracy", "batched_logits", "linear_fit_r2", "logit_contributions",
    "logits_from_neurons", "majority_accuracy", "mistaken_sequences", "mlp_readout",
    "neuron_ablation_curve",
    "neuron_ablation_table", "patch_attention_output", "permuted_prefixes", "running_histogram",
    "inhibition_asymmetry", "inhibition_weights", "linear_vote", "mirrored_inhibition",
    "tie_contributions", "value_neurons", "with_inhibition_edit", "with_uniform_attention",
    "boundary_offsets", "rival_boundaries", "neurons_at", "positions_by_tie_size",
    "scaled_neuron_answers", "tie_size", "balanced_with_rare", "mean_ablated_answers",
    "minority_neurons", "ranked_neurons", "mean_activations", "random_neurons",
    "recorded_mistakes", "what_answers_name", "RareValueMistakes", "rare_value_mistakes",
]
