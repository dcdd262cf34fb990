"""Wall time and peak memory of a command together with every process below it (pip,
jupyter-book and its kernels, pytest and the Chromium it drives): the resident memory of
the whole process tree, summed and sampled four times a second. GB here is 10**9 bytes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import IO

import psutil


def run_measured(command: list[str], cwd: Path | None = None,
                 output: IO[bytes] | int = subprocess.DEVNULL) -> tuple[int, float, float]:
    """``(exit status, seconds, peak GB)`` of ``command`` and all its descendants."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.25)
    return process.returncode, time.perf_counter() - start, peak / 1e9
