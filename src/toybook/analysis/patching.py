"""Activation patching: copy activations from a run on other inputs into this run.

Clean and corrupted inputs differ in one thing (say, ``idx``). Patching the clean value
of one activation at one position into the corrupted run and measuring how far the
output moves back towards the clean answer says whether that activation, there, carries
the difference. One function does the patching, :func:`run_with_patches`; the rest are
thin variants of it:

- :func:`patching_grid`: every (activation, position) pair in turn, one metric each;
- :func:`patched_answers`: several named sets of patches from one source run, each
  reduced to answers (e.g. one position's argmax);
- path patching (``receivers=``): a sender's effect through chosen receivers only, e.g.
  one layer's output into the next layer's keys (K-composition).

A :class:`Patch` names an activation (a TransformerLens hook name), the positions to
copy (all where ``None``) and, for per-head activations such as ``hook_z`` and
``hook_pattern``, the heads (all where ``None``), or for an MLP's neurons (``hook_post``)
the neurons; :func:`head`, :func:`mlp` and :func:`neurons` name the usual ones.

Shapes: B batch, T ``n_ctx``, N hook names, M metric outputs, V ``d_vocab_out``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from toybook.analysis.ablation import overwrite_hook
from toybook.evaluation import activations, require_hooks
from toybook.errors import ToybookError

Metric = Callable[[Tensor], Tensor]  # logits [B, T, V] -> [M]


@dataclass(frozen=True)
class Patch:
    """Activation ``hook`` at ``positions`` (every position where ``None``), and only
    ``heads`` of a per-head activation (every head where ``None``), to be copied from the
    source run."""

    hook: str
    positions: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None

    @property
    def index(self) -> tuple:
        """The index of the patched entries in the activation ``[B, T, ...]``."""
        positions = None if self.positions is None else torch.tensor(self.positions)
        if self.heads is None:
            return (slice(None),) if positions is None else (slice(None), positions)
        heads = torch.tensor(self.heads)
        if positions is None:
            return (slice(None), slice(None), heads)
        return (slice(None), positions[:, None], heads[None, :])


def head(layer: int, position: int | None = None, head: int | None = None) -> Patch:
    """One head's output (``hook_z``) at one position, or all heads / all positions."""
    return Patch(f"blocks.{layer}.attn.hook_z", None if position is None else (position,),
                 None if head is None else (head,))


def mlp(layer: int, position: int | None = None) -> Patch:
    """One MLP's output at one position (every position where ``None``)."""
    return Patch(f"blocks.{layer}.hook_mlp_out", None if position is None else (position,))


def neurons(layer: int, position: int, indices: Sequence[int]) -> Patch:
    """Some of one MLP's neurons (``hook_post``, after the activation) at one position: a
    part of an MLP that a reading can scrub on its own."""
    return Patch(f"blocks.{layer}.mlp.hook_post", (position,), tuple(int(n) for n in indices))


@torch.no_grad()
def source_cache(model: torch.nn.Module, source: Tensor, patches: Sequence[Patch]):
    """The activations ``patches`` copy, from one run of ``model`` on ``source``: pass it to
    :func:`run_with_patches` as ``cache`` to patch many times from one source run."""
    cache = activations(model, source, sorted({patch.hook for patch in patches}))
    for patch in patches:
        _check_fits(patch, cache[patch.hook].shape)
    return cache


def _check_fits(patch: Patch, shape: torch.Size) -> None:
    """Refuse, by name, positions or heads that the activation ``[B, T, ...]`` does not have
    (an index past the end, or heads of an activation that is not per head)."""
    positions = () if patch.positions is None else patch.positions
    if not all(_is_index(p) and -shape[1] <= p < shape[1] for p in positions):
        raise ToybookError(f"{patch.hook!r} has positions 0..{shape[1] - 1}; got positions "
                           f"{patch.positions}")
    if patch.heads is not None and patch.hook.endswith("mlp.hook_post") and len(shape) == 3:
        if not all(_is_index(n) and 0 <= n < shape[2] for n in patch.heads):
            raise ToybookError(f"{patch.hook!r} has neurons 0..{shape[2] - 1}; got {patch.heads}")
    elif patch.heads is not None:
        if len(shape) != 4:
            raise ToybookError(f"heads= applies to a per-head activation [B, T, H, d] such as "
                               f"'blocks.0.attn.hook_z'; {patch.hook!r} is {list(shape)}")
        if not all(_is_index(h) and 0 <= h < shape[2] for h in patch.heads):
            raise ToybookError(f"{patch.hook!r} has heads 0..{shape[2] - 1}; got heads "
                               f"{patch.heads}")


