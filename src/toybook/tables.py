"""Small tables that render as Markdown in notebooks and as text in terminals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toybook.checkpoint import summarize_evaluation
from toybook.tasks import TASKS
from toybook.zoo import list_models


@dataclass(frozen=True)
class Table:
    """Rows of cells under a header; ``_repr_markdown_`` makes notebooks render it."""

    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(str(cell) for cell in self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._repr_markdown_()


def tasks_table() -> Table:
    """Every registered task with its token-format sizes."""
    rows = []
    for name, cls in TASKS.items():
        task = cls()
        rows.append((f"`{name}`", task.n_ctx, task.d_vocab, task.d_vocab_out, cls.description))
    return Table(("task", "n_ctx", "d_vocab", "d_vocab_out", "what it asks"), tuple(rows))


def models_table() -> Table:
    """Every shipped model with the metrics recorded in its checkpoint."""
    rows = []
    for info in list_models():
        recorded = "; ".join(
            f"{label}: {summarize_evaluation(result)}" for label, result in info.evaluations.items()
        )
        rows.append(
            (f"`{info.name}`", f"`{info.task}`", f"{info.n_parameters:,}", info.steps,
             f"{info.metrics['eval_acc']:.2%}", recorded or "—")
        )
    return Table(
        ("model", "task", "parameters", "training steps", "held-out accuracy", "recorded evaluations"),
        tuple(rows),
    )
