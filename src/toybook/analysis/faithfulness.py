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
removing it; a value above 1 means the rest of the universe was hurting. The same number
for random circuits of the same size (from the same universe, ``n_random`` draws) is the
baseline it must be read against. Means and resampling sources come from ``reference``
inputs, never from the inputs measured, so components chosen on one set can be tested on
another.

Components are :class:`~toybook.analysis.patching.Patch` objects (a hook, positions, heads),
so every ablation here goes through :func:`~toybook.analysis.patching.run_with_patches`.

Shapes: B held-out inputs, R reference inputs, T ``n_ctx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from toybook.analysis.ablation import mean_activation
from toybook.analysis.patching import Patch, run_with_patches, source_cache
from toybook.config_checks import check_integer
from toybook.errors import ToybookError
from toybook.tasks.base import Task

Computed = Callable[[Tensor], Tensor]  # tokens [B, T] -> the activation [B, T, ...] a hypothesis states


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

    @property
    def random_mean(self) -> float:
        defined = [value for value in self.random if not math.isnan(value)]
        return sum(defined) / len(defined) if defined else float("nan")

    @property
    def n_random_defined(self) -> int:
        """Random draws whose removal changed the loss (the others have no fraction)."""
        return sum(not math.isnan(value) for value in self.random)

    def __str__(self) -> str:
        return (f"loss recovered {self.recovered:.3f} by {self.n_components} of "
                f"{self.n_universe} components (random circuits of that size: "
                f"{self.random_mean:.3f}, mean of the {self.n_random_defined} of "
                f"{len(self.random)} draws whose removal changes the loss); losses: model "
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
) -> Faithfulness:
    """The fraction of loss ``circuit`` recovers on ``tokens``, and its random baseline.

    ``circuit`` must be a subset of ``universe``; ``computed`` maps circuit components to
    functions of the tokens giving the activation the hypothesis says they hold (those
    components are then replaced by it in ``L_hypothesis``). Means and resampled rows come
    from ``reference`` (inputs not among ``tokens``). ``n_random`` random circuits of the
    same size, drawn from ``universe`` with ``seed``, give the baseline.
    """
    circuit, universe = list(circuit), list(universe)
    _check(circuit, universe, computed or {}, tokens, reference, n_random)
    means = _means(model, reference, universe)
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, len(reference), (len(tokens),), generator=generator)
    resampled = reference[rows]
    loss_model = task.loss(model(tokens), tokens).item()

    def measure(kept: list[Patch], stated: Mapping[Patch, Computed]) -> tuple[float, float, float]:
        ablated = _loss(model, task, tokens, kept, cache=means)
        rest = [patch for patch in universe if patch not in kept]
        hypothesis = _scrubbed_loss(model, task, tokens, rest, resampled, stated)
        return recovered_fraction(loss_model, ablated, hypothesis), ablated, hypothesis

    recovered, loss_ablated, loss_hypothesis = measure(circuit, computed or {})
    random = []
    for _ in range(n_random):
        chosen = torch.randperm(len(universe), generator=generator)[: len(circuit)]
        random.append(measure([universe[i] for i in sorted(chosen.tolist())], {})[0])
    return Faithfulness(recovered, loss_model, loss_ablated, loss_hypothesis, len(circuit),
                        len(universe), tuple(random))


def _loss(model, task, tokens, patches, cache) -> float:
    return task.loss(run_with_patches(model, tokens, patches, cache=cache), tokens).item()


def _scrubbed_loss(model, task, tokens, rest, resampled, stated) -> float:
    """Loss with ``rest`` taken from the ``resampled`` rows and each stated component
    replaced by its stated value, in one patched forward pass: the cache holds, per hook,
    the resampled activation with the stated entries written over it."""
    cache = dict(source_cache(model, resampled, rest).items()) if rest else {}
    for patch, function in stated.items():
        value = function(tokens)
        if patch.hook in cache:
            cache[patch.hook] = cache[patch.hook].clone()
            cache[patch.hook][patch.index] = value[patch.index].to(cache[patch.hook].dtype)
        else:
            cache[patch.hook] = value
    patches = [*rest, *stated]
    logits = run_with_patches(model, tokens, patches, cache=cache) if patches else model(tokens)
    return task.loss(logits, tokens).item()


def _means(model, reference: Tensor, universe: list[Patch]) -> dict[str, Tensor]:
    """Each universe hook's mean over the reference inputs, per position: ``[1, T, ...]``."""
    return {name: mean_activation(model, reference, name)
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


__all__ = ["Computed", "Faithfulness", "loss_recovered", "recovered_fraction"]
