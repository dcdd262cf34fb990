"""Experiments on the list-update circuit: the sources layer 1 reads, patching pairs, ablations.

The positions are the task's token format: ``BOS a0 a1 a2 NL idx elt NL b0 b1 b2`` at
0..10; the answer ``b_k`` is predicted at position ``7 + k``.

Shapes: B batch, A = 3 answer positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from toybook.analysis.ablation import (
    mean_activation, resample_order, resampled_activation, run_with_ablations,
)
from toybook.analysis.patching import Patch, recovered_fraction, run_with_patches, source_cache
from toybook.errors import ToybookError
from toybook.tasks.list_update.task import LIST_LEN, N_VALUES, ListUpdateTask

IDX_POS, ELT_POS, NL_POS = 5, 6, 7
QUERY_POS = (7, 8, 9)  # where b0, b1, b2 are predicted
PATCH_HOOKS = (
    "blocks.0.hook_resid_pre", "blocks.0.hook_attn_out",
    "blocks.1.hook_resid_pre", "blocks.1.hook_attn_out",
)
PATCH_LABELS = ("embeddings", "L0 head output", "residual before L1", "L1 head output")


def elt_source(k: int) -> int:
    """Where layer 1 finds ``elt`` when predicting ``b_k``: the elt token itself for b0 and
    b1, the second ``NL`` (which layer 0 fills with elt) for b2."""
    return ELT_POS if k < LIST_LEN - 1 else NL_POS


def hypothesised_sources(tokens: Tensor) -> Tensor:
    """``[B, 3]``: the position layer 1 should read for each answer: ``a_k`` (position
    ``1 + k``) where ``idx != k``, else :func:`elt_source` ``(k)``."""
    idx = tokens[:, IDX_POS]
    return torch.stack(
        [torch.where(idx == k, elt_source(k), 1 + k) for k in range(LIST_LEN)], dim=1
    )


def reference_sources(tokens: Tensor) -> Tensor:
    """``[B, 3]``: the published reading of the reference (shortformer) model: layer 1 copies
    ``elt`` itself (position 6) for every updated answer, ``a_k`` for a kept one."""
    idx = tokens[:, IDX_POS]
    return torch.stack([torch.where(idx == k, ELT_POS, 1 + k) for k in range(LIST_LEN)], dim=1)


@torch.no_grad()
def b2_route(model: torch.nn.Module, tokens: Tensor) -> int:
    """Where layer 1 reads an updated ``b2`` in ``model``: :data:`NL_POS` (this chapter's
    reading: the second ``NL``, which layer 0 fills with elt) or :data:`ELT_POS` (the
    reference's: elt itself), whichever holds more of that attention on ``tokens``. Seeds
    differ here; both routes give exact models."""
    _, cache = model.run_with_cache(tokens, names_filter="blocks.1.attn.hook_pattern")
    updated_b2 = tokens[:, IDX_POS] == LIST_LEN - 1
    pattern = cache["blocks.1.attn.hook_pattern"][updated_b2, 0, QUERY_POS[-1]]
    return ELT_POS if pattern[:, ELT_POS].mean() > pattern[:, NL_POS].mean() else NL_POS


def own_sources(model: torch.nn.Module, tokens: Tensor) -> Tensor:
    """``[B, 3]``: the sources of :func:`hypothesised_sources`, with an updated ``b2`` read
    where ``model`` reads it (:func:`b2_route`)."""
    if b2_route(model, tokens) == ELT_POS:
        return reference_sources(tokens)
    return hypothesised_sources(tokens)


@torch.no_grad()
def architecture_readings(
    model: torch.nn.Module, task: ListUpdateTask, tokens: Tensor
) -> dict[str, float]:
    """The numbers that tell this chapter's reading and the reference's apart, on ``tokens``:
    where each layer attends, and accuracy with layer 1 forced onto either reading's sources.
    Attention weights are means over the inputs where the reading applies."""
    from toybook.analysis.interventions import run_with_hard_attention

    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    l0, l1 = (cache[f"blocks.{layer}.attn.hook_pattern"][:, 0] for layer in range(2))  # [B, Q, K]
    idx = tokens[:, IDX_POS]
    updated_b2 = idx == LIST_LEN - 1
    updated = [idx == k for k in range(LIST_LEN - 1)]  # b0, b1

    def forced(sources: Tensor) -> float:
        logits = run_with_hard_attention(model, tokens, QUERY_POS, sources, layer=1)
        return task.correct(logits, tokens).double().mean().item()

    return {
        "L0 at elt (6) → idx (5)": l0[:, ELT_POS, IDX_POS].mean().item(),
        "L0 at the second NL (7) → elt (6)": l0[:, NL_POS, ELT_POS].mean().item(),
        "L1 for updated b0, b1 → elt (6)": torch.cat(
            [l1[rows, QUERY_POS[k], ELT_POS] for k, rows in enumerate(updated)]).mean().item(),
        "L1 for updated b2 → elt (6)": l1[updated_b2, QUERY_POS[2], ELT_POS].mean().item(),
        "L1 for updated b2 → second NL (7)": l1[updated_b2, QUERY_POS[2], NL_POS].mean().item(),
        "accuracy, L1 forced onto this chapter's sources": forced(hypothesised_sources(tokens)),
        "accuracy, L1 forced onto the reference's sources": forced(reference_sources(tokens)),
    }


def swapped_sources(tokens: Tensor) -> Tensor:
    """``[B, 3]``: the opposite choice, ``elt`` where ``idx != k`` and ``a_k`` where ``idx == k``."""
    idx = tokens[:, IDX_POS]
    return torch.stack(
        [torch.where(idx == k, 1 + k, elt_source(k)) for k in range(LIST_LEN)], dim=1
    )


def accuracy_by_idx(correct: Tensor, tokens: Tensor) -> Tensor:
    """``[3 idx, 3 answers]`` accuracy of each answer position among inputs with each idx,
    from ``correct [N, 3]`` (``task.correct``) and ``tokens [N, T]``."""
    correct = correct.double()
    idx = tokens[:, IDX_POS]
    return torch.stack([correct[idx == value].mean(0) for value in range(LIST_LEN)])


def updated_and_kept_accuracy(task: ListUpdateTask, logits: Tensor, tokens: Tensor) -> Tensor:
    """``[2, 3]``: accuracy of ``b_k`` where it was updated (``idx == k``, row 0) and where
    it was kept (``idx != k``, row 1)."""
    correct = task.correct(logits, tokens).double()
    updated = tokens[:, IDX_POS, None] == torch.arange(LIST_LEN)
    return torch.stack([
        torch.stack([correct[updated[:, k], k].mean() for k in range(LIST_LEN)]),
        torch.stack([correct[~updated[:, k], k].mean() for k in range(LIST_LEN)]),
    ])


@torch.no_grad()
def ablation_effects(
    model: torch.nn.Module, task: ListUpdateTask, tokens: Tensor, seed: int = 0
) -> dict[str, Tensor]:
    """``{label: [2, 3]}`` updated/kept accuracy per answer (as in
    :func:`updated_and_kept_accuracy`) with each head's output zero-, mean- or
    resample-ablated, or the positional embeddings zero- or mean-ablated (labels such as
    ``"L0 head, resample-ablated"``). Head outputs are mean-ablated per position over
    ``tokens`` and resampled from the other rows of ``tokens``
    (:func:`~toybook.analysis.ablation.resampled_activation`, ``seed``); positional
    embeddings, the same in every row, are averaged over positions and not resampled."""
    effects = {"none": updated_and_kept_accuracy(task, model(tokens), tokens)}
    components = {
        "L0 head": ("blocks.0.hook_attn_out", (0,), ("zero", "mean", "resample")),
        "L1 head": ("blocks.1.hook_attn_out", (0,), ("zero", "mean", "resample")),
        "positional embeddings": ("hook_pos_embed", (0, 1), ("zero", "mean")),
    }
    for label, (hook_name, dims, kinds) in components.items():
        for how in kinds:
            replacement = ("zero" if how == "zero" else mean_activation(model, tokens, hook_name, dims)
                           if how == "mean" else resampled_activation(model, tokens, hook_name, seed))
            logits = run_with_ablations(model, tokens, {hook_name: replacement})
            effects[f"{label}, {how}-ablated"] = updated_and_kept_accuracy(task, logits, tokens)
    return effects


LIST_POS = (1, 2, 3)  # a0, a1, a2


@dataclass(frozen=True)
class DefaultRoute:
    """What each layer does when the other one is taken away (shapes ``[3]`` per answer
    b0..b2, ``[2, 3]`` updated/kept accuracy):

    - ``l1_on_list``: layer 1's attention from ``b_k``'s query onto ``a_k`` with layer 0
      mean-ablated: where layer 1 reads by default, without layer 0's information;
    - ``l1_on_elt``: the same onto ``elt``;
    - ``says_elt``, ``says_list``: the share of answers that are ``elt``, or ``a_k``,
      whatever ``idx``, with layer 1 zero-ablated: what layer 0 alone writes at the queries;
    - ``l0_on_elt``, ``l0_on_list``: layer 0's attention from each query onto ``elt``, or
      ``a_k`` (unablated);
    - ``resampled_list``: accuracy with layer 0's output resampled at the list positions
      a0..a2 only (what layer 1 copies along with the token);
    - ``donor_value``: there, the share of kept answers that are the *donor's* ``a_k`` (the
      input the resampled output came from): V-composition, layer 1 copying layer 0's
      output at ``a_k``; copying the token alone would give 1/50;
    - ``resampled_rest``: accuracy with layer 0's output resampled at every other position
      (where ``idx`` and ``elt`` are read);
    - ``follows_donor_idx``: there, the share of kept answers that are right exactly when
      the donor's ``idx`` is not ``k``: layer 1's choice following the ``idx`` that layer 0
      reports (Q/K-composition);
    - ``independent_agreement``: that share if being right had nothing to do with the
      donor's ``idx`` (``p q + (1 - p)(1 - q)`` from the two rates), the baseline.
    """

    l1_on_list: Tensor
    l1_on_elt: Tensor
    says_elt: Tensor
    says_list: Tensor
    l0_on_elt: Tensor
    l0_on_list: Tensor
    resampled_list: Tensor
    donor_value: Tensor
    resampled_rest: Tensor
    follows_donor_idx: Tensor
    independent_agreement: Tensor


@torch.no_grad()
def default_route(
    model: torch.nn.Module, task: ListUpdateTask, tokens: Tensor, seed: int = 0
) -> DefaultRoute:
    """The measurements of :class:`DefaultRoute` on ``tokens`` (resampling with ``seed``)."""
    hook0, pattern1 = "blocks.0.hook_attn_out", "blocks.1.attn.hook_pattern"
    mean0 = mean_activation(model, tokens, hook0)
    with model.hooks(fwd_hooks=[(hook0, lambda activation, hook: mean0.expand_as(activation))]):
        _, cache = model.run_with_cache(tokens, names_filter=pattern1)
    l1 = cache[pattern1][:, 0]
    queries = torch.tensor(QUERY_POS)
    logits = run_with_ablations(model, tokens, {"blocks.1.hook_attn_out": "zero"})
    alone = logits[:, queries].argmax(-1)
    says_elt = (alone == tokens[:, ELT_POS, None]).double().mean(0)
    says_list = (alone == tokens[:, 1:1 + LIST_LEN]).double().mean(0)
    _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    l0 = cache["blocks.0.attn.hook_pattern"][:, 0]
    donor = tokens[resample_order(len(tokens), seed).to(tokens.device)]
    kept = tokens[:, IDX_POS, None] != torch.arange(LIST_LEN)  # [B, 3]

    def resampled_at(positions) -> Tensor:
        return run_with_patches(model, tokens, [Patch(hook0, tuple(positions))], source=donor)

    def over_kept(values: Tensor) -> Tensor:  # [B, 3] -> [3], mean over each answer's kept rows
        return torch.stack([values[kept[:, k], k].double().mean() for k in range(LIST_LEN)])

    list_logits = resampled_at(list(LIST_POS))
    rest_logits = resampled_at([p for p in range(tokens.shape[1]) if p not in LIST_POS])
    donor_allows = donor[:, IDX_POS, None] != torch.arange(LIST_LEN)  # kept in the donor too
    right = task.correct(rest_logits, tokens)
    p, q = over_kept(right), over_kept(donor_allows)
    return DefaultRoute(
        l1_on_list=torch.stack([l1[:, q, 1 + k].mean() for k, q in enumerate(QUERY_POS)]),
        l1_on_elt=l1[:, queries, ELT_POS].mean(0),
        says_elt=says_elt,
        says_list=says_list,
        l0_on_elt=l0[:, queries, ELT_POS].mean(0),
        l0_on_list=torch.stack([l0[:, q, 1 + k].mean() for k, q in enumerate(QUERY_POS)]),
        resampled_list=updated_and_kept_accuracy(task, list_logits, tokens),
        donor_value=over_kept(list_logits[:, torch.tensor(QUERY_POS)].argmax(-1) == donor[:, 1:1 + LIST_LEN]),
        resampled_rest=updated_and_kept_accuracy(task, rest_logits, tokens),
        follows_donor_idx=over_kept(right == donor_allows),
        independent_agreement=p * q + (1 - p) * (1 - q),
    )


@dataclass(frozen=True)
class PatchingPair:
    """Clean and corrupted inputs that differ in one thing, and the answers that tells apart.

    ``varied`` is ``"idx"``, ``"elt"`` or ``"a_k"``; ``answer`` is the answer position ``k``
    whose correct value differs between the two runs.
    """

    varied: str
    answer: int
    clean: Tensor  # [B, 11]
    corrupted: Tensor  # [B, 11]
    clean_answer: Tensor  # [B] the clean run's b_k
    corrupted_answer: Tensor  # [B] the corrupted run's b_k

    @property
    def label(self) -> str:
        return f"{self.varied} → b{self.answer}"

    def metric(self, logits: Tensor) -> Tensor:
        """``[1]``: mean over rows of logit(clean b_k) − logit(corrupted b_k) at ``7 + k``."""
        at = logits[:, QUERY_POS[self.answer]]
        clean = at.gather(1, self.clean_answer[:, None])
        corrupted = at.gather(1, self.corrupted_answer[:, None])
        return (clean - corrupted).mean()[None]

    def clean_share(self, logits: Tensor) -> float:
        """The share of rows whose answer ``b_k`` (the argmax at ``7 + k``) is the clean one."""
        return (logits[:, QUERY_POS[self.answer]].argmax(-1) == self.clean_answer).double().mean().item()


def patching_pairs(task: ListUpdateTask, n: int = 500, seed: int = 0) -> list[PatchingPair]:
    """Nine pairs: for each answer ``b_k``, vary ``idx`` (idx = k vs another index), ``elt``
    (with idx = k) or ``a_k`` (with idx ≠ k); every row's two answers differ."""
    generator = torch.Generator().manual_seed(seed)

    def values(size: int) -> Tensor:
        return torch.randint(0, N_VALUES, size, generator=generator)

    def other_value(value: Tensor) -> Tensor:
        return (value + torch.randint(1, N_VALUES, value.shape, generator=generator)) % N_VALUES

    pairs = []
    for k in range(LIST_LEN):
        a, at_k = values((n, LIST_LEN)), torch.full((n,), k)
        not_k = (k + torch.randint(1, LIST_LEN, (n,), generator=generator)) % LIST_LEN
        elt = other_value(a[:, k])  # differs from a_k, so idx = k and idx != k disagree on b_k
        pairs.append(PatchingPair(
            "idx", k, task.encode(a, at_k, elt), task.encode(a, not_k, elt), elt, a[:, k]
        ))
        elt_clean = values((n,))
        elt_corrupted = other_value(elt_clean)
        pairs.append(PatchingPair(
            "elt", k, task.encode(a, at_k, elt_clean), task.encode(a, at_k, elt_corrupted),
            elt_clean, elt_corrupted,
        ))
        a_corrupted = a.clone()
        a_corrupted[:, k] = other_value(a[:, k])
        pairs.append(PatchingPair(
            "a_k", k, task.encode(a, not_k, elt), task.encode(a_corrupted, not_k, elt),
            a[:, k], a_corrupted[:, k],
        ))
    return pairs


