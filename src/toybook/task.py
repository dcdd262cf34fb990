"""What a task is: a token format, a seeded generator and an exact answer check.

A task owns everything that depends on the token format, so that models, the trainer
and the analysis code never hard-code a position or a token id:

- the format itself, as one :class:`Slot` per position (used to validate inputs and to
  label tokens in plots);
- seeded generation of batches, identical on every device (sampled on the CPU from a
  ``torch.Generator``, then moved);
- which logits answer which targets, the loss (float64 log-softmax cross-entropy over
  the answer positions) and exact-match accuracy.

Shapes: B batch, T sequence length (``n_ctx``), A answer positions, V ``d_vocab_out``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from toybook._lazy import lazy
from toybook.errors import InvalidTokensError, ToybookError
from toybook.resources import INT64_BYTES, check_device, check_fits, refuse_out_of_memory
from toybook.tokens import check_token_tensor

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


@dataclass(frozen=True)
class Slot:
    """One position of a task's token format."""

    name: str  # label in plots: "a0", "BOS", "nl_0", "="
    tokens: range  # token ids allowed at this position
    separator: bool = False  # always the one token named by `name`

    @classmethod
    def fixed(cls, name: str, token: int) -> "Slot":
        return cls(name, range(token, token + 1), separator=True)

    def describe(self) -> str:
        if self.separator:
            return f"{self.name} (token {self.tokens.start})"
        return f"a token in {self.tokens.start}..{self.tokens.stop - 1}"


