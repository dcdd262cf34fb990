"""Timing that a chapter or a benchmark can report: the best of a few runs, since on a shared
machine the slower runs measure the other processes, not the code."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def best_of(fn: Callable[[], T], repeats: int = 5) -> tuple[T, float]:
    """``(fn's value, the shortest of repeats runs in seconds)``."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return value, min(times)


__all__ = ["best_of"]