COMPOSITION_PATHS = (("idx", "k"), ("idx", "q"), ("elt", "v"), ("a_k", "v"))
SENDERS = {  # sender: (its activation, what is held at its own value on the way)
    "L0": ("blocks.0.hook_attn_out", ()),
    "direct": ("hook_embed", ("blocks.0.hook_attn_out",)),
}


@torch.no_grad()
def path_effects(
    model: torch.nn.Module, pairs: list[PatchingPair], sender: str = "L0",
    donors: Tensor | None = None,
) -> tuple[dict[tuple[str, str, int], float], dict[tuple[str, str, int], float]]:
    """``(recovered, accuracy)``, each ``{(varied, receiver, k): value}``: path patching of the
    ``sender`` from the clean run into the corrupted one, reaching layer 1 only through its
    keys (``"k"``), queries (``"q"``) or values (``"v"``), for each of
    :data:`COMPOSITION_PATHS` and each answer ``b_k``. ``recovered`` is the fraction of the
    clean-vs-corrupted logit difference (:meth:`PatchingPair.metric`) that comes back,
    ``accuracy`` the share of rows that then give the clean answer
    (:meth:`PatchingPair.clean_share`; 0 unpatched). ``pairs`` come from :func:`patching_pairs`.

    Senders (:data:`SENDERS`): ``"L0"``, layer 0's output at every position (K-, Q- and
    V-composition, the last the L0 → L1 virtual head); ``"direct"``, the token embeddings
    with layer 0's output held at its corrupted value (the token's own path into layer 1).
    With ``donors`` ``[B, 11]``, the sender is taken from those inputs instead of each clean
    run: a baseline, what the path recovers carrying an unrelated input."""
    if sender not in SENDERS:
        raise ToybookError(f"sender is one of {', '.join(map(repr, SENDERS))}, got {sender!r}")
    hook, frozen = SENDERS[sender]
    recovered, accuracy = {}, {}
    for pair in pairs:
        if donors is not None and donors.shape != pair.clean.shape:
            raise ToybookError(f"donors {list(donors.shape)} must have the pairs' shape "
                               f"{list(pair.clean.shape)}")
        receivers = [r for varied, r in COMPOSITION_PATHS if varied == pair.varied]
        clean, corrupted = pair.metric(model(pair.clean)), pair.metric(model(pair.corrupted))
        cache = source_cache(model, pair.clean if donors is None else donors, [Patch(hook)])
        for receiver in receivers:
            logits = run_with_patches(model, pair.corrupted, [Patch(hook)], cache=cache,
                                      receivers=[Patch(f"blocks.1.attn.hook_{receiver}")],
                                      frozen=frozen)
            key = pair.varied, receiver, pair.answer
            recovered[key] = recovered_fraction(pair.metric(logits), clean, corrupted).item()
            accuracy[key] = pair.clean_share(logits)
    return recovered, accuracy


