"""The max-of-2 chapter's reading as data: the head at `=` puts its attention on the larger
operand and writes that operand's value vector."""

from __future__ import annotations

from toybook._lazy import lazy
from toybook.analysis.faithfulness import Hypothesis, head
from toybook.analysis.scrubbing import Feature, Part, Reading
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


# ---- readings as programs (toybook.analysis.scrubbing) ------------------------------------

def larger_operand(tokens):
    """``[B]``: the larger of the two operands (what the head at `=` is read as copying)."""
    return tokens[:, :2].max(1).values


def larger_slot(tokens):
    """``[B]``: which slot holds the larger operand (0 or 1; ties read as 0)."""
    return tokens[:, :2].argmax(1)


def readings(model=None) -> tuple[Reading, ...]:
    """The chapter's reading, the head at `=` scrubbed by the larger operand, and a coarser
    one that must fail: scrubbed by which slot holds it (the value then comes from another
    input)."""
    at_equals = head(0, 2, 0)
    return (
        Reading("copies_the_larger", "the head at `=` writes what depends only on the larger "
                "operand's value", (Part(at_equals, Feature("the larger operand", larger_operand)),),
                headline=True),
        Reading("which_slot", "the head at `=` writes what depends only on which slot holds the "
                "larger operand", (Part(at_equals, Feature("the larger slot", larger_slot)),)),
    )


READINGS = {MAX_OF_2.name: readings}
