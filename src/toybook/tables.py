"""Small tables that render as Markdown in notebooks and as text in terminals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from toybook.checkpoint import summarize_evaluation
from toybook.errors import ToybookError
from toybook.registry import tasks
from toybook.zoo import list_models

if TYPE_CHECKING:
    from toybook.claims import ClaimResult
    from toybook.sweep import SeedResult


@dataclass(frozen=True)
class Table:
    """Rows of cells under a header; ``_repr_markdown_`` makes notebooks render it."""

    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        # a column without a name leaves its cells without a header for a screen reader
        # (axe's td-has-header)
        unnamed = [i for i, name in enumerate(self.header) if not str(name).strip()]
        if unnamed:
            raise ToybookError(f"column {unnamed[0]} of the table has no name: every column needs one "
                               f"(header given: {self.header!r})")

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(str(cell) for cell in self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._repr_markdown_()


def power_of_ten(value: float) -> str:
    """``value`` as prose writes a small or large number: ``8e-05`` as "8·10⁻⁵", ``1e-4`` as
    "10⁻⁴" (one significant digit kept)."""
    mantissa, exponent = f"{value:.0e}".split("e")
    power = "10" + str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return power if mantissa == "1" else f"{mantissa}·{power}"


def tasks_table() -> Table:
    """Every registered task with its token-format sizes."""
    rows = []
    for name, cls in tasks().items():
        task = cls()
        rows.append((f"`{name}`", task.n_ctx, task.d_vocab, task.d_vocab_out, cls.description))
    return Table(("task", "n_ctx", "d_vocab", "d_vocab_out", "what it asks"), tuple(rows))


def models_table() -> Table:
    """Every shipped model with the metrics recorded in its checkpoint: the first recorded
    evaluation (its accuracy) in full, the chapters' later records by name only (``toybook
    list`` prints every summary)."""
    rows = []
    for info in list_models():
        (first, result), *later = info.evaluations.items() or [(None, None)]
        recorded = "" if first is None else f"{first}: {summarize_evaluation(result)}"
        if later:
            recorded += "; also recorded: " + ", ".join(label for label, _ in later)
        rows.append(
            (f"`{info.name}`", f"`{info.task}`", f"{info.n_parameters:,}", info.steps,
             f"{info.metrics['eval_acc']:.2%}", recorded or "—")
        )
    return Table(
        ("model", "task", "parameters", "training steps", "held-out accuracy", "recorded evaluations"),
        tuple(rows),
    )


def claim_seed_table(
    sweep: Sequence[SeedResult], shipped: Sequence[ClaimResult], shipped_seed: int,
    extra_rows: Sequence[tuple[Any, ...]] = (),
) -> Table:
    """Claim × seed: a column per model (the shipped one first, measured now; then each seed
    as its sweep recorded it), a row per claim with the measured value in each cell and ✗
    where the claim fails. A claim's row says whether the chapter makes it for every seed
    or for the shipped model only. ``extra_rows`` (label, then one cell per model) go first."""
    header = ("claim", "made for", f"seed {shipped_seed} (shipped)", *(f"seed {r.seed}" for r in sweep))
    rows = [(label, "", *cells) for label, *cells in extra_rows]
    for result in shipped:
        name = result.claim.name
        cells = [_cell(result.value, result.holds)]
        cells += [_cell(r.claims[name]["value"], r.claims[name]["holds"]) if name in r.claims else "—"
                  for r in sweep]
        made_for = "every seed" if result.claim.all_seeds else "shipped model"
        rows.append((f"`{name}`: {result.claim.text}", made_for, *cells))
    return Table(header, tuple(rows))


def faithfulness_table(reports: Mapping[str, Sequence[Mapping[str, Any]]], reading: str | None = None) -> Table:
    """Model × one reading (the headline where ``reading`` is None), from
    :func:`toybook.faithfulness_report` rows: F (✗ below 0.95, the goal), the reading's size
    (kept whole + scrubbed of the universe), random readings of its shape (mean, 95th
    percentile), the group whose removal costs least and what it costs, and the completeness
    gap."""
    rows = []
    for label, report in reports.items():
        row = next(r for r in report if (r["reading"] == reading if reading else r["headline"]))
        rows.append((label, f"`{row['reading']}`", _goal(row["recovered"]),
                     f"{row['n_whole']} + {row['n_scrubbed']} of {row['n_universe']}",
                     f"{row['random_mean']:.2f} ({row['random_p95']:.2f})",
                     f"{row['weakest']}: {row['min_component_drop']:.3f}", f"{row['completeness_gap']:.3f}"))
    return Table(("model", "reading", "F", "whole + scrubbed of universe", "random: mean (p95)",
                  "weakest part: drop", "completeness gap"), tuple(rows))


def readings_table(report: Sequence[Mapping[str, Any]]) -> Table:
    """Every reading of one model, from its :func:`toybook.faithfulness_report` rows,
    ``everything`` and ``nothing`` included."""
    def cell(value: float, digits: int = 2) -> str:
        return "—" if value != value else f"{value:.{digits}f}"

    return Table(("reading", "F", "whole + scrubbed of universe", "MLP parts", "random: mean (p95)",
                  "weakest part: drop", "completeness gap"), tuple(
        (f"`{r['reading']}`" + (" (headline)" if r["headline"] else ""), _goal(r["recovered"]),
         f"{r['n_whole']} + {r['n_scrubbed']} of {r['n_universe']}", r["mlp_parts"],
         "—" if r["random_mean"] != r["random_mean"] else f"{r['random_mean']:.2f} ({r['random_p95']:.2f})",
         f"{r['weakest']}: {r['min_component_drop']:.3f}" if r["weakest"] else "—",
         cell(r["completeness_gap"], 3)) for r in report))


def _goal(value: float) -> str:
    return f"{value:.3f}" + ("" if value >= 0.95 else " ✗")


def _cell(value: float, holds: bool) -> str:
    return f"{value:.3g}" + ("" if holds else " ✗")
