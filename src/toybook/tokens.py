"""The checks every token tensor passes before a task or a model reads it: type, shape,
length and vocabulary range, each failure a named :class:`~toybook.errors.InvalidTokensError`
that says what was wrong and what is allowed."""

from __future__ import annotations

from typing import Any

from toybook._lazy import lazy
from toybook.errors import InvalidTokensError

torch = lazy("torch")


def check_token_tensor(
    tokens: Any, owner: str, d_vocab: int, n_ctx: int, *, exact_length: bool
) -> None:
    """Type, shape, length and range checks shared by tasks and models."""
    if not isinstance(tokens, torch.Tensor):
        raise InvalidTokensError(
            f"{owner}: tokens must be a torch.Tensor of token ids, got {type(tokens).__name__}"
        )
    if tokens.dtype not in (torch.int64, torch.int32):
        raise InvalidTokensError(
            f"{owner}: tokens must have an integer dtype, torch.long (or torch.int32), "
            f"got {tokens.dtype}"
        )
    if tokens.ndim != 2:
        hint = " (use tokens.unsqueeze(0) for a single sequence)" if tokens.ndim == 1 else ""
        raise InvalidTokensError(
            f"{owner}: tokens must have shape [batch, {n_ctx}], got {tuple(tokens.shape)}{hint}"
        )
    length = tokens.shape[1]
    if tokens.shape[0] == 0:
        raise InvalidTokensError(f"{owner}: the batch is empty (shape {tuple(tokens.shape)}); "
                                 f"pass at least one sequence")
    if length == 0:
        raise InvalidTokensError(f"{owner}: sequences are empty (length 0); a sequence has "
                                 f"1..{n_ctx} tokens")
    if exact_length and length != n_ctx:
        raise InvalidTokensError(f"{owner}: sequences have {n_ctx} tokens, got length {length}")
    if length > n_ctx:
        raise InvalidTokensError(
            f"{owner}: sequences have at most {n_ctx} tokens (n_ctx), got length {length}"
        )
    if tokens.numel():
        low, high = int(tokens.min()), int(tokens.max())
        if low < 0 or high >= d_vocab:
            bad = low if low < 0 else high
            where = (tokens == bad).nonzero()[0].tolist()
            raise InvalidTokensError(
                f"{owner}: token {bad} at [row {where[0]}, position {where[1]}] is out of "
                f"range; the vocabulary is 0..{d_vocab - 1}"
            )
