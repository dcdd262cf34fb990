"""Start-up time of the ``toybook`` command and of ``import toybook``: the median of five
runs of each, in fresh processes (and the best of them for ``toybook list``). Goal: 1 s for
help, version, argument errors and ``toybook list`` (names, configs and sidecars: no torch).

    python benchmarks/cli_startup.py
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

TOYBOOK = Path(sys.executable).with_name("toybook")
GOAL_S = 1.0
COMMANDS = {
    "toybook --help": [str(TOYBOOK), "--help"],
    "toybook --version": [str(TOYBOOK), "--version"],
    "toybook train (argument error)": [str(TOYBOOK), "train"],
    "toybook eval nonsense (unknown name)": [str(TOYBOOK), "eval", "nonsense"],
    "toybook list": [str(TOYBOOK), "list"],
    "toybook eval max_of_2 (all 4,096 inputs)": [str(TOYBOOK), "eval", "max_of_2"],
    "import toybook": [sys.executable, "-c", "import toybook"],
    "import toybook; load_model (first model)": [
        sys.executable, "-c", "import toybook; toybook.load_model('max_of_2')"],
}
WITH_GOAL = {"toybook --help", "toybook --version", "toybook train (argument error)", "toybook list"}


def seconds(command: list[str], runs: int = 5) -> tuple[float, float]:
    """``(median, best)`` wall time of ``runs`` fresh processes."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def main() -> None:
    print(f"start-up, median and best of 5 fresh processes (goal: ≤ {GOAL_S:.0f} s where marked)")
    for label, command in COMMANDS.items():
        median, best = seconds(command)
        verdict = ("ok" if median <= GOAL_S else "OVER") if label in WITH_GOAL else ""
        print(f"  {label:<42} {median:6.2f} s (best {best:.2f} s)  {verdict}")


if __name__ == "__main__":
    main()
