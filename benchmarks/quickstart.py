"""The README's quick start, timed as a newcomer runs it: a fresh clone of the current
commit, then ``make book`` (creates .venv, builds the book from scratch), ``make test``
(the full suite, reusing the book that ``make book`` stamped) and ``make test-fast`` (what a
contributor runs on every change). For each command: wall time, the peak memory of the
command and every process below it together (pip, jupyter-book and its kernels, pytest and
the Chromium it drives; see ``process_peak.py``), and pytest's closing line.

    python benchmarks/quickstart.py [--keep]     # about 30 minutes on 2 cores

Runs in a temporary folder (``--keep`` leaves it), so this checkout is untouched; the
pip and npm caches of this machine are used as a newcomer's second run would use them.
The commit must be clean: uncommitted changes would not be in the clone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
from process_peak import run_measured

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: Path, log: Path) -> tuple[int, float, float]:
    """``(exit status, seconds, peak GB)`` of ``command`` and all its descendants."""
    with log.open("wb") as out:
        return run_measured(command, cwd, out)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--keep", action="store_true", help="keep the clone and its logs")
    args = options.parse_args()
    if subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                      text=True).stdout.strip():
        print("warning: uncommitted changes are not in the clone", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="toybook-quickstart-"))
    clone = work / "toybook"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    print(f"fresh clone of {commit} in {clone}; {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB")
    print(f"{'command':<15} {'exit':>4} {'wall time':>10} {'peak memory':>12}  tests")
    status = 0
    for target in ("book", "test", "test-fast"):
        log = work / f"make-{target}.log"
        code, seconds, peak = run(["make", target], clone, log)
        status = status or code
        tail = log.read_text(errors="replace").splitlines()[-40:]
        counts = next((line.strip("= ") for line in reversed(tail) if " passed" in line), "")
        print(f"make {target:<10} {code:>4} {seconds / 60:>7.1f} min {peak:>9.2f} GB  {counts}",
              flush=True)
        for line in tail:
            if "reused" in line or "built the book" in line:
                print(f"  {line}")
    print(f"logs: {work}" if args.keep else "")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)])
    return status


if __name__ == "__main__":
    sys.exit(main())
