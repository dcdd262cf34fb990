"""Faithfulness: how much of a model's behaviour a stated circuit explains, as one number.

A chapter's reading names the components that matter (the circuit) among a set of
components it looked at (the universe: say every head at every position, and the MLPs).
The *fraction of loss recovered* (Wang et al. 2022; Chan et al. 2022; Conmy et al. 2023)
asks what is left of the model's loss when only the circuit is intact::

    recovered = (L_ablated - L_hypothesis) / (L_ablated - L_model)

- ``L_model``: the model's loss on the held-out inputs;
- ``L_ablated``: the loss with the circuit's components mean-ablated (the circuit removed);
- ``L_hypothesis``: the loss with everything else in the universe resample-ablated (each
  row's activations taken from another input, causal-scrubbing style), and optionally the
  circuit's own components replaced by what the hypothesis says they compute.

1 means the circuit alone gives the model's loss; 0 means keeping it is no better than
removing it; a value above 1 means the rest of the universe was hurting. The baseline it
must be read against (``n_random`` draws): for a circuit, random circuits of the same size
from the same universe; for a hypothesis that states values, the same substitution with
each row given the values stated for another input (a shuffled label). Means and
resampling sources come from ``reference`` inputs, never from the inputs measured, so
components chosen on one set can be tested on another.

A chapter states its reading as a :class:`Hypothesis` (in its task folder's
``hypotheses.py``); :func:`measure_hypotheses` gives the numbers its table shows and
:func:`faithfulness_claim` the claim the tests assert.

Components are :class:`~toybook.analysis.patching.Patch` objects (a hook, positions, heads),
so every ablation here goes through :func:`~toybook.analysis.patching.run_with_patches`.

Shapes: B held-out inputs, R reference inputs, T ``n_ctx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from toybook.analysis.patching import Patch, head, mlp, run_with_patches, source_cache
from toybook.claims import Claim
from toybook.config_checks import check_integer
from toybook.errors import ToybookError
from toybook.model import check_model_fits
from toybook.task import Task

Computed = Callable[[Tensor], Tensor]  # tokens [B, T] -> the activation [B, T, ...] a hypothesis states
Stated = Callable[[torch.nn.Module, Tensor], Mapping[Patch, Computed]]  # (model, reference) -> values
Groups = Callable[[Tensor], Mapping[str, Tensor]]  # tokens [B, T] -> name -> bool [B, A] answers
RANDOM_CIRCUITS, SHUFFLED_VALUES = "random circuits of that size", "the values stated for other inputs"


@dataclass(frozen=True)
class Faithfulness:
    """The fraction of loss recovered by one circuit, with the losses it is made of and
    the same number for random circuits of the same size."""

    recovered: float  # NaN where removing the circuit does not change the loss
    loss_model: float
    loss_ablated: float
    loss_hypothesis: float
    n_components: int
    n_universe: int
    random: tuple[float, ...] = field(default=())  # one per draw; NaN where undefined
    baseline: str = RANDOM_CIRCUITS  # what the draws in ``random`` are (or SHUFFLED_VALUES)
    random_losses: tuple[tuple[float, float], ...] = field(default=())  # (ablated, hypothesis)
    groups: Mapping[str, "Faithfulness"] = field(default_factory=dict)  # the same, per group
    n_answers: int = 0  # answers the losses average over (a group's, or all B × A)

    @property
    def random_mean(self) -> float:
        """The baseline's fraction of loss recovered, from its losses averaged over the draws
        (a mean of per-draw fractions would be ruled by draws whose removal barely changes
        the loss: their denominators are near 0)."""
        if not self.random_losses:
            return float("nan")
        ablated, hypothesis = (sum(losses) / len(losses) for losses in zip(*self.random_losses))
        return recovered_fraction(self.loss_model, ablated, hypothesis)

    @property
    def n_random_defined(self) -> int:
        """Random draws whose removal changed the loss (the others have no fraction)."""
        return sum(not math.isnan(value) for value in self.random)

    def to_record(self) -> dict:
        """Plain JSON data (for a checkpoint's sidecar); :meth:`from_record` reads it back."""
        return {**{name: getattr(self, name) for name in self.__dataclass_fields__ if name != "groups"},
                "groups": {name: group.to_record() for name, group in self.groups.items()}}

    @classmethod
    def from_record(cls, record: Mapping) -> "Faithfulness":
        """The :class:`Faithfulness` that :meth:`to_record` wrote."""
        return cls(**{**record, "random": tuple(record["random"]),
                      "random_losses": tuple(map(tuple, record["random_losses"])),
                      "groups": {name: cls.from_record(group) for name, group in record["groups"].items()}})

    def __str__(self) -> str:
        return (f"loss recovered {self.recovered:.3f} by {self.n_components} of "
                f"{self.n_universe} components ({self.baseline}: "
                f"{self.random_mean:.3f}, from the losses of {len(self.random)} draws); losses: model "
                f"{self.loss_model:.3g}, circuit removed {self.loss_ablated:.3g}, only the "
                f"circuit kept {self.loss_hypothesis:.3g}")


def recovered_fraction(loss_model: float, loss_ablated: float, loss_hypothesis: float) -> float:
    """``(L_ablated - L_hypothesis) / (L_ablated - L_model)``; NaN where the denominator is
    below float64 resolution of the losses (removing the circuit changed nothing)."""
    scale = max(abs(loss_ablated), abs(loss_model), 1e-300)
    if abs(loss_ablated - loss_model) <= 1e-12 * scale:
        return float("nan")
    return (loss_ablated - loss_hypothesis) / (loss_ablated - loss_model)


@torch.no_grad()
def loss_recovered(
    model: torch.nn.Module, task: Task, tokens: Tensor, reference: Tensor,
    circuit: Sequence[Patch], universe: Sequence[Patch],
    computed: Mapping[Patch, Computed] | None = None, n_random: int = 10, seed: int = 0,
    groups: Mapping[str, Tensor] | None = None,
) -> Faithfulness:
    """The fraction of loss ``circuit`` recovers on ``tokens``, and its random baseline.

    ``circuit`` must be a subset of ``universe``; ``computed`` maps circuit components to
    functions of the tokens giving the activation the hypothesis says they hold (those
    components are then replaced by it in ``L_hypothesis``). Means and resampled rows come
    from ``reference`` (inputs not among ``tokens``). The baseline, ``n_random`` draws with
    ``seed``: random circuits of the same size from ``universe``; or, where values are
    stated, the same circuit with the values stated for a random permutation of the rows.

    ``groups`` (name → bool ``[B, A]`` over the answers of ``tokens``, say one per kind of
    answer) adds the same numbers with each loss averaged over that group's answers only,
    from the same runs, in :attr:`Faithfulness.groups`.
    """
    circuit, universe = list(circuit), list(universe)
    _check(circuit, universe, computed or {}, tokens, reference, n_random)
    masks = _group_masks(groups or {}, tokens, task)
    means = _means(model, reference, universe)
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, len(reference), (len(tokens),), generator=generator)
    resampled = source_cache(model, reference[rows], universe)  # one run serves every draw
    loss_model = task.token_losses(model(tokens), tokens)

    def measure(kept: list[Patch], stated: Mapping[Patch, Computed],
                ablated: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if ablated is None:
            ablated = _loss(model, task, tokens, kept, cache=means)
        rest = [patch for patch in universe if patch not in kept]
        return ablated, _scrubbed_loss(model, task, tokens, rest, resampled, stated)

    losses = measure(circuit, computed or {})
    draws = []
    for _ in range(n_random):
        if computed:
            order = torch.randperm(len(tokens), generator=generator)
            shuffled = {patch: _on_rows(function, order) for patch, function in computed.items()}
            draws.append(measure(circuit, shuffled, losses[0]))
        else:
            chosen = torch.randperm(len(universe), generator=generator)[: len(circuit)]
            draws.append(measure([universe[i] for i in sorted(chosen.tolist())], {}))

    def summary(mask: Tensor | None, groups: Mapping[str, Faithfulness]) -> Faithfulness:
        def mean(token_losses: Tensor) -> float:
            return (token_losses.mean() if mask is None else token_losses[mask].mean()).item()

        model_loss, (ablated, hypothesis) = mean(loss_model), map(mean, losses)
        random_losses = tuple((mean(a), mean(h)) for a, h in draws)
        return Faithfulness(
            recovered_fraction(model_loss, ablated, hypothesis), model_loss, ablated, hypothesis,
            len(circuit), len(universe),
            tuple(recovered_fraction(model_loss, a, h) for a, h in random_losses),
            SHUFFLED_VALUES if computed else RANDOM_CIRCUITS, random_losses, groups,
            loss_model.numel() if mask is None else int(mask.sum()))

    return summary(None, {name: summary(mask, {}) for name, mask in masks.items()})


def _group_masks(groups: Mapping[str, Tensor], tokens: Tensor, task: Task) -> dict[str, Tensor]:
    """``groups`` checked: each a bool ``[B, A]`` mask over the answers, none empty."""
    shape = (len(tokens), len(task.answer_names))
    masks = {}
    for name, mask in groups.items():
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != shape:
            raise ToybookError(f"group {name!r} must be a bool tensor {list(shape)} (inputs × "
                               f"answers {', '.join(task.answer_names)}), got "
                               f"{getattr(mask, 'dtype', type(mask).__name__)} "
                               f"{list(getattr(mask, 'shape', []))}")
        if not mask.any():
            raise ToybookError(f"group {name!r} holds no answer of these inputs")
        masks[name] = mask.to(tokens.device)
    return masks


def _on_rows(function: Computed, order: Tensor) -> Computed:
    return lambda tokens: function(tokens[order])


@dataclass(frozen=True)
class Hypothesis:
    """A chapter's reading as data: the components it names (``circuit``) among those it
    looked at (``universe``), and optionally what it says some of them compute. ``stated``
    builds those values for a model from reference inputs (a fit, say), as a mapping from
    circuit components to functions of the tokens."""

    name: str
    text: str  # the reading in one sentence
    circuit: tuple[Patch, ...]
    universe: tuple[Patch, ...]
    stated: Stated | None = None
    n_inputs: int = 1000  # held-out inputs it is measured on (and as many reference inputs)

    def measure(self, model: torch.nn.Module, task: Task, tokens: Tensor | None = None,
                reference: Tensor | None = None, n_random: int = 10,
                seed: int = 0, groups: Groups | None = None) -> Faithfulness:
        """The fraction of loss recovered on ``tokens`` (by default :func:`held_out_inputs`
        of ``n_inputs``), means and resampling from ``reference``; per group of answers too
        where ``groups`` (a function of the tokens, see :func:`loss_recovered`) is given."""
        check_model_fits(f"Hypothesis {self.name!r}", model, task)
        if tokens is None or reference is None:
            tokens, reference = held_out_inputs(task, self.n_inputs)
        computed = self.stated(model, reference) if self.stated else None
        return loss_recovered(model, task, tokens, reference, self.circuit, self.universe,
                              computed, n_random, seed, groups(tokens) if groups else None)


def measure_hypotheses(hypotheses: Sequence[Hypothesis], models: Mapping[str, torch.nn.Module],
                       task: Task, n_random: int = 10,
                       groups: Groups | None = None) -> dict[str, dict[str, Faithfulness]]:
    """Model label → hypothesis name → its :class:`Faithfulness` on the held-out inputs,
    with the baseline from ``n_random`` draws (and per group of answers, where ``groups``):
    the numbers a chapter's faithfulness table shows (see
    :func:`toybook.tables.faithfulness_table`)."""
    inputs = {n: held_out_inputs(task, n) for n in {h.n_inputs for h in hypotheses}}
    return {label: {h.name: h.measure(model, task, *inputs[h.n_inputs], n_random=n_random,
                                      groups=groups)
                    for h in hypotheses}
            for label, model in models.items()}


def held_out_inputs(task: Task, n: int = 1000) -> tuple[Tensor, Tensor]:
    """``(tokens, reference)``: ``n`` inputs to measure on and ``n`` others for means and
    resampling, from seeds no chapter uses to choose components (10_001 and 10_002)."""
    return task.generate(n, seed=10_001), task.generate(n, seed=10_002)


def faithfulness_claim(hypothesis: Hypothesis, task: Task, low: float = 0.95,
                       high: float = float("inf"), all_seeds: bool = True):
    """A :class:`~toybook.claims.Claim` that ``hypothesis`` recovers between ``low`` and
    ``high`` of the loss on :func:`held_out_inputs` (0.95 is the book's goal)."""
    return Claim(f"loss_recovered_{hypothesis.name}", f"{hypothesis.text}: fraction of loss "
                 "recovered on held-out inputs", partial(recovered, hypothesis=hypothesis, task=task),
                 low, high, all_seeds)


def recovered(model: nn.Module, hypothesis: Hypothesis, task: Task) -> float:
    """The fraction of loss ``hypothesis`` recovers on ``model`` (held-out inputs, no random
    circuits): a faithfulness claim's measure."""
    return hypothesis.measure(model, task, n_random=0).recovered


def _loss(model, task, tokens, patches, cache) -> Tensor:
    return task.token_losses(run_with_patches(model, tokens, patches, cache=cache), tokens)


def _scrubbed_loss(model, task, tokens, rest, resampled, stated) -> Tensor:
    """Loss with ``rest`` taken from the ``resampled`` cache (a run on the resampled rows)
    and each stated component replaced by its stated value, in one patched forward pass:
    the cache holds, per hook, the resampled activation with the stated entries written
    over it."""
    cache = {patch.hook: resampled[patch.hook] for patch in rest}
    for patch, function in stated.items():
        value = function(tokens)
        if patch.hook in cache:
            cache[patch.hook] = cache[patch.hook].clone()
            cache[patch.hook][patch.index] = value[patch.index].to(cache[patch.hook].dtype)
        else:
            cache[patch.hook] = value
    patches = [*rest, *stated]
    logits = run_with_patches(model, tokens, patches, cache=cache) if patches else model(tokens)
    return task.token_losses(logits, tokens)


def _means(model, reference: Tensor, universe: list[Patch]) -> dict[str, Tensor]:
    """Each universe hook's mean over the reference inputs, per position: ``[1, T, ...]``
    (as :func:`~toybook.analysis.ablation.mean_activation` takes it, from one run)."""
    cache = source_cache(model, reference, universe)
    return {name: cache[name].float().mean(dim=0, keepdim=True)
            for name in dict.fromkeys(patch.hook for patch in universe)}


def _check(circuit, universe, computed, tokens, reference, n_random) -> None:
    if not circuit:
        raise ToybookError("a circuit needs at least one component")
    if len(set(universe)) != len(universe):
        raise ToybookError("the universe lists a component twice")
    outside = [patch for patch in circuit if patch not in universe]
    if outside:
        raise ToybookError(f"circuit components outside the universe: {outside}")
    unstated = [patch for patch in computed if patch not in circuit]
    if unstated:
        raise ToybookError(f"computed values for components not in the circuit: {unstated}")
    if tokens.shape[1:] != reference.shape[1:] or not len(tokens) or not len(reference):
        raise ToybookError(f"tokens {list(tokens.shape)} and reference {list(reference.shape)} "
                           "must be non-empty batches of the same sequence length")
    check_integer("loss_recovered", "n_random", n_random, minimum=0)


__all__ = ["RANDOM_CIRCUITS", "SHUFFLED_VALUES", "Computed", "Faithfulness", "Groups", "Hypothesis", "Stated", "faithfulness_claim",
           "head", "held_out_inputs", "loss_recovered", "measure_hypotheses", "mlp", "recovered", "recovered_fraction"]
