"""Each chapter run top to bottom in a fresh Jupyter kernel, as a reader's live kernel (or
Binder's) runs it: execution time and the kernel's peak resident memory.

    python benchmarks/chapters.py [CHAPTER ...]        # default: every chapter with code

Peak memory is the kernel process's own high-water mark (``VmHWM`` in its
``/proc/PID/status``), so it counts every cell, not samples. Goal: 1.5 GB each, what a
mybinder.org kernel can count on. ``--cells`` also lists the cells that raised the peak.
"""

import argparse
import sys
import time
from pathlib import Path

from myst_nb.core.read import read_myst_markdown_notebook
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
GOAL_GB = 1.5


def chapters() -> list[Path]:
    return [page for page in sorted((ROOT / "book").glob("*.md")) if "```{code-cell}" in page.read_text()]


def peak_gb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM")).split()[1]) * 1024 / 1e9


def run_chapter(page: Path) -> tuple[float, float, list[tuple[int, float, float, str]]]:
    """``(seconds, peak GB, cells)`` of ``page`` executed in a fresh kernel; ``cells`` lists
    ``(index, seconds, peak GB after it, first line)`` for every code cell."""
    notebook = read_myst_markdown_notebook(page.read_text())
    cells, last = [], [time.perf_counter()]

    def after_cell(cell, cell_index, execute_reply):
        now = time.perf_counter()
        first = next((line for line in cell.source.splitlines() if line and not line.startswith(("#", ":"))), "")
        cells.append((cell_index, now - last[0], peak_gb(client.km.provisioner.pid), first[:60]))
        last[0] = now

    client = NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(page.parent)}},
                            on_cell_executed=after_cell)
    started = time.perf_counter()
    with client.setup_kernel():
        last[0] = time.perf_counter()
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        peak = peak_gb(client.km.provisioner.pid)
    return time.perf_counter() - started, peak, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="chapters (file stems), default: all")
    parser.add_argument("--cells", action="store_true", help="the cells that raised the peak")
    args = parser.parse_args()
    pages = [page for page in chapters() if not args.names or page.stem in args.names]
    print(f"chapters in a fresh kernel each (goal: peak ≤ {GOAL_GB} GB)")
    for page in pages:
        seconds, peak, cells = run_chapter(page)
        verdict = "ok" if peak <= GOAL_GB else "OVER"
        print(f"  {page.stem:<12} {seconds:6.1f} s  peak {peak:5.2f} GB  {verdict}", flush=True)
        previous = 0.0
        for index, cell_seconds, cell_peak, first in cells if args.cells else ():
            if cell_peak - previous > 0.05 or cell_seconds > 5:
                print(f"    cell {index:>3} {cell_seconds:6.1f} s  peak {cell_peak:5.2f} GB  {first}")
            previous = cell_peak


if __name__ == "__main__":
    sys.exit(main())
