"""Modules imported on first use, so that reading names, configs and sidecars (``toybook
list``, ``--help``) never loads torch: ``torch = lazy("torch")`` at the top of a module, then
``torch.zeros(...)`` as usual; the first attribute read imports the real module."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _Lazy:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy(name: str) -> Any:
    """A stand-in for module ``name`` that imports it on first attribute access."""
    return _Lazy(name)