def composition_paths(
    model: torch.nn.Module, pairs: list[PatchingPair], sender: str = "L0",
    donors: Tensor | None = None,
) -> dict[tuple[str, str, int], float]:
    """``{(varied, receiver, k): recovered}``: the fractions of :func:`path_effects` alone."""
    return path_effects(model, pairs, sender, donors)[0]


RECEIVER_SETS = ("k", "q", "v", "kq", "kv", "qv", "kqv")


@torch.no_grad()
def idx_receiver_sets(
    model: torch.nn.Module, pairs: list[PatchingPair], sets: tuple[str, ...] = RECEIVER_SETS,
) -> dict[tuple[str, int], tuple[float, float]]:
    """``{(receivers, k): (recovered, clean share)}``: layer 0's output carried from the clean
    run of an ``idx`` pair into the corrupted one through a *set* of layer 1's inputs at once
    (``"kv"``: keys and values together), for each answer ``b_k``. Where one input alone
    brings back part of a change, this says whether the rest comes through another input or
    only through two together (:func:`path_effects` takes them one at a time)."""
    out = {}
    for pair in (p for p in pairs if p.varied == "idx"):
        clean, corrupted = pair.metric(model(pair.clean)), pair.metric(model(pair.corrupted))
        cache = source_cache(model, pair.clean, [Patch("blocks.0.hook_attn_out")])
        for receivers in sets:
            logits = run_with_patches(model, pair.corrupted, [Patch("blocks.0.hook_attn_out")], cache=cache,
                                      receivers=[Patch(f"blocks.1.attn.hook_{r}") for r in receivers])
            out[receivers, pair.answer] = (recovered_fraction(pair.metric(logits), clean, corrupted).item(),
                                           pair.clean_share(logits))
    return out
