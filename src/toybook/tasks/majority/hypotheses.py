"""The majority chapter's readings as programs: both heads' outputs depend only on the counts
so far (uniform attention averages the value vectors), and the MLP decides by its value and
minority neurons, computed from them. Also the least-squares map from the running histogram
to the heads' outputs, which the chapter feeds synthetic histograms through."""

from __future__ import annotations

from functools import partial

from toybook._lazy import lazy
from toybook.analysis.patching import head, neurons
from toybook.analysis.faithfulness import Feature, Part, Reading
from toybook.claims import Inputs
from toybook.tasks.majority.attention import running_histogram
from toybook.tasks.majority.presets import MAJORITY
from toybook.tasks.majority.neurons import minority_neurons, value_neurons
from toybook.tasks.majority.task import SEQ_LEN, MajorityTask

torch = lazy("torch")
Z = "blocks.0.attn.hook_z"


def _features(tokens):
    histogram = running_histogram(MajorityTask(), tokens)  # [B, T, V]
    positions = torch.eye(tokens.shape[1], dtype=torch.double).expand(len(tokens), -1, -1)
    return torch.cat([histogram, positions], -1)  # [B, T, V + T]


def histogram_map(model, reference):
    """``histogram [B, T, V] → both heads' outputs [B, T, H, d_head]``: the least-squares fit
    ``histogram @ A + b_position`` on the reference inputs. It takes any histogram, so
    synthetic ones can be fed through it into the MLP."""
    _, cache = model.run_with_cache(reference, names_filter=Z)
    z = cache[Z]  # [R, T, H, d_head]
    features = _features(reference)
    fit = torch.linalg.lstsq(features.reshape(-1, features.shape[-1]),
                             z.double().reshape(-1, z.shape[2] * z.shape[3])).solution

    def heads(histogram):
        positions = torch.eye(histogram.shape[1], dtype=torch.double).expand(len(histogram), -1, -1)
        features = torch.cat([histogram.double(), positions], -1)
        return (features @ fit).reshape(len(histogram), *z.shape[1:]).to(z.dtype)
    return heads


# ---- readings as programs (toybook.analysis.faithfulness) ------------------------------------

NEURONS_CHOSEN_ON = Inputs(600, seed=7)  # not the inputs the score is measured on
PER_VALUE = 5  # each value's top neurons, and each value's top minority neurons


def counts_so_far(tokens, position: int):
    """``[B, V]``: the running histogram at ``position`` (what a component there can see)."""
    return torch.nn.functional.one_hot(tokens[:, : position + 1], MajorityTask().d_vocab_out).sum(1)


def reordered_prefix(tokens, generator, position: int):
    """``tokens`` with ``tokens[:, :position + 1]`` shuffled in each row: an input with the
    same counts so far (no finite reference set holds one for a long prefix)."""
    order = torch.rand(len(tokens), position + 1, generator=generator).argsort(1)
    result = tokens.clone()
    result[:, : position + 1] = tokens[:, : position + 1].gather(1, order)
    return result


def counts_reading(name: str, text: str, groups: dict[str, list[int]], headline: bool = False) -> Reading:
    """Both heads at every position scrubbed by the counts so far there, and at every
    position the MLP's neurons ``groups`` (name → neuron indices) computed as usual from
    them; the MLP's other neurons resampled."""
    parts = []
    for position in range(SEQ_LEN):
        counts = Feature("the counts so far", partial(counts_so_far, position=position),
                         partial(reordered_prefix, position=position))
        parts += [Part(head(0, position, h), counts, group=f"L0H{h}") for h in range(2)]
        parts += [Part(neurons(0, position, chosen), group=group) for group, chosen in groups.items()]
    return Reading(name, text, tuple(parts), headline, n_inputs=64, n_reference=512)


def readings(model) -> tuple[Reading, ...]:
    """The headline: attention as the counts, and the MLP as its value neurons (each value's
    top :data:`PER_VALUE` by how well they separate "v is the majority", chosen on
    :data:`NEURONS_CHOSEN_ON`) with the minority neurons (each value's top by "v is the single
    least frequent"); and the same with as many neurons drawn at random (the baseline of the
    neuron choice)."""
    task = MajorityTask()
    probe = NEURONS_CHOSEN_ON.of(task)
    value = sorted(set(value_neurons(model, task, probe, k=PER_VALUE).flatten().tolist()))
    minority = sorted(set(minority_neurons(model, task, probe, k=PER_VALUE).flatten().tolist()) - set(value))
    n_neurons = model.cfg.d_mlp
    drawn = torch.randperm(n_neurons, generator=torch.Generator().manual_seed(0))[: len(value) + len(minority)]
    return (
        counts_reading("counts_and_vote", "both heads depend only on the counts so far; the MLP "
                       f"is its value and minority neurons ({len(value) + len(minority)} of "
                       f"{n_neurons}), computed from them", {"value neurons": value,
                                                             "minority neurons": minority}, True),
        counts_reading("counts_and_random_neurons", "as the headline, with as many MLP neurons "
                       "drawn at random", {"random neurons": sorted(drawn.tolist())}),
    )


READINGS = {MAJORITY.name: readings}
