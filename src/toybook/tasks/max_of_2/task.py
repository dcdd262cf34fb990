"""``max_of_2``: output the larger of two values; trained on 408 pairs, tested on all 4096."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from toybook._lazy import lazy
from toybook.task import Slot, Task

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

N_VALUES = 64
EQUALS = 64


@dataclass(frozen=True)
class MaxOf2Task(Task):
    """``a b =`` with a, b in 0..63 and ``=`` = 64; the answer max(a, b) is predicted at
    the last position (``logits[:, -1]``). Worked example: ``5 17 =`` → tokens
    ``5 17 64``, answer 17.

    The default training set is every pair with ``|a - b|`` in ``train_gaps``
    (408 of the 4096 pairs for {0, 1, 2, 17}); the test set is all 4096 pairs.
    """

    train_gaps: tuple[int, ...] = (0, 1, 2, 17)

    name: ClassVar[str] = "max_of_2"
    order: ClassVar[int] = 3
    description: ClassVar[str] = "max(a, b) for a, b in 0..63, trained on 408 of 4096 pairs"

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_gaps", tuple(int(g) for g in self.train_gaps))

    @property
    def slots(self) -> tuple[Slot, ...]:
        return (Slot("a", range(N_VALUES)), Slot("b", range(N_VALUES)), Slot.fixed("=", EQUALS))

    @property
    def d_vocab_out(self) -> int:
        return N_VALUES

    @property
    def answer_positions(self) -> slice:
        return slice(2, 3)

    @property
    def answer_names(self) -> tuple[str, ...]:
        return ("max",)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.encode(torch.randint(0, N_VALUES, (n, 2), generator=generator))

    def encode(self, pairs: Tensor) -> Tensor:
        """Sequences ``[B, 3]`` from pairs ``[B, 2]``."""
        pairs = torch.as_tensor(pairs).long().reshape(-1, 2)
        return torch.cat([pairs, torch.full((len(pairs), 1), EQUALS)], dim=1)

    def all_inputs(self) -> Tensor:
        """All 4096 sequences, in the order a = 0..63 (rows) × b = 0..63 (columns)."""
        a, b = torch.meshgrid(torch.arange(N_VALUES), torch.arange(N_VALUES), indexing="ij")
        return self.encode(torch.stack([a.flatten(), b.flatten()], dim=1))

    @property
    def n_inputs(self) -> int:
        return N_VALUES * N_VALUES

    def inputs(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Pairs of ranks ``start..stop-1`` in :meth:`all_inputs` order (rank a * 64 + b)."""
        stop = self.check_rank_range(start, stop)
        return self.all_inputs()[start:stop]

    def train_data(self) -> Tensor:
        everything = self.all_inputs()
        gap = (everything[:, 0] - everything[:, 1]).abs()
        return everything[torch.isin(gap, torch.tensor(self.train_gaps))]

    def eval_data(self, n: int = 4096, seed: int = 12345) -> Tensor:
        """The test set is every pair (``n`` and ``seed`` are ignored)."""
        return self.all_inputs()

    def targets(self, tokens: Tensor) -> Tensor:
        return tokens[:, :2].max(1, keepdim=True).values
