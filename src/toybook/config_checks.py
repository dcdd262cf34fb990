"""Checks shared by the typed configs (:class:`~toybook.model.ModelConfig`,
:class:`~toybook.training.TrainConfig`): each raises a
:class:`~toybook.errors.ConfigError` that names the field, the value and what is allowed,
at construction, before anything is built or trained."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

from toybook.errors import ConfigError


def check_integer(owner: str, name: str, value: Any, minimum: int, optional: bool = False) -> None:
    """``value`` is an int (not a bool, not 2.5) ≥ ``minimum``, or None where ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"an integer ≥ {minimum}" + (" or None" if optional else "")
        raise ConfigError(f"{owner}.{name} must be {allowed}, got {value!r}")


def check_number(
    owner: str, name: str, value: Any, minimum: float = 0.0, strict: bool = False,
    maximum: float | None = None, optional: bool = False,
) -> None:
    """``value`` is a finite real number ≥ ``minimum`` (> where ``strict``), ≤ ``maximum``."""
    if value is None and optional:
        return
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and (value > minimum if strict else value >= minimum)
          and (maximum is None or value <= maximum))
    if not ok:
        bounds = f"{'>' if strict else '≥'} {minimum}" + (f" and ≤ {maximum}" if maximum is not None else "")
        allowed = f"a finite number {bounds}" + (" or None" if optional else "")
        raise ConfigError(f"{owner}.{name} must be {allowed}, got {value!r}")


def check_choice(owner: str, name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{owner}.{name} must be one of {choices}, got {value!r}")


def config_from_dict(cls: type, values: Any) -> Any:
    """``cls(**values)`` for a config dataclass, with unknown or missing fields named."""
    owner = cls.__name__
    if not isinstance(values, dict):
        raise ConfigError(f"{owner} needs a dict of fields, got {type(values).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {owner} fields: {unknown}; known fields: {sorted(fields)}")
    missing = sorted(
        name for name, field in fields.items()
        if name not in values and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    )
    if missing:
        raise ConfigError(f"{owner} is missing required fields: {missing}")
    return cls(**values)
