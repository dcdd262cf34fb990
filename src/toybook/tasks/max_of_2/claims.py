"""The max-of-2 chapter's claims: QK reads the larger token, OV copies it, the bound."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from toybook.analysis import one_layer_circuits, run_with_hard_attention, run_without_attention_output
from toybook.claims import Claim, accuracy, scrubbing_claims
from toybook.tasks.max_of_2.bound import max_of_2_bound
from toybook.tasks.max_of_2.presets import MAX_OF_2
from toybook.tasks.max_of_2.task import EQUALS, N_VALUES, MaxOf2Task

TASK = MaxOf2Task()


def qk_monotone(model: nn.Module) -> float:
    """Share of token steps where the QK score at ``=`` grows with the key token."""
    qk = one_layer_circuits(model, EQUALS, 2).qk_token[:N_VALUES]
    return (qk[1:] > qk[:-1]).double().mean().item()


def ov_copies(model: nn.Module) -> float:
    """Share of tokens whose OV row peaks on themselves."""
    ov = one_layer_circuits(model, EQUALS, 2).ov_token[:N_VALUES]
    return (ov.argmax(1) == torch.arange(N_VALUES)).double().mean().item()


def attending_to_larger(model: nn.Module, task: MaxOf2Task) -> float:
    """Accuracy on every input with the attention at ``=`` forced onto the larger token."""
    inputs = task.all_inputs()
    return accuracy(task, run_with_hard_attention(model, inputs, 2, inputs[:, :2].argmax(1)), inputs)


def without_attention_output(model: nn.Module, task: MaxOf2Task) -> float:
    """Accuracy on every input with the attention's output removed."""
    inputs = task.all_inputs()
    return accuracy(task, run_without_attention_output(model, inputs), inputs)


def certified(model: nn.Module) -> float:
    """The share of inputs the weights-only bound certifies."""
    return max_of_2_bound(model).accuracy_bound


CLAIMS = {MAX_OF_2.name: (
    Claim("qk_monotone", "the QK score at `=` grows with the key token (fraction of "
          "token steps where it grows)", qk_monotone, 1.0, 1.0),
    Claim("ov_copies", "the OV circuit copies the attended token (fraction of tokens "
          "whose OV row peaks on themselves)", ov_copies, 1.0, 1.0),
    Claim("attend_to_max", "attention forced onto the larger token: accuracy",
          partial(attending_to_larger, task=TASK), 1.0, 1.0),
    Claim("no_ov_path", "attention output removed: accuracy",
          partial(without_attention_output, task=TASK), 0.0, 0.05),
    Claim("bound", "the weights-only bound certifies this fraction of inputs", certified, 0.99, 1.0),
)}

# The reading as a program, causal-scrubbed (toybook.analysis.faithfulness).
CLAIMS[MAX_OF_2.name] += scrubbing_claims(MAX_OF_2.name, "copies_the_larger")
