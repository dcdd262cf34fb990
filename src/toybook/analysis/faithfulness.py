"""Faithfulness as causal scrubbing scores it: one number per reading, on one scale per model.

A model's **universe** is every component that can reach an answer logit: each head and MLP
at each position from which the later layers can carry its output to an answer position
(:func:`universe`, from the architecture and the task's answer positions; the direct path
from the embeddings is never scrubbed). A **reading** (:class:`Reading`) says, for each
component it keeps, either that it is kept whole or the feature of the input its output
depends on (:class:`Feature`: a function of the tokens the component can see). An MLP is
read as a function of stated features, or by its parts: groups of its neurons
(``hook_post``), each kept or scrubbed by a feature, the others resampled.

The scrub runs the model on the measured inputs with

- every universe component the reading does not keep *resampled*: its activation taken from
  a run on a random reference input (the same reference row for every such component);
- every scrubbed component's activation taken from a run on a reference input that agrees
  with this input on the stated feature, in which the components the reading says feed it
  are scrubbed in turn, relative to that input (causal scrubbing's tree: a stated component
  is tested with what the reading says reaches it, not with a clean run);
- every component kept whole computed as usual (on whatever the patched earlier layers give).

The fraction of loss recovered (Chan et al. 2022; Wang et al. 2022; Conmy et al. 2023) is::

    F = (L_scrubbed - L_reading) / (L_scrubbed - L_model)

``L_scrubbed`` is the loss with every universe component resampled: one number per model and
input set, shared by every reading and every baseline, so readings of one model compare.
Keeping every component whole gives exactly 1 (it is the model); keeping none exactly 0.

Stages, each a function (tracr's ``compiling.py`` is the model): :func:`universe`;
:func:`plan` (a reading resolved against the universe into one source per atom);
:class:`Scrubber` (the runs a plan's sources come from, made once per model and input set,
and :meth:`Scrubber.loss` of any plan, one patched forward pass); :func:`faithfulness`
(the reading's F, its random baseline, minimality and completeness).

Shapes: B measured inputs, R reference inputs, T ``n_ctx``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from toybook.analysis.patching import Patch, head, mlp, neurons
from toybook.config_checks import check_integer
from toybook.errors import ToybookError, UnknownModelError
from toybook.evaluation import activations
from toybook.model import check_model_fits, cpu_copy
from toybook.task import Task

Key = Callable[[Tensor], Tensor]  # tokens [B, T] -> [B, ...]: two inputs agree where rows are equal
Draw = Callable[[Tensor, torch.Generator], Tensor]  # tokens [B, T] -> [B, T], each row an input that agrees

WHOLE, RESAMPLED = "whole", "resampled"
N_RANDOM = 20  # random readings drawn for a baseline
N_SUBSETS = 20  # random subsets drawn for completeness


@dataclass(frozen=True, eq=False)
class Feature:
    """What a component's output is read as depending on: ``key`` of the tokens. The scrub
    gives the component its activation on another input with the same key: one drawn from
    the reference inputs, or made by ``draw`` where a key is too fine for any finite set of
    references to hold a match (a histogram: the same tokens in another order). Components
    given one ``Feature`` object are read as one node (say a layer's heads and MLP at one
    position): they take their outputs from one run on one agreeing input."""

    name: str
    key: Key
    draw: Draw | None = None


@dataclass(frozen=True)
class Part:
    """One entry of a reading: ``component`` kept whole (``feature`` None) or scrubbed by
    ``feature``. ``group`` names what minimality removes together (say a head at every
    position); by default the part alone."""

    component: Patch
    feature: Feature | None = None
    group: str | None = None

    @property
    def label(self) -> str:
        return self.group or describe(self.component)


@dataclass(frozen=True)
class Reading:
    """A chapter's reading of one model as data: which components it keeps and, for each,
    whole or the feature its output depends on. Components of the universe it does not name
    are resampled."""

    name: str
    text: str  # the reading in one sentence
    parts: tuple[Part, ...]
    headline: bool = False
    n_inputs: int = 500  # held-out inputs it is measured on
    n_reference: int = 4000  # reference inputs drawn from for resampling and matching keys


def whole(*components: Patch, group: str | None = None) -> tuple[Part, ...]:
    """Parts kept whole."""
    return tuple(Part(component, None, group) for component in components)


def describe(component: Patch) -> str:
    """``L0H2@11``, ``MLP1@12``, ``MLP0@40[17 neurons]``: a component as the tables name it."""
    layer = component.hook.split(".")[1]
    where = "" if component.positions is None else "@" + ",".join(map(str, component.positions))
    if component.hook.endswith("attn.hook_z"):
        heads = "" if component.heads is None else ",".join(map(str, component.heads))
        return f"L{layer}H{heads}{where}"
    if component.hook.endswith("mlp.hook_post"):
        return f"MLP{layer}{where}[{len(component.heads or ())} neurons]"
    return f"MLP{layer}{where}"


# ---- stage 1: the universe ----------------------------------------------------------

def universe(model: nn.Module, task: Task) -> tuple[Patch, ...]:
    """Every component whose output can reach an answer logit: in the last layer, each head
    and the MLP at each answer position; in earlier layers, at every position up to the last
    answer position (a later layer's attention can carry it there)."""
    cfg = model.cfg
    answers = range(task.n_ctx)[task.answer_positions]
    components: list[Patch] = []
    for layer in range(cfg.n_layers):
        positions = answers if layer == cfg.n_layers - 1 else range(max(answers) + 1)
        components += [head(layer, p, h) for p in positions for h in range(cfg.n_heads)]
        if not getattr(cfg, "attn_only", False):
            components += [mlp(layer, p) for p in positions]
    return tuple(components)


# ---- stage 2: a reading resolved into one source per atom ------------------------------

Source = str | Feature  # WHOLE, RESAMPLED or the feature a scrub matches on
Plan = dict[Patch, Source]  # atom -> where its activation comes from


def _owner(part: Patch) -> Patch:
    """The universe component a neuron group belongs to (its MLP at that position)."""
    if part.hook.endswith("mlp.hook_post"):
        return mlp(int(part.hook.split(".")[1]), part.positions[0])
    return part


def plan(parts: Sequence[Part], components: Sequence[Patch], d_mlp: int) -> Plan:
    """Each atom of the universe with its source. An atom is a universe component, or, for
    an MLP read by its parts, each neuron group of it and the group of its other neurons
    (resampled). A reading naming a component outside the universe, one twice, or a neuron
    twice is an error."""
    inside = set(components)
    chosen: Plan = {}
    split: dict[Patch, set[int]] = {}
    for part in parts:
        owner = _owner(part.component)
        if owner not in inside:
            raise ToybookError(f"{describe(part.component)} cannot reach an answer logit (it "
                               f"is not in the universe of {len(components)} components)")
        if part.component in chosen or owner in (chosen if owner != part.component else split):
            raise ToybookError(f"the reading names {describe(part.component)} twice")
        if owner != part.component:
            if part.component.positions is None or len(part.component.positions) != 1:
                raise ToybookError("a neuron group is read at one position")
            taken = split.setdefault(owner, set())
            if taken & set(part.component.heads):
                raise ToybookError(f"{describe(part.component)} shares neurons with another part")
            taken |= set(part.component.heads)
        chosen[part.component] = WHOLE if part.feature is None else part.feature
    result: Plan = {}
    for component in components:
        if component in split:
            result.update({p: s for p, s in chosen.items() if _owner(p) == component and p != component})
            rest = [n for n in range(d_mlp) if n not in split[component]]
            if rest:
                result[neurons(int(component.hook.split(".")[1]), component.positions[0], rest)] = RESAMPLED
        else:
            result[component] = chosen.get(component, RESAMPLED)
    return result


def removed(full: Plan, atoms: Sequence[Patch]) -> Plan:
    """``full`` with ``atoms`` resampled (taken out of the reading)."""
    return {atom: RESAMPLED if atom in atoms else source for atom, source in full.items()}


# ---- stage 3: the runs every source comes from, and the loss of any plan --------------

@dataclass
class Scrubber:
    """The runs one model's scrubs draw on for ``tokens`` (measured) and ``reference``: the
    resampled run (reference row ``rows[i]`` for input ``i``), a second independent one
    (the random baseline's scrubbed components) and one run per feature on inputs that agree
    with each measured input on it. :meth:`loss` of any plan is one patched forward pass."""

    model: nn.Module
    task: Task
    tokens: Tensor
    reference: Tensor
    seed: int = 0
    _generator: torch.Generator = field(init=False, repr=False)
    _runs: dict[tuple, Tensor] = field(init=False, repr=False, default_factory=dict)
    _drawn: dict[tuple, Tensor] = field(init=False, repr=False, default_factory=dict)
    unmatched: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.tokens.shape[1:] != self.reference.shape[1:] or not len(self.tokens) or len(self.reference) < 2:
            raise ToybookError(f"tokens {list(self.tokens.shape)} and reference "
                               f"{list(self.reference.shape)} must be batches of one sequence "
                               "length, the reference at least 2 inputs")
        self._generator = torch.Generator().manual_seed(self.seed)
        self.loss_model = self.task.token_losses(self.model(self.tokens), self.tokens)
        self.resampled = _LazyRun(self.model, self._random_rows())
        self.second = _LazyRun(self.model, self._random_rows())

    def _random_rows(self) -> Tensor:
        return self.reference[torch.randint(0, len(self.reference), (len(self.tokens),),
                                            generator=self._generator)]

    def scrubbed(self, atoms: Plan) -> dict[Patch, Tensor]:
        """Each feature-scrubbed atom's activation ``[B, ...]`` (at its index), as causal
        scrubbing computes it: from a run on inputs that agree with each measured input on
        the feature, in which the plan's atoms upstream of it are scrubbed in turn, relative
        to those inputs (resampled ones from the random run; scrubbed ones from inputs that
        agree with *those* inputs on their feature, and so on). A stated component is thus
        tested with what the reading says feeds it, not with a clean run."""
        return {atom: self._value(atom, source, atoms, self.tokens, ())
                for atom, source in atoms.items() if isinstance(source, Feature)}

    def _value(self, atom: Patch, feature: Feature, atoms: Plan, base: Tensor, path: tuple) -> Tensor:
        tokens = self._agreeing_to(feature, base, path)
        upstream = self._upstream(atom, atoms, feature)
        signature = (path, id(feature), atom, frozenset(
            (a, source if isinstance(source, str) else id(source)) for a, source in upstream.items()))
        if signature not in self._runs:
            inner = (*path, (id(feature), atom))
            values = {a: self.resampled[a.hook][a.index] if source == RESAMPLED
                      else self._value(a, source, atoms, tokens, inner) for a, source in upstream.items()}
            # atoms scrubbed by the same feature with nothing scrubbed upstream share one run
            alike = [a for a, source in atoms.items() if source is feature and not self._upstream(a, atoms, feature)] \
                if not upstream else [atom]
            for a, value in self._captured(tokens, values, alike).items():
                self._runs[(path, id(feature), a, frozenset())] = value
            if upstream:
                self._runs[signature] = self._runs.pop((path, id(feature), atom, frozenset()))
        return self._runs[signature]

    @staticmethod
    def _upstream(atom: Patch, atoms: Plan, feature: Feature) -> Plan:
        """The scrubbed or resampled atoms that feed ``atom``, but for those scrubbed by the
        same :class:`Feature`: components that share one feature object are one node of the
        tree, computed together in one run on one agreeing input."""
        return {a: source for a, source in atoms.items()
                if source != WHOLE and source is not feature and _feeds(a, atom)}

    def _agreeing_to(self, feature: Feature, base: Tensor, path: tuple) -> Tensor:
        """Inputs agreeing with ``base`` on ``feature``, drawn once per place in the tree."""
        key = (path, id(feature))
        if key not in self._drawn:
            self._drawn[key] = self._agreeing(feature, base, record=not path)
        return self._drawn[key]

    def _captured(self, tokens: Tensor, values: Mapping[Patch, Tensor], wanted: Sequence[Patch]) -> dict[Patch, Tensor]:
        """Each atom of ``wanted`` (its entries) in a run on ``tokens`` with ``values``
        written at their atoms, the run cut after the last block it needs."""
        with self.model.hooks(fwd_hooks=_patching_hooks(values, self.resampled)):
            run = activations(self.model, tokens, sorted({atom.hook for atom in wanted}))
        return {atom: run[atom.hook][atom.index] for atom in wanted}

    def _agreeing(self, feature: Feature, base: Tensor, record: bool = True) -> Tensor:
        mine = _rows(feature.key(base))
        if feature.draw is not None:
            source = feature.draw(base, self._generator)
            if not torch.equal(_rows(feature.key(source)), mine):
                raise ToybookError(f"feature {feature.name!r}: its draw gives inputs that do not "
                                   "agree on its key")
            return source
        keys, inverse = torch.unique(torch.cat([mine, _rows(feature.key(self.reference))]),
                                     dim=0, return_inverse=True)
        ours, theirs = inverse[: len(mine)], inverse[len(mine):]
        order = torch.argsort(theirs, stable=True)
        counts = torch.bincount(theirs, minlength=len(keys))
        starts = torch.cumsum(counts, 0) - counts
        pick = (torch.rand(len(ours), generator=self._generator) * counts[ours]).long()
        found = counts[ours] > 0
        source = base.clone()
        source[found] = self.reference[order[(starts[ours] + pick)[found]]]
        if record:
            self.unmatched[feature.name] = 1 - found.double().mean().item()
        return source

    def loss(self, atoms: Plan, second: Sequence[Patch] = ()) -> Tensor:
        """Loss per answer ``[B, A]`` with each atom from its source; atoms in ``second``
        (resampled ones) from the second random run instead of the first."""
        scrubbed = self.scrubbed(atoms)
        values = {atom: scrubbed[atom] if atom in scrubbed
                  else (self.second if atom in second else self.resampled)[atom.hook][atom.index]
                  for atom, source in atoms.items() if source != WHOLE}
        if not values:
            return self.loss_model
        logits = self.model.run_with_hooks(self.tokens, fwd_hooks=_patching_hooks(values, self.resampled))
        return self.task.token_losses(logits, self.tokens)


class _LazyRun:
    """The activations of one run of ``model`` on ``tokens``, computed hook by hook as they
    are first asked for (``run[hook]``): a scrub needs only the hooks its plans patch, and a
    run of every hook of a large model would hold far more."""

    def __init__(self, model: nn.Module, tokens: Tensor) -> None:
        self.model, self.tokens, self._cache = model, tokens, {}

    def __getitem__(self, hook: str) -> Tensor:
        if hook not in self._cache:
            self._cache.update(activations(self.model, self.tokens, [hook]))
        return self._cache[hook]


def _layer(atom: Patch) -> int:
    return int(atom.hook.split(".")[1])


def _feeds(a: Patch, b: Patch) -> bool:
    """Whether atom ``a``'s output can reach atom ``b`` (both at one position): an earlier
    layer at ``b``'s position or before, or an attention head feeding its own layer's MLP."""
    if _layer(a) < _layer(b):
        return a.positions[0] <= b.positions[0]
    return (_layer(a) == _layer(b) and a.hook.endswith("attn.hook_z")
            and not b.hook.endswith("attn.hook_z") and a.positions == b.positions)


def _patching_hooks(values: Mapping[Patch, Tensor], like: Mapping[str, Tensor]) -> list:
    """One forward hook per activation writing ``values`` (atom → its entries ``[B, ...]``)
    over the run's own; ``like`` gives each activation's shape."""
    full: dict[str, Tensor] = {}
    masks: dict[str, Tensor] = {}
    for atom, value in values.items():
        if atom.hook not in full:
            full[atom.hook] = torch.zeros_like(like[atom.hook])
            shape = full[atom.hook].shape[1:-1] if atom.hook.endswith("hook_z") else full[atom.hook].shape[1:]
            masks[atom.hook] = torch.zeros(shape, dtype=torch.bool)
        full[atom.hook][atom.index] = value
        masks[atom.hook][atom.index[1:]] = True
    return [(name, _where_hook(masks[name], full[name])) for name in full]


def _rows(key: Tensor) -> Tensor:
    return key.reshape(len(key), -1).long()


def _where_hook(mask: Tensor, values: Tensor):
    """A forward hook giving ``values`` where ``mask`` (over the activation's non-batch
    dimensions, or all but the last for per-head ``hook_z``) is set, the run's own elsewhere."""
    while mask.ndim < values.ndim - 1:
        mask = mask[..., None]

    def hook(activation: Tensor, hook=None) -> Tensor:
        return torch.where(mask.to(activation.device), values.to(activation.dtype), activation)

    return hook


# ---- stage 4: the numbers --------------------------------------------------------------

@dataclass(frozen=True)
class Faithfulness:
    """One reading of one model, as a causal-scrubbing review reads it."""

    reading: str
    headline: bool
    recovered: float  # F
    n_whole: int  # universe components kept whole
    n_scrubbed: int  # universe components (or MLPs read by parts) scrubbed by a stated feature
    n_universe: int
    random: tuple[float, ...]  # F of random readings of the same shape, one per draw
    mlp_parts: int  # MLPs (at a position) read by neuron groups or scrubbed by a feature
    drops: Mapping[str, float]  # group -> F lost when it is taken out
    completeness: tuple[tuple[float, float], ...]  # (F(reading \ K), F(model \ K)) per draw
    loss_model: float
    loss_scrubbed: float
    loss_reading: float
    unmatched: float = 0.0  # share of scrubbed activations no reference input matched
    by_group: Mapping[str, float] = field(default_factory=dict)  # F over each group of answers

    @property
    def random_mean(self) -> float:
        return sum(self.random) / len(self.random) if self.random else float("nan")

    @property
    def random_p95(self) -> float:
        return float(torch.tensor(self.random).quantile(0.95)) if self.random else float("nan")

    @property
    def min_component_drop(self) -> float:
        return min(self.drops.values()) if self.drops else float("nan")

    @property
    def inessential(self) -> tuple[str, ...]:
        """Groups whose removal costs less than 0.01 of F."""
        return tuple(name for name, drop in self.drops.items() if drop < 0.01)

    @property
    def completeness_gap(self) -> float:
        """The largest ``|F(reading \\ K) - F(model \\ K)|`` over the random subsets K."""
        return max((abs(a - b) for a, b in self.completeness), default=float("nan"))

    @property
    def weakest(self) -> str:
        """The group whose removal costs least."""
        return min(self.drops, key=self.drops.get) if self.drops else ""

    def row(self) -> dict:
        """The fields :func:`toybook.faithfulness_report` returns (with ``weakest``,
        ``inessential`` and ``by_group`` besides)."""
        return {"reading": self.reading, "headline": self.headline, "recovered": self.recovered,
                "n_whole": self.n_whole, "n_scrubbed": self.n_scrubbed, "n_universe": self.n_universe,
                "random_mean": self.random_mean, "random_p95": self.random_p95,
                "mlp_parts": self.mlp_parts, "min_component_drop": self.min_component_drop,
                "completeness_gap": self.completeness_gap, "weakest": self.weakest,
                "inessential": list(self.inessential), "by_group": dict(self.by_group)}


def fraction(loss_scrubbed: float, loss_model: float, loss_reading: float) -> float:
    """``(L_scrubbed - L_reading) / (L_scrubbed - L_model)``; NaN where scrubbing the whole
    universe does not change the loss."""
    if abs(loss_scrubbed - loss_model) <= 1e-12 * max(abs(loss_scrubbed), abs(loss_model), 1e-300):
        return float("nan")
    return (loss_scrubbed - loss_reading) / (loss_scrubbed - loss_model)


def held_out_inputs(task: Task, n: int = 500, n_reference: int = 4000) -> tuple[Tensor, Tensor]:
    """``(tokens, reference)``: ``n`` inputs to measure on and ``n_reference`` others to
    resample from, from seeds no chapter uses to choose components (10_001 and 10_002)."""
    return task.generate(n, seed=10_001), task.generate(n_reference, seed=10_002)


def scrubber(model: nn.Module, task: Task, reading: Reading, seed: int = 0) -> Scrubber:
    """The :class:`Scrubber` of ``model`` on ``reading``'s held-out inputs."""
    return Scrubber(model, task, *held_out_inputs(task, reading.n_inputs, reading.n_reference), seed)


@torch.no_grad()
def faithfulness(model: nn.Module, task: Task, reading: Reading, n_random: int = N_RANDOM,
                 n_subsets: int = N_SUBSETS, seed: int = 0, scrub: Scrubber | None = None,
                 groups: Callable[[Tensor], Mapping[str, Tensor]] | None = None,
                 minimality: bool = True) -> Faithfulness:
    """``reading``'s F on ``model``; F of ``n_random`` random readings of its shape (as many
    components kept whole and as many scrubbed, chosen at random, the scrubbed ones from an
    input that agrees with a random other input on their key: that is, a random input, drawn
    from the second resampled run); the drop in F when each group of its parts is taken out
    (minimality); and, over ``n_subsets`` random subsets K of its groups, F of the reading
    and of the whole model with K taken out (completeness, Wang et al. 2022). ``groups``
    (tokens → name → bool ``[B, A]`` over the answers) adds F per group of answers, from the
    same runs. ``minimality=False`` leaves the drops out (the claims do not read them)."""
    check_integer("faithfulness", "n_random", n_random, minimum=0)
    check_integer("faithfulness", "n_subsets", n_subsets, minimum=0)
    check_model_fits(f"the reading {reading.name!r}", model, task)
    scrub = scrub or scrubber(model, task, reading, seed)
    components = universe(model, task)
    atoms = plan(reading.parts, components, model.cfg.d_mlp)
    scale = _Scale(scrub, components)
    kept = {_owner(atom) for atom, source in atoms.items() if source != RESAMPLED}
    split = {_owner(atom) for atom in atoms if _owner(atom) != atom}
    n_whole = sum(1 for component in kept if atoms.get(component) == WHOLE)
    generator = torch.Generator().manual_seed(seed + 1)
    reading_losses = scrub.loss(atoms)
    masks = groups(scrub.tokens) if groups else {}
    return Faithfulness(
        reading.name, reading.headline, scale.of(reading_losses), n_whole, len(kept) - n_whole,
        len(components), _random_readings(scale, components, len(kept), n_whole, n_random, generator),
        sum(1 for c in kept if c.hook.endswith("hook_mlp_out") and (c in split or isinstance(atoms.get(c), Feature))),
        _minimality(scale, reading, atoms, scale.of(reading_losses)) if minimality else {},
        _completeness(scale, reading, atoms, model.cfg.d_mlp, n_subsets, generator),
        scale.loss_model.mean().item(), scale.loss_scrubbed.mean().item(), reading_losses.mean().item(),
        max(scrub.unmatched.values(), default=0.0),
        {name: scale.of(reading_losses, mask) for name, mask in masks.items()})


@dataclass
class _Scale:
    """The fixed scale of one model and input set: F of any plan's losses, overall or over a
    group of answers."""

    scrub: Scrubber
    components: Sequence[Patch]

    def __post_init__(self) -> None:
        self.loss_model = self.scrub.loss_model
        self.loss_scrubbed = self.scrub.loss({c: RESAMPLED for c in self.components})

    def of(self, losses: Tensor, mask: Tensor | None = None) -> float:
        pick = (lambda t: t.mean().item()) if mask is None else (lambda t: t[mask].mean().item())  # noqa: E731
        return fraction(pick(self.loss_scrubbed), pick(self.loss_model), pick(losses))

    def plan(self, atoms: Plan, second: Sequence[Patch] = ()) -> float:
        return self.of(self.scrub.loss(atoms, second))


def _random_readings(scale: _Scale, components: Sequence[Patch], size: int, n_whole: int,
                     n_random: int, generator: torch.Generator) -> tuple[float, ...]:
    """F of ``n_random`` readings of ``size`` random universe components, ``n_whole`` of them
    whole and the others scrubbed with their key shuffled (from the second random run)."""
    values = []
    for _ in range(n_random):
        chosen = [components[i] for i in torch.randperm(len(components), generator=generator)[:size]]
        draw = {c: RESAMPLED for c in components} | {c: WHOLE for c in chosen[:n_whole]}
        values.append(scale.plan(draw, second=chosen[n_whole:]))
    return tuple(values)


def _groups(reading: Reading) -> dict[str, list[Patch]]:
    groups: dict[str, list[Patch]] = {}
    for part in reading.parts:
        groups.setdefault(part.label, []).append(part.component)
    return groups


def _minimality(scale: _Scale, reading: Reading, atoms: Plan, recovered: float) -> dict[str, float]:
    """Group → F lost when the group's parts are resampled."""
    return {name: recovered - scale.plan(removed(atoms, members)) for name, members in _groups(reading).items()}


def _completeness(scale: _Scale, reading: Reading, atoms: Plan, d_mlp: int, n_subsets: int,
                  generator: torch.Generator) -> tuple[tuple[float, float], ...]:
    """``(F(reading \\ K), F(model \\ K))`` for ``n_subsets`` random subsets K of the groups
    (each group in K with probability 1/2; never empty)."""
    groups = _groups(reading)
    names = list(groups)
    everything = {c: WHOLE for c in scale.components}
    pairs = []
    for _ in range(n_subsets):
        subset = [name for name in names if torch.rand((), generator=generator) < 0.5] or [names[0]]
        taken = [c for name in subset for c in groups[name]]
        pairs.append((scale.plan(removed(atoms, taken)), scale.plan(_model_without(everything, taken, d_mlp))))
    return tuple(pairs)


def _model_without(everything: Plan, taken: Sequence[Patch], d_mlp: int) -> Plan:
    """The whole model with ``taken`` resampled: a neuron group taken out of an MLP leaves
    the MLP's other neurons whole."""
    result = dict(everything)
    cut: dict[Patch, set[int]] = {}
    for part in taken:
        owner = _owner(part)
        if part == owner:
            result[owner] = RESAMPLED
        else:
            cut.setdefault(owner, set()).update(part.heads)
    for owner, gone in cut.items():
        del result[owner]
        layer, position = int(owner.hook.split(".")[1]), owner.positions[0]
        result[neurons(layer, position, sorted(gone))] = RESAMPLED
        rest = [n for n in range(d_mlp) if n not in gone]
        if rest:
            result[neurons(layer, position, rest)] = WHOLE
    return result


def nothing_and_everything(model: nn.Module, task: Task, scrub: Scrubber) -> tuple[float, float]:
    """F of resampling every universe component and of keeping every one whole: the ends of
    the scale, 0 and 1 by construction (the tests hold every shipped model to them)."""
    components = universe(model, task)
    loss_model = scrub.loss_model.mean().item()
    loss_scrubbed = scrub.loss({c: RESAMPLED for c in components}).mean().item()
    every = scrub.loss({c: WHOLE for c in components}).mean().item()
    return fraction(loss_scrubbed, loss_model, loss_scrubbed), fraction(loss_scrubbed, loss_model, every)


def model_readings(name: str, model: nn.Module | None = None) -> tuple[nn.Module, Task, tuple[Reading, ...]]:
    """``(model, task, readings)`` for a task or shipped model ``name`` (a seed ``NAME_sN``
    is read as its preset is), the shipped model where ``model`` is None."""
    from toybook import registry  # noqa: PLC0415 (the registry imports the task folders, which import this)
    from toybook.zoo import load_model  # noqa: PLC0415

    preset = re.sub(r"_s\d+$", "", name) if isinstance(name, str) else None
    table = registry.readings()
    if preset not in table:
        raise UnknownModelError(f"no readings for {name!r}; readings exist for: {', '.join(table)} "
                                "(and their seed models, NAME_sN)")
    task = registry.get_preset(preset).task
    if model is None:
        model = load_model(name)
    check_model_fits(f"faithfulness_report({name!r})", model, task, registry.get_preset(preset).model)
    return model, task, tuple(table[preset](model))


@torch.no_grad()
def faithfulness_report(name: str, model: nn.Module | None = None, n_random: int = N_RANDOM,
                        n_subsets: int = N_SUBSETS,
                        groups: Callable[[Tensor], Mapping[str, Tensor]] | None = None) -> list[dict]:
    """One row per reading of the chapter of ``name`` (a task, or a shipped model's name),
    on ``model`` (the shipped one by default), then ``everything`` (every universe component
    kept whole: 1) and ``nothing`` (every one resampled: 0). Each row: ``reading``,
    ``headline``, ``recovered``, ``n_whole``, ``n_scrubbed``, ``n_universe``,
    ``random_mean``, ``random_p95``, ``mlp_parts``, ``min_component_drop`` and
    ``completeness_gap`` (see :class:`Faithfulness`); ``groups`` as :func:`faithfulness`
    takes them (by default the task folder's ``hypotheses.ANSWER_GROUPS``, if any), F per
    group in ``by_group``."""
    from toybook import registry  # noqa: PLC0415

    model, task, readings = model_readings(name, model)
    model = cpu_copy(model)
    groups = groups or getattr(registry.task_part(task.name, "hypotheses"), "ANSWER_GROUPS", None)
    scrubbers: dict[tuple[int, int], Scrubber] = {}
    rows = []
    for reading in readings:
        size = (reading.n_inputs, reading.n_reference)
        if size not in scrubbers:
            scrubbers[size] = scrubber(model, task, reading)
        rows.append(faithfulness(model, task, reading, n_random, n_subsets, scrub=scrubbers[size],
                                 groups=groups).row())
    headline = next((r for r in readings if r.headline), readings[0])
    nothing, everything = nothing_and_everything(
        model, task, scrubbers[headline.n_inputs, headline.n_reference])
    size = len(universe(model, task))
    nan = float("nan")
    for label, value, kept in (("everything", everything, size), ("nothing", nothing, 0)):
        rows.append({"reading": label, "headline": False, "recovered": value, "n_whole": kept,
                     "n_scrubbed": 0, "n_universe": size, "random_mean": nan, "random_p95": nan,
                     "mlp_parts": 0, "min_component_drop": nan, "completeness_gap": nan,
                     "weakest": "", "inessential": [], "by_group": {}})
    return rows


def record_path() -> Path:
    """Where every shipped model's report is recorded (next to the checkpoints)."""
    from toybook.zoo import SHIPPED_DIR  # noqa: PLC0415 (the zoo loads models, which this module need not)

    return SHIPPED_DIR / "records" / "faithfulness.json"


def record_reports(names: Sequence[str], path: Path | None = None, log: Callable[[str], None] = print) -> None:
    """Measure :func:`faithfulness_report` for each shipped model in ``names`` and write them,
    with the environment they were measured in, to ``path`` (:func:`record_path`), keeping
    the rows recorded there for other models: the chapters read their seeds' rows from it
    and recompute their shipped models'."""
    from toybook.environment import current_environment  # noqa: PLC0415

    path = path or record_path()
    reports = recorded_reports(path) if path.exists() else {}
    for name in names:
        started = time.perf_counter()
        reports[name] = faithfulness_report(name)
        log(f"{name}: {time.perf_counter() - started:.1f} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"environment": current_environment(), "reports": reports}, indent=1) + "\n")


def recorded_reports(path: Path | None = None) -> dict[str, list[dict]]:
    """Shipped model name → its recorded :func:`faithfulness_report` rows."""
    path = path or record_path()
    if not path.exists():
        raise ToybookError(f"no faithfulness record at {path}; scripts/record_faithfulness.py writes it")
    return json.loads(path.read_text())["reports"]


__all__ = ["N_RANDOM", "N_SUBSETS", "Feature", "Faithfulness", "Part", "Reading", "Scrubber", "describe", "faithfulness",
           "faithfulness_report", "fraction", "held_out_inputs", "model_readings", "record_path",
           "record_reports", "recorded_reports",
           "nothing_and_everything", "plan", "removed", "scrubber", "universe", "whole"]
