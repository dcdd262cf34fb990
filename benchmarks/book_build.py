"""Book build time on this machine: a cold build (empty execution cache) and a warm one,
with the peak memory of the whole build (jupyter-book and its kernels together, sampled
four times a second). Goals: cold build ≤ 4 min, peak ≤ 3 GB.

    python benchmarks/book_build.py

Builds into a temporary folder, so the repository's own _build is untouched.
"""

import sys
import tempfile
from pathlib import Path

from process_peak import run_measured

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


GOAL_COLD_S, GOAL_PEAK_GB = 240, 3.0


def build(out: Path, *extra: str) -> tuple[float, float]:
    """``(seconds, peak GB)``: the peak sums the resident memory of the build process and
    every process below it (the notebook kernels)."""
    code, seconds, peak = run_measured(
        [str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out), *extra])
    if code:
        raise SystemExit(f"the book build failed (exit {code})")
    return seconds, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        cold, cold_peak = build(out, "-W", "-n", "--keep-going")
        warm, _ = build(out)  # nothing changed: no notebook runs, no page is rewritten
        touched, _ = build(out, "--all")  # every page rewritten, notebooks from the cache
        html = out / "_build" / "html"
        sizes = {page.stem: page.stat().st_size for page in sorted(html.glob("book/*.html"))}
        vendor = sum(f.stat().st_size for f in (html / "_static" / "vendor").rglob("*") if f.is_file())
    print(f"cold build (empty cache, -W): {cold:6.1f} s  peak {cold_peak:.2f} GB  (goals "
          f"{GOAL_COLD_S} s, {GOAL_PEAK_GB} GB: {'ok' if cold <= GOAL_COLD_S else 'OVER'}, "
          f"{'ok' if cold_peak <= GOAL_PEAK_GB else 'OVER'})")
    print(f"warm build (nothing changed): {warm:6.1f} s")
    print(f"warm build, all pages (--all, cached execution): {touched:6.1f} s")
    print(f"{len(sizes)} pages (HTML, budget 5 MB each):")
    for name, size in sizes.items():
        print(f"  {name:<14} {size / 1024:8.0f} KB")
    print(f"shared vendored scripts (_static/vendor, loaded once per site): {vendor / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