def make_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU generator: batches are sampled on the CPU so every device sees the same data."""
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


class Task(ABC):
    """Base class of the four tasks. Subclasses are frozen dataclasses of their parameters."""

    name: ClassVar[str]
    description: ClassVar[str]
    order: ClassVar[int]  # place in ``list_tasks()``
    group_slot: ClassVar[str | None] = None  # exhaustive results are also split by this slot
    # runs of `prefix_run` consecutive ranks share their first `shared_prefix` tokens
    shared_prefix: ClassVar[int] = 0
    prefix_run: ClassVar[int] = 1

    # ---- what a subclass defines -------------------------------------------------
    @property
    @abstractmethod
    def slots(self) -> tuple[Slot, ...]:
        """The token format: one slot per position, ``len(slots) == n_ctx``."""

    @property
    @abstractmethod
    def d_vocab_out(self) -> int: ...

    @property
    @abstractmethod
    def answer_positions(self) -> slice:
        """Positions whose logits predict the targets: ``logits[:, answer_positions]``."""

    @property
    @abstractmethod
    def answer_names(self) -> tuple[str, ...]:
        """One name per answer position, e.g. ``("b0", "b1", "b2")``."""

    @abstractmethod
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` random sequences ``[n, T]`` (int64, CPU)."""

    @abstractmethod
    def targets(self, tokens: Tensor) -> Tensor:
        """The correct answers ``[B, A]`` for well-formed ``tokens [B, T]``."""

    # ---- derived -----------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return len(self.slots)

    @property
    def d_vocab(self) -> int:
        return max(slot.tokens.stop for slot in self.slots)

    @property
    def n_answers(self) -> int:
        return len(self.answer_names)

    def params(self) -> dict[str, Any]:
        """The task's parameters, as recorded in checkpoints."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def generate(
        self, n: int, seed: int | torch.Generator = 0, device: str | torch.device = "cpu"
    ) -> Tensor:
        """``n`` random well-formed sequences ``[n, T]``; same seed, same batch, any device."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ToybookError(f"{self.name}.generate: n must be a positive integer, got {n!r}")
        if not isinstance(seed, torch.Generator) and (
            isinstance(seed, bool) or not isinstance(seed, int) or seed < 0
        ):
            raise ToybookError(
                f"{self.name}.generate: seed must be an integer ≥ 0 or a torch.Generator, got {seed!r}"
            )
        check_device(device)
        self.check_request(f"{self.name}.generate", n, device)
        with refuse_out_of_memory(f"{self.name}.generate", f"{n:,} sequences"):
            return self._sample(n, make_generator(seed)).to(device)

    def check_request(self, owner: str, n: int, device: str | torch.device = "cpu") -> None:
        """Refuse (:class:`~toybook.errors.TooLargeError`) ``n`` sequences that cannot fit in
        memory: made on the CPU (with their intermediates, about twice the result), then
        moved to ``device``."""
        each = 2 * self.n_ctx * INT64_BYTES
        check_fits(owner, n, f"sequences of {self.n_ctx} tokens", each, "cpu")
        if torch.device(device).type != "cpu":
            check_fits(owner, n, f"sequences of {self.n_ctx} tokens", each // 2, device)

    def train_batch(self, n: int, generator: torch.Generator) -> Tensor:
        """One training batch. Tasks with a special training distribution override this."""
        return self._sample(n, generator)

    def train_data(self) -> Tensor | None:
        """A fixed training set ``[N, T]``, or ``None`` when training samples fresh data."""
        return None

    def eval_data(self, n: int = 10_000, seed: int = 12345) -> Tensor:
        """The held-out evaluation set: a seeded sample, or every input where that is small."""
        return self.generate(n, seed)

    # ---- enumeration (tasks whose input space is small enough to check exhaustively) -
    @property
    def n_inputs(self) -> int | None:
        """How many distinct inputs the task has, or ``None`` when it does not enumerate them."""
        return None

    def inputs(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Inputs of ranks ``start..stop-1`` of the task's enumeration, ``[stop - start, T]``."""
        self.check_rank_range(start, stop)
        raise NotImplementedError

    def check_rank_range(self, start: int, stop: int | None) -> int:
        """``stop`` (default: all) after checking ``0 <= start <= stop <= n_inputs``."""
        total = self.n_inputs
        if total is None:
            raise ToybookError(
                f"task {self.name!r} does not enumerate its inputs; exhaustive evaluation "
                "needs a task with a finite, enumerable input space (`toybook list` shows "
                "each task's number of inputs)"
            )
        stop = total if stop is None else stop
        if not 0 <= start <= stop <= total:
            raise ToybookError(
                f"{self.name}: input ranks must satisfy 0 <= start <= stop <= {total:,}, "
                f"got start={start:,}, stop={stop:,}"
            )
        return stop

    # ---- validation and labels -----------------------------------------------------
    def validate(self, tokens: Any, prefix: bool = False) -> Tensor:
        """Raise :class:`InvalidTokensError` naming the problem unless ``tokens`` is a
        well-formed ``[B, T]`` integer tensor of this task (every token allowed in its
        slot); return it unchanged. ``prefix=True`` also accepts the first 1..T tokens of
        sequences, which is what a model sees while it generates."""
        check_token_tensor(tokens, f"task {self.name!r}", self.d_vocab, self.n_ctx, exact_length=not prefix)
        length = tokens.shape[1]
        low = torch.tensor([slot.tokens.start for slot in self.slots[:length]], device=tokens.device)
        high = torch.tensor([slot.tokens.stop for slot in self.slots[:length]], device=tokens.device)
        bad = (tokens < low) | (tokens >= high)
        if bool(bad.any()):
            row, pos = bad.nonzero()[0].tolist()
            slot = self.slots[pos]
            raise InvalidTokensError(
                f"task {self.name!r}: position {pos} ({slot.name}) must be "
                f"{slot.describe()}, but row {row} has {int(tokens[row, pos])}"
            )
        return tokens

    def token_labels(self, tokens: Tensor | list[int]) -> list[str]:
        """Readable labels for one sequence, e.g. ``["BOS", "a0=17", ..., "nl_0"]``."""
        values = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        if len(values) > self.n_ctx or (values and isinstance(values[0], list)):
            raise InvalidTokensError(
                f"token_labels takes one sequence of at most {self.n_ctx} tokens"
            )
        return [
            slot.name if slot.separator and value == slot.tokens.start else f"{slot.name}={value}"
            for slot, value in zip(self.slots, values)
        ]

    # ---- loss and accuracy -------------------------------------------------------
    def answer_logits(self, logits: Tensor) -> Tensor:
        """``[B, T, V]`` → ``[B, A, V]``: the logits that predict the answers."""
        if logits.ndim != 3 or logits.shape[1] != self.n_ctx or logits.shape[2] != self.d_vocab_out:
            raise InvalidTokensError(
                f"task {self.name!r} expects logits of shape [batch, {self.n_ctx}, "
                f"{self.d_vocab_out}], got {tuple(logits.shape)}"
            )
        return logits[:, self.answer_positions]

    def token_losses(self, logits: Tensor, tokens: Tensor) -> Tensor:
        """Cross-entropy ``[B, A]`` of each answer, from a float64 log-softmax."""
        return answer_losses(self.answer_logits(logits), self.targets(tokens))

    def loss(self, logits: Tensor, tokens: Tensor) -> Tensor:
        """Mean cross-entropy over the batch and the answer positions (float64 scalar)."""
        return self.token_losses(logits, tokens).mean()

    def correct(self, logits: Tensor, tokens: Tensor) -> Tensor:
        """``[B, A]`` bool: the arg-max answer equals the target."""
        return self.answer_logits(logits).argmax(-1) == self.targets(tokens)

    def metrics(self, logits: Tensor, tokens: Tensor) -> dict[str, Any]:
        """Loss and accuracy, overall and per answer position; tasks may add their own."""
        losses = self.token_losses(logits, tokens)
        correct = self.correct(logits, tokens)
        return {
            "loss": losses.mean().item(),
            "acc": correct.all(-1).double().mean().item(),
            "loss_per_pos": losses.mean(0).tolist(),
            "acc_per_pos": correct.double().mean(0).tolist(),
        }


def answer_losses(answer_logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy ``[B, A]`` from answer logits ``[B, A, V]`` and targets ``[B, A]``: the
    one loss definition (float64 log-softmax) of training, evaluation and analysis."""
    logprobs = answer_logits.double().log_softmax(-1)
    return -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
