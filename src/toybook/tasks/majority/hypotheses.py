"""The majority chapter's readings as data: the attention output is a linear function of the
running histogram (uniform attention averages the value vectors); and the whole algorithm,
in which the MLP then writes one fixed vector for the rule's answer (the most frequent
value, ties to the smaller)."""

from __future__ import annotations

from toybook._lazy import lazy
from toybook.analysis.faithfulness import Hypothesis, head, mlp
from toybook.tasks.majority.attention import running_histogram
from toybook.tasks.majority.presets import MAJORITY
from toybook.tasks.majority.task import MajorityTask

torch = lazy("torch")
Z = "blocks.0.attn.hook_z"
MLP_OUT = "blocks.0.hook_mlp_out"


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


def _linear_in_histogram(model, reference):
    """Both heads' outputs ≈ histogram @ A + b_position, fitted by least squares on the
    reference inputs."""
    heads = histogram_map(model, reference)
    return {head(0): lambda tokens: heads(running_histogram(MajorityTask(), tokens))}


def _the_rules_answer(model, reference):
    """Attention as in :data:`READING`; the MLP's output replaced by its mean, over the
    reference inputs, at the positions whose answer by the task's rule is the same:
    ``[V, D]``, one vector per answer (every position alike)."""
    task = MajorityTask()
    _, cache = model.run_with_cache(reference, names_filter=MLP_OUT)
    out = cache[MLP_OUT].double().flatten(0, 1)  # [R * T, D]
    answers = task.targets(reference).flatten()
    vectors = torch.stack([out[answers == v].mean(0) for v in range(task.d_vocab_out)])

    def stated(tokens):
        return vectors[task.targets(tokens)].to(cache[MLP_OUT].dtype)
    return {**_linear_in_histogram(model, reference), mlp(0): stated}


READING = Hypothesis(
    "reading", "both heads' outputs replaced by a linear function of the running histogram "
    "(one map for all positions, plus a constant per position)",
    circuit=(head(0),), universe=(head(0),), stated=_linear_in_histogram, n_inputs=128,
)

ALGORITHM = Hypothesis(
    "algorithm", "attention replaced as in the reading, and the MLP's output by one fixed "
    "vector per answer of the task's rule (the most frequent value so far, ties to the smaller)",
    circuit=(head(0), mlp(0)), universe=(head(0), mlp(0)), stated=_the_rules_answer, n_inputs=128,
)

HYPOTHESES = {MAJORITY.name: (READING, ALGORITHM)}
