"""``addition``: n-digit integer addition, one answer digit per token, with sub-task labels.

The sub-task taxonomy follows Quirke & Barez, *Understanding Addition in Transformers*.
Columns are indexed from the units: column ``j`` holds digits ``x_j`` and ``y_j``
(``x = sum x_j 10^j``); answer digit ``A_j`` is digit ``j`` of ``x + y`` and ``A_n`` is
the final carry. Per column:

- **BA** (base add): ``(x_j + y_j) % 10``;
- **MC1** (makes carry 1): ``x_j + y_j >= 10``;
- **MS9** (makes sum 9): ``x_j + y_j == 9``;
- **UC1** (uses carry 1): the column receives a carry, ``carry_in_j = 1``;
- **US9** (uses sum 9): MS9 and receives a carry, so the carry cascades through it.

A question is **BA** if no column makes a carry, **MC1** if some carry but no US9
column, **SimpleUS9** if US9 columns occur but never two adjacent, **CascadeUS9** if
two or more adjacent columns are US9 (e.g. 00555 + 00445, 44445 + 55555).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar

from toybook._lazy import lazy
from toybook.errors import ToybookError
from toybook.task import Slot, Task

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

PLUS = 10
MINUS = 11
EQUALS = 12


class QuestionClass(IntEnum):
    BA = 0
    MC1 = 1
    SimpleUS9 = 2
    CascadeUS9 = 3


class DigitSubtask(IntEnum):
    """What answer digit ``A_j`` needs beyond base add: nothing, a carry, a cascaded carry."""

    BA = 0
    UC1 = 1
    US9 = 2


@dataclass(frozen=True)
class SubTasks:
    """Per-column labels ``[B, n]`` (column 0 = units) of a batch of questions."""

    BA: Tensor  # int64, (x_j + y_j) % 10
    MC1: Tensor  # bool
    MS9: Tensor  # bool
    UC1: Tensor  # bool, the column receives a carry
    US9: Tensor  # bool, MS9 and receives a carry


@dataclass(frozen=True)
class AdditionTask(Task):
    """``x_{n-1} .. x_0 + y_{n-1} .. y_0 = A_n .. A_0`` (most significant digit first).

    Digits are tokens 0..9, ``+`` = 10, ``-`` = 11, ``=`` = 12; n_ctx = 3n + 3. Worked
    example, n = 5: 12345 + 67890 = 080235 → tokens
    ``1 2 3 4 5 10 6 7 8 9 0 12 0 8 0 2 3 5``. The n + 1 answer digits (positions
    2n + 2 ..) are predicted at positions 2n + 1 .. 3n + 1 (``logits[:, -(n+2):-1]``).
    Training batches can be enriched with sum-9 columns: with probability
    ``enrich_batch_prob`` a batch has each digit pair forced to sum to 9 with probability
    ``enrich_pair_prob``.
    """

    n_digits: int = 5
    enrich_batch_prob: float = 0.0
    enrich_pair_prob: float = 0.4

    name: ClassVar[str] = "addition"
    order: ClassVar[int] = 1
    description: ClassVar[str] = "n-digit addition (default n = 5), one answer digit per token"

    def __post_init__(self) -> None:
        if not 2 <= self.n_digits <= 10:
            raise ToybookError(f"addition supports n_digits 2..10, got {self.n_digits}")
        for field in ("enrich_batch_prob", "enrich_pair_prob"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ToybookError(f"addition: {field} must be in [0, 1]")

    @property
    def slots(self) -> tuple[Slot, ...]:
        n, digit = self.n_digits, range(10)
        return (
            *(Slot(f"x{j}", digit) for j in reversed(range(n))),
            Slot.fixed("+", PLUS),
            *(Slot(f"y{j}", digit) for j in reversed(range(n))),
            Slot.fixed("=", EQUALS),
            *(Slot(f"A{j}", digit) for j in reversed(range(n + 1))),
        )

    @property
    def d_vocab_out(self) -> int:
        return 10

    @property
    def answer_positions(self) -> slice:
        n = self.n_digits
        return slice(2 * n + 1, 3 * n + 2)

    @property
    def answer_names(self) -> tuple[str, ...]:
        return tuple(f"A{j}" for j in reversed(range(self.n_digits + 1)))

    # ---- generation -----------------------------------------------------------------
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        x = torch.randint(0, 10, (n, self.n_digits), generator=generator)
        y = torch.randint(0, 10, (n, self.n_digits), generator=generator)
        return self.encode_digits(x, y)

    def train_batch(self, n: int, generator: torch.Generator) -> Tensor:
        tokens = self._sample(n, generator)
        if torch.rand((), generator=generator) < self.enrich_batch_prob:
            x, y = self.operand_digits(tokens)
            force = torch.rand(y.shape, generator=generator) < self.enrich_pair_prob
            tokens = self.encode_digits(x, torch.where(force, 9 - x, y))
        return tokens

    def encode_digits(self, x: Tensor, y: Tensor) -> Tensor:
        """Sequences ``[B, 3n+3]`` from operand digits ``x, y [B, n]`` (column 0 = units)."""
        carry = torch.zeros(len(x), dtype=torch.long)
        answer = []
        for j in range(self.n_digits):
            column = x[:, j] + y[:, j] + carry
            answer.append(column % 10)
            carry = column // 10
        answer.append(carry)
        answer_msf = torch.stack(answer[::-1], dim=1)
        column = torch.zeros((len(x), 1), dtype=torch.long)
        return torch.cat(
            [x.flip(1), column + PLUS, y.flip(1), column + EQUALS, answer_msf], dim=1
        ).long()

    def encode(self, x: list[int] | Tensor, y: list[int] | Tensor) -> Tensor:
        """Sequences for integer operands, e.g. ``encode([555], [445])``."""
        x, y = torch.as_tensor(x).reshape(-1), torch.as_tensor(y).reshape(-1)
        limit = 10**self.n_digits
        if bool(((x < 0) | (x >= limit) | (y < 0) | (y >= limit)).any()):
            raise ToybookError(f"addition operands must be in 0..{limit - 1}")
        powers = 10 ** torch.arange(self.n_digits)
        return self.encode_digits(x[:, None] // powers % 10, y[:, None] // powers % 10)

    # ---- enumeration --------------------------------------------------------------
    @property
    def n_inputs(self) -> int | None:
        """Every question, ``10^(2n)`` (10^10 for five digits); ``None`` where that does not
        fit in int64 (ten digits)."""
        total = 10 ** (2 * self.n_digits)
        return total if total < 2**63 else None

    def inputs(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Questions ``[stop - start, 3n+3]`` of ranks ``start..stop-1``: rank
        ``r = x * 10^n + y``, so the order is fixed (``x`` slowest, ``y`` fastest) and any
        range of ranks is one reproducible slice of all the questions."""
        stop = self.check_rank_range(start, stop)
        rank = torch.arange(start, stop, dtype=torch.long)
        limit = 10**self.n_digits
        return self.encode(rank // limit, rank % limit)

    def rank(self, tokens: Tensor) -> Tensor:
        """The inverse of :meth:`inputs`: ranks ``[B]`` of questions ``[B, 3n+3]``."""
        x, y = self.operand_digits(tokens)
        powers = 10 ** torch.arange(self.n_digits, device=tokens.device)
        return (x * powers).sum(1) * 10**self.n_digits + (y * powers).sum(1)

    def operand_digits(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Operand digits ``x, y [B, n]``, column 0 = units."""
        n = self.n_digits
        return tokens[:, :n].flip(1), tokens[:, n + 1 : 2 * n + 1].flip(1)

    def targets(self, tokens: Tensor) -> Tensor:
        x, y = self.operand_digits(tokens)
        return self.encode_digits(x.cpu(), y.cpu()).to(tokens.device)[:, 2 * self.n_digits + 2 :]

    # ---- sub-tasks --------------------------------------------------------------------
    def subtasks(self, tokens: Tensor) -> SubTasks:
        """Per-column sub-task labels of ``tokens [B, T]``."""
        x, y = self.operand_digits(tokens)
        pair_sum = x + y
        mc1, ms9 = pair_sum >= 10, pair_sum == 9
        carry_in = torch.zeros_like(mc1)
        for j in range(1, self.n_digits):
            carry_in[:, j] = mc1[:, j - 1] | (ms9[:, j - 1] & carry_in[:, j - 1])
        return SubTasks(BA=pair_sum % 10, MC1=mc1, MS9=ms9, UC1=carry_in, US9=ms9 & carry_in)

    def generate_with_labels(
        self, n: int, seed: int | torch.Generator = 0, device: str | torch.device = "cpu"
    ) -> tuple[Tensor, SubTasks]:
        """A seeded batch (uniform digits) and its per-column sub-task labels."""
        tokens = self.generate(n, seed, device)
        return tokens, self.subtasks(tokens)

    def cascade_depth(self, tokens: Tensor) -> Tensor:
        """``[B]``: the longest run of adjacent US9 columns (0 when there is none)."""
        us9 = self.subtasks(tokens).US9.long()
        run = torch.zeros_like(us9[:, 0])
        longest = torch.zeros_like(run)
        for j in range(self.n_digits):
            run = (run + 1) * us9[:, j]
            longest = torch.maximum(longest, run)
        return longest

    def classify(self, tokens: Tensor) -> Tensor:
        """``[B]`` :class:`QuestionClass` of each question."""
        labels = self.subtasks(tokens)
        depth = self.cascade_depth(tokens)
        classes = torch.full_like(depth, QuestionClass.BA)
        classes[labels.MC1.any(1)] = QuestionClass.MC1
        classes[depth == 1] = QuestionClass.SimpleUS9
        classes[depth >= 2] = QuestionClass.CascadeUS9
        return classes

    def digit_subtasks(self, tokens: Tensor) -> Tensor:
        """``[B, n+1]`` :class:`DigitSubtask` of each answer digit, in answer order (A_n first)."""
        labels = self.subtasks(tokens)
        kind = torch.zeros((len(tokens), self.n_digits + 1), dtype=torch.long, device=tokens.device)
        for j in range(1, self.n_digits + 1):
            kind[:, j] = torch.where(
                labels.US9[:, j - 1],
                DigitSubtask.US9,
                torch.where(labels.MC1[:, j - 1], DigitSubtask.UC1, DigitSubtask.BA),
            )
        return kind.flip(1)

    def metrics(self, logits: Tensor, tokens: Tensor) -> dict[str, Any]:
        """Adds the loss of the answer digits that need BA only, UC1, and US9."""
        result = super().metrics(logits, tokens)
        losses = self.token_losses(logits, tokens)
        kinds = self.digit_subtasks(tokens)
        for kind in DigitSubtask:
            mask = kinds == kind
            if bool(mask.any()):
                result[f"loss_{kind.name}"] = losses[mask].mean().item()
        return result


def prediction_position(task: AdditionTask, column: int) -> int:
    """The position whose logits predict answer digit ``A_column`` (A_n at the ``=``)."""
    if not 0 <= column <= task.n_digits:
        raise ToybookError(f"answer digits are A0..A{task.n_digits}, got A{column}")
    return 2 * task.n_digits + 1 + task.n_digits - column


def operand_positions(task: AdditionTask, column: int) -> tuple[int, int]:
    """Positions of ``x_column`` and ``y_column``."""
    if not 0 <= column < task.n_digits:
        raise ToybookError(f"operand columns are 0..{task.n_digits - 1}, got {column}")
    n = task.n_digits
    return n - 1 - column, 2 * n - column
