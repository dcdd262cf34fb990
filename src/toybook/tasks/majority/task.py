"""``majority``: at every position, the most frequent value so far."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from toybook._lazy import lazy
from toybook.task import Slot, Task

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

N_VALUES = 10
SEQ_LEN = 128


@dataclass(frozen=True)
class MajorityTask(Task):
    """A sequence of 128 values in 0..9; the label at position i is the most frequent value
    in ``tokens[0..i]`` inclusive, ties broken toward the smallest value.

    Worked example (first five positions): tokens ``3 1 1 3 0`` → labels ``3 1 1 1 1``
    (at position 0 only 3 has been seen; at position 1 the tie 3/1 goes to 1; at position
    3 the tie 1/3 goes to 1). Every position is an answer position: the loss averages
    over all 128.
    """

    name: ClassVar[str] = "majority"
    order: ClassVar[int] = 2
    description: ClassVar[str] = "running majority of 128 values in 0..9 (ties → smallest)"

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(Slot(f"t{i}", range(N_VALUES)) for i in range(SEQ_LEN))

    @property
    def d_vocab_out(self) -> int:
        return N_VALUES

    @property
    def answer_positions(self) -> slice:
        return slice(0, SEQ_LEN)

    @property
    def answer_names(self) -> tuple[str, ...]:
        return tuple(f"t{i}" for i in range(SEQ_LEN))

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randint(0, N_VALUES, (n, SEQ_LEN), generator=generator)

    def running_counts(self, tokens: Tensor) -> Tensor:
        """``[B, T, 10]``: how often each value occurs in ``tokens[:, :i+1]``."""
        return torch.nn.functional.one_hot(tokens, N_VALUES).cumsum(1)

    def targets(self, tokens: Tensor) -> Tensor:
        # argmax returns the first maximal index: ties go to the smallest value
        return self.running_counts(tokens).argmax(-1)

    def margin(self, tokens: Tensor) -> Tensor:
        """``[B, T]``: top count minus second count at each position (0 = a tie)."""
        top2 = self.running_counts(tokens).topk(2, dim=-1).values
        return top2[..., 0] - top2[..., 1]


def single_lowest(counts: Tensor) -> Tensor:
    """``[...]``: the value with the lowest count in running counts ``[..., V]`` where only one
    value has it, else -1."""
    lowest = counts == counts.min(-1, keepdim=True).values
    return torch.where(lowest.sum(-1) == 1, counts.argmin(-1), -1)
