"""Can the suite fail? Three deliberate breaks, each in a fresh clone of the current commit:
a claim threshold no model meets, one flipped byte of a shipped checkpoint, and an exercise
checker so tolerant that it accepts the mistakes it exists to catch. For each, the suite
(``pytest -x -m "not slow"``, stopping at the first failure) must fail; the script prints
the test that caught it and exits non-zero if any break went unnoticed.

    python scripts/mutation_check.py        # a few minutes per break on 2 cores
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def replace(path: str, old: str, new: str):
    def apply(clone: Path) -> None:
        file = clone / path
        text = file.read_text()
        if old not in text:
            raise SystemExit(f"{path} no longer contains {old!r}: update this break")
        file.write_text(text.replace(old, new, 1))
    return apply


def flip_a_byte(path: str):
    def apply(clone: Path) -> None:
        data = bytearray((clone / path).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (clone / path).write_bytes(bytes(data))
    return apply


BREAKS = {
    "a claim threshold (max_of_2 bound: 0.99 -> 1.01)": replace(
        "src/toybook/tasks/max_of_2/claims.py",
        "the weights-only bound certifies this fraction of inputs\", certified, 0.99, 1.0)",
        "the weights-only bound certifies this fraction of inputs\", certified, 1.01, 1.0)"),
    "a checkpoint byte (max_of_2.safetensors, middle byte flipped)": flip_a_byte(
        "src/toybook/checkpoints/max_of_2.safetensors"),
    "an exercise checker (QK token scores: tolerance 1e-4 -> 1e3)": replace(
        "src/toybook/tasks/max_of_2/exercises.py", "tolerance=1e-4)", "tolerance=1e3)"),
}


def main() -> int:
    unnoticed = []
    for name, apply in BREAKS.items():
        with tempfile.TemporaryDirectory(prefix="toybook-mutation-") as work:
            clone = Path(work) / "toybook"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            apply(clone)
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow", "-p", "no:cacheprovider"],
                cwd=clone, capture_output=True, text=True,
                env={**os.environ, "PYTHONPATH": str(clone / "src")},
            )
            caught = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", result.stdout, flags=re.M)
            seconds = time.perf_counter() - started
            if result.returncode == 0:
                unnoticed.append(name)
                print(f"NOT CAUGHT  {name}: the suite passed ({seconds:.0f} s)")
            else:
                print(f"caught      {name}: {caught[0] if caught else result.stdout[-300:]} "
                      f"({seconds:.0f} s)")
    return 1 if unnoticed else 0


if __name__ == "__main__":
    sys.exit(main())
