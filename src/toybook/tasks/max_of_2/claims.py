"""The max-of-2 chapter's claims: QK reads the larger token, OV copies it, the bound."""

from __future__ import annotations

import torch

from toybook.claims import Claim, accuracy
from toybook.tasks.max_of_2.presets import MAX_OF_2
from toybook.tasks.max_of_2.task import EQUALS, MaxOf2Task


def max_of_2_claims() -> tuple[Claim, ...]:
    from toybook.analysis import (
        one_layer_circuits, run_with_hard_attention, run_without_attention_output,
    )
    from toybook.analysis.faithfulness import faithfulness_claim
    from toybook.tasks.max_of_2.bound import max_of_2_bound
    from toybook.tasks.max_of_2.hypotheses import READING

    task = MaxOf2Task()
    inputs = task.all_inputs()
    larger = inputs[:, :2].argmax(1)

    def qk_monotone(model):
        qk = one_layer_circuits(model, EQUALS, 2).qk_token[:64]
        return (qk[1:] > qk[:-1]).double().mean().item()

    def ov_copies(model):
        ov = one_layer_circuits(model, EQUALS, 2).ov_token[:64]
        return (ov.argmax(1) == torch.arange(64)).double().mean().item()

    return (
        Claim("qk_monotone", "the QK score at `=` grows with the key token (fraction of "
              "token steps where it grows)", qk_monotone, 1.0, 1.0),
        Claim("ov_copies", "the OV circuit copies the attended token (fraction of tokens "
              "whose OV row peaks on themselves)", ov_copies, 1.0, 1.0),
        Claim("attend_to_max", "attention forced onto the larger token: accuracy",
              lambda m: accuracy(task, run_with_hard_attention(m, inputs, 2, larger), inputs),
              1.0, 1.0),
        Claim("no_ov_path", "attention output removed: accuracy",
              lambda m: accuracy(task, run_without_attention_output(m, inputs), inputs),
              0.0, 0.05),
        Claim("bound", "the weights-only bound certifies this fraction of inputs",
              lambda m: max_of_2_bound(m).accuracy_bound, 0.99, 1.0),
        faithfulness_claim(READING, task),
    )


CLAIMS = {MAX_OF_2.name: max_of_2_claims}