@torch.no_grad()
def run_with_patches(
    model: torch.nn.Module, tokens: Tensor, patches: Sequence[Patch],
    source: Tensor | None = None, cache=None, receivers: Sequence[Patch] | None = None,
    frozen: Sequence[str] = (),
) -> Tensor:
    """Logits ``[B, T, V]`` of ``tokens`` with every activation in ``patches`` taken from the
    run on ``source`` (or from ``cache``, :func:`source_cache` of such a run): the one
    patching function every chapter uses.

    Path patching, where ``receivers`` is given: the patched activations (the senders) reach
    the output only through ``receivers``. A first run of ``tokens`` with the senders
    patched, and every activation named in ``frozen`` held at its value on ``tokens``, records
    the receivers; the result is the run of ``tokens`` with only the receivers patched from
    it. ``receivers=[Patch("blocks.1.attn.hook_v")]`` with L0's output as sender is the
    L0 → L1 V-composition path; ``hook_q`` and ``hook_k`` give Q- and K-composition.
    """
    if (source is None) == (cache is None):
        raise ToybookError("run_with_patches needs exactly one of source= (inputs) or cache= "
                           "(source_cache of a run)")
    if source is not None:
        if source.shape != tokens.shape:
            raise ToybookError(f"source {list(source.shape)} and tokens {list(tokens.shape)} "
                               "differ in shape; patching copies row by row")
        cache = source_cache(model, source, patches)
    hooks = []
    for patch in patches:
        if patch.hook not in cache:
            raise ToybookError(f"the source cache holds no activation {patch.hook!r}")
        _check_fits(patch, cache[patch.hook].shape)
        where = patch.index
        hooks.append((patch.hook, overwrite_hook(where, cache[patch.hook][where])))
    if receivers is None:
        if frozen:
            raise ToybookError("frozen= holds activations still on the path to receivers=; "
                               "give receivers too (path patching)")
        return model.run_with_hooks(tokens, fwd_hooks=hooks)
    clash = set(frozen) & {patch.hook for patch in [*patches, *receivers]}
    if clash:
        raise ToybookError(f"{sorted(clash)} cannot be both frozen and patched or received")
    if frozen:
        own = source_cache(model, tokens, [Patch(name) for name in frozen])
        hooks += [(name, overwrite_hook((slice(None),), own[name])) for name in frozen]
    with model.hooks(fwd_hooks=hooks):
        received = source_cache(model, tokens, receivers)
    return run_with_patches(model, tokens, receivers, cache=received)


@torch.no_grad()
def patching_grid(
    model: torch.nn.Module, clean: Tensor, corrupted: Tensor, hook_names: Sequence[str],
    metric: Metric,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(patched [N, T, M], clean [M], corrupted [M])`` values of ``metric``.

    ``patched[n, t]`` is the metric of the corrupted run with activation ``hook_names[n]``
    at position ``t`` taken from the clean run (all batch rows at once).
    """
    if clean.shape != corrupted.shape:
        raise ToybookError(f"clean {list(clean.shape)} and corrupted {list(corrupted.shape)} "
                           "differ in shape")
    if clean.ndim != 2:
        raise ToybookError(f"clean and corrupted are token batches [B, T]; got shape "
                           f"{list(clean.shape)} (one sequence is tokens[None])")
    require_hooks(model, hook_names)
    every = [Patch(name, (position,)) for name in hook_names for position in range(clean.shape[1])]
    cache = source_cache(model, clean, every)
    clean_metric = _metric_value(metric, model(clean))
    corrupted_metric = _metric_value(metric, model(corrupted))
    patched = torch.empty(len(hook_names), clean.shape[1], *clean_metric.shape)
    for i, patch in enumerate(every):
        n, position = divmod(i, clean.shape[1])
        patched[n, position] = metric(run_with_patches(model, corrupted, [patch], cache=cache))
    return patched, clean_metric, corrupted_metric


def _is_index(value) -> bool:
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _metric_value(metric: Metric, logits: Tensor) -> Tensor:
    value = metric(logits)
    if not isinstance(value, Tensor):
        raise ToybookError(f"metric must return a tensor (logits [B, T, V] → [M]), got "
                           f"{type(value).__name__}")
    return value


@torch.no_grad()
def patched_answers(
    model: torch.nn.Module, tokens: Tensor, source: Tensor,
    patch_sets: Mapping[str, Sequence[Patch]], answers: Callable[[Tensor], Tensor],
) -> dict[str, Tensor]:
    """``{label: answers(logits)}`` for each named set of patches copied from one run on
    ``source``; ``answers`` reduces logits ``[B, T, V]`` (e.g. to one position's argmax)."""
    cache = source_cache(model, source, [patch for patches in patch_sets.values() for patch in patches])
    return {label: answers(run_with_patches(model, tokens, patches, cache=cache))
            for label, patches in patch_sets.items()}


def recovered_fraction(patched: Tensor, clean: Tensor, corrupted: Tensor) -> Tensor:
    """``(patched - corrupted) / (clean - corrupted)``: 0 = no effect, 1 = fully clean."""
    return (patched - corrupted) / (clean - corrupted)


__all__ = ["Metric", "Patch", "head", "mlp", "neurons", "patched_answers", "patching_grid", "recovered_fraction",
           "run_with_patches", "source_cache"]
