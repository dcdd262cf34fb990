"""Write ``book/NAME.ipynb`` beside every chapter ``book/NAME.md`` that has code, for the
Colab (and Binder) launch buttons: Colab opens notebooks from the repository and cannot
read MyST markdown. The notebooks have no outputs and are not part of the book build
(``_config.yml`` excludes them); the ``.md`` files stay the source. Their install cells get
the repository address from ``_config.yml`` (``repository.url``), as the book's pages do.

    python scripts/colab_notebooks.py           # rewrite the notebooks
    python scripts/colab_notebooks.py --check   # exit 1 if any is missing or out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from myst_nb.core.read import read_myst_markdown_notebook

BOOK = Path(__file__).resolve().parents[1] / "book"
sys.path.insert(0, str(BOOK / "_ext"))
from repository import fill, repository_url  # noqa: E402


def notebook_text(page: Path) -> str:
    """The notebook of ``page`` as JSON text, byte-for-byte the same on every run."""
    notebook = read_myst_markdown_notebook(fill(page.read_text(), repository_url()))
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"
    return nbformat.writes(notebook) + "\n"


def pages() -> list[Path]:
    return [page for page in sorted(BOOK.glob("*.md")) if "```{code-cell}" in page.read_text()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args()
    stale = []
    for page in pages():
        target, text = page.with_suffix(".ipynb"), notebook_text(page)
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.name)
        if not args.check:
            target.write_text(text)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/colab_notebooks.py")
        return 1
    print(("checked" if args.check else "wrote") + f" {len(pages())} notebooks"
          + (f" ({len(stale)} changed)" if stale and not args.check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
