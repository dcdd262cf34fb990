"""The max-of-2 chapter's reading as data: the head at `=` puts its attention on the larger
operand and writes that operand's value vector."""

from __future__ import annotations

from toybook._lazy import lazy
from toybook.analysis.faithfulness import Hypothesis, head
from toybook.tasks.max_of_2.presets import MAX_OF_2

torch = lazy("torch")


def _copy_the_larger(model, reference):
    def z(tokens):
        _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_v")
        v = cache["blocks.0.attn.hook_v"]  # [B, T, 1, d_head]
        larger = tokens[:, :2].argmax(1)
        out = torch.zeros_like(v)
        out[:, 2] = v[torch.arange(len(tokens)), larger]
        return out
    return {head(0, 2): z}


READING = Hypothesis(
    "reading", "the head at `=` attends only to the larger operand and writes its value",
    circuit=(head(0, 2),), universe=tuple(head(0, p) for p in range(3)),
    stated=_copy_the_larger,
)

HYPOTHESES = {MAX_OF_2.name: (READING,)}
