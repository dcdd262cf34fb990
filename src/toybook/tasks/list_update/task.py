"""``list_update``: copy a list of three values, with one entry replaced (``a[idx] = elt``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from toybook._lazy import lazy
from toybook.errors import ToybookError
from toybook.task import Slot, Task

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

LIST_LEN = 3
N_VALUES = 50
BOS = 50
NL = 51


@dataclass(frozen=True)
class ListUpdateTask(Task):
    """``BOS a0 a1 a2 NL idx elt NL b0 b1 b2`` with ``b = a`` except ``b[idx] = elt``.

    Values are 0..49, ``BOS`` = 50, ``NL`` = 51, ``idx`` in {0, 1, 2}. Worked example:
    a = [17, 3, 42], idx = 1, elt = 8 → tokens ``50 17 3 42 51 1 8 51 17 8 42``. The
    answers b0, b1, b2 (positions 8–10) are predicted at positions 7, 8, 9
    (``logits[:, -4:-1]``).

    ``idx_elt_per_batch`` changes training data only: each training batch draws one
    ``idx`` and one ``elt`` that all its rows share (the reference's generator), where
    the default draws them per row. Evaluation and analysis inputs are always per row.
    """

    idx_elt_per_batch: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.idx_elt_per_batch, bool):
            raise ToybookError(
                f"list_update: idx_elt_per_batch must be True or False, got {self.idx_elt_per_batch!r}"
            )

    name: ClassVar[str] = "list_update"
    order: ClassVar[int] = 0
    description: ClassVar[str] = "a[idx] = elt on a list of 3 values in 0..49"
    group_slot: ClassVar[str] = "idx"
    shared_prefix: ClassVar[int] = 5  # BOS a0 a1 a2 NL: the same for every (idx, elt)
    prefix_run: ClassVar[int] = LIST_LEN * N_VALUES

    @property
    def slots(self) -> tuple[Slot, ...]:
        values = range(N_VALUES)
        return (
            Slot.fixed("BOS", BOS),
            *(Slot(f"a{i}", values) for i in range(LIST_LEN)),
            Slot.fixed("nl_0", NL),
            Slot("idx", range(LIST_LEN)),
            Slot("elt", values),
            Slot.fixed("nl_1", NL),
            *(Slot(f"b{i}", values) for i in range(LIST_LEN)),
        )

    @property
    def d_vocab_out(self) -> int:
        return N_VALUES

    @property
    def answer_positions(self) -> slice:
        return slice(7, 10)

    @property
    def answer_names(self) -> tuple[str, ...]:
        return tuple(f"b{i}" for i in range(LIST_LEN))

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        a = torch.randint(0, N_VALUES, (n, LIST_LEN), generator=generator)
        idx = torch.randint(0, LIST_LEN, (n,), generator=generator)
        elt = torch.randint(0, N_VALUES, (n,), generator=generator)
        return self.encode(a, idx, elt)

    def train_batch(self, n: int, generator: torch.Generator) -> Tensor:
        if not self.idx_elt_per_batch:
            return self._sample(n, generator)
        a = torch.randint(0, N_VALUES, (n, LIST_LEN), generator=generator)
        idx = torch.randint(0, LIST_LEN, (1,), generator=generator).expand(n)
        elt = torch.randint(0, N_VALUES, (1,), generator=generator).expand(n)
        return self.encode(a, idx, elt)

    @property
    def n_inputs(self) -> int:
        """Size of the whole input space: 50³ lists × 3 indices × 50 values = 18,750,000."""
        return N_VALUES**LIST_LEN * LIST_LEN * N_VALUES

    def inputs(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Sequences ``[stop - start, 11]`` of ranks ``start..stop-1`` of the input space.

        Rank r reads (a0, a1, a2, idx, elt) in mixed radix (50, 50, 50, 3, 50), ``elt``
        fastest, so any range of ranks is one contiguous slice of the enumeration and the
        whole space is ``inputs(0, n_inputs)``.
        """
        stop = self.check_rank_range(start, stop)
        self.check_request(f"{self.name}.inputs", stop - start)
        rank = torch.arange(start, stop, dtype=torch.long)
        digits = []
        for radix in (N_VALUES, LIST_LEN, N_VALUES, N_VALUES, N_VALUES):
            digits.append(rank % radix)
            rank = rank // radix
        elt, idx, a2, a1, a0 = digits
        return self.encode(torch.stack([a0, a1, a2], dim=1), idx, elt)

    def rank(self, tokens: Tensor) -> Tensor:
        """The inverse of :meth:`inputs`: ranks ``[B]`` of sequences ``[B, 11]``."""
        rank = torch.zeros(len(tokens), dtype=torch.long, device=tokens.device)
        radices = {1: N_VALUES, 2: N_VALUES, 3: N_VALUES, 5: LIST_LEN, 6: N_VALUES}
        for position, radix in radices.items():
            rank = rank * radix + tokens[:, position]
        return rank

    def encode(self, a: Tensor, idx: Tensor, elt: Tensor) -> Tensor:
        """Sequences ``[B, 11]`` from lists ``a [B, 3]``, indices ``idx [B]``, values ``elt [B]``."""
        b = a.clone()
        b[torch.arange(len(a)), idx] = elt
        column = torch.full((len(a), 1), 0, dtype=torch.long)
        return torch.cat(
            [column + BOS, a, column + NL, idx[:, None], elt[:, None], column + NL, b], dim=1
        ).long()

    def targets(self, tokens: Tensor) -> Tensor:
        a, idx, elt = tokens[:, 1:4], tokens[:, 5], tokens[:, 6]
        b = a.clone()
        b[torch.arange(len(tokens), device=tokens.device), idx] = elt
        return b
