"""Each chapter run top to bottom in a fresh Jupyter kernel, as a reader's live kernel (or
Binder's) runs it: execution time and the kernel's peak resident memory.

    python benchmarks/chapters.py [CHAPTER ...]        # default: every chapter with code

Peak memory is the kernel's own high-water mark (``VmHWM`` in ``/proc/self/status``, read by
one cell appended at the end), so it counts every cell, not samples. Goal: 1.5 GB each,
what a mybinder.org kernel can count on.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
from myst_nb.core.read import read_myst_markdown_notebook
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
GOAL_GB = 1.5
PEAK = "print(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]))"


def chapters() -> list[Path]:
    return [page for page in sorted((ROOT / "book").glob("*.md")) if "```{code-cell}" in page.read_text()]


def run_chapter(page: Path) -> tuple[float, float]:
    """``(seconds, peak GB)`` of ``page`` executed in a fresh kernel."""
    notebook = read_myst_markdown_notebook(page.read_text())
    notebook.cells.append(nbformat.v4.new_code_cell(PEAK))
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(page.parent)}})
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    peak_kb = int(notebook.cells[-1].outputs[0]["text"])
    return seconds, peak_kb * 1024 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="chapters (file stems), default: all")
    args = parser.parse_args()
    pages = [page for page in chapters() if not args.names or page.stem in args.names]
    print(f"chapters in a fresh kernel each (goal: peak ≤ {GOAL_GB} GB)")
    for page in pages:
        seconds, peak = run_chapter(page)
        verdict = "ok" if peak <= GOAL_GB else "OVER"
        print(f"  {page.stem:<12} {seconds:6.1f} s  peak {peak:5.2f} GB  {verdict}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
