"""Live-cell latency on a local server: from pressing Live Code on the list-update chapter
to the kernel being ready (setup cell sent), and to the output of a cell run after it.
Goal: first output within 10 s on 2 cores.

    python benchmarks/live_latency.py [--site _build/html]

Runs the browser test ``test_live_cells_run_on_a_local_jupyter_server`` (headless Chromium,
``toybook live``'s servers) against an already built site and prints what it measured.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "test-artifacts" / "live_cell_seconds.txt"
GOAL_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args()
    if not (args.site / "index.html").exists():
        raise SystemExit(f"no built site at {args.site}: build the book first (make book)")
    RESULT.unlink(missing_ok=True)
    test = "tests/test_browser.py::test_live_cells_run_on_a_local_jupyter_server"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", test], cwd=ROOT,
                         env={**os.environ, "TOYBOOK_BUILT_SITE": str(args.site.resolve())},
                         capture_output=True, text=True)
    if run.returncode != 0 or not RESULT.exists():
        raise SystemExit(f"the live-cell test did not pass:\n{run.stdout[-2000:]}")
    ready, output = map(float, re.findall(r"([\d.]+) s", RESULT.read_text()))
    print(f"live cells (local server): kernel ready {ready:.1f} s after Live Code, first output "
          f"{output:.1f} s  (goal {GOAL_S:.0f} s: {'ok' if output <= GOAL_S else 'OVER'})")


if __name__ == "__main__":
    main()
