"""Errors that name the problem.

Every error toybook raises on bad input derives from :class:`ToybookError`, so the
CLI can print one line and exit, and callers can catch one type.
"""

from __future__ import annotations


class ToybookError(ValueError):
    """Base class for toybook's input, task and checkpoint errors."""


class UnknownTaskError(ToybookError, KeyError):
    """A task name that is not registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


class UnknownModelError(ToybookError, KeyError):
    """A shipped-model name that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidTokensError(ToybookError):
    """A token tensor with the wrong type, shape, length or contents for its task."""


class CheckpointError(ToybookError):
    """A checkpoint that is missing, corrupted, tampered with, inconsistent, or that
    cannot be written where asked."""


class ConfigError(ToybookError):
    """A model or training configuration value of the wrong type or out of range."""


class TooLargeError(ToybookError):
    """A request (sequences, inputs, a batch) too large for the memory there is."""


class WrongModelError(ToybookError):
    """A model handed to the checks, claims or measurements of a task or preset it does not
    fit."""
