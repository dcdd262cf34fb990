"""Book build time on this machine: a cold build (empty execution cache) and a warm one.

    python benchmarks/book_build.py

Builds into a temporary folder, so the repository's own _build is untouched.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def build(out: Path, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out), *extra],
        check=True, capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        cold = build(out, "-W", "-n", "--keep-going")
        warm = build(out)  # nothing changed: no notebook runs, no page is rewritten
        touched = build(out, "--all")  # every page rewritten, notebooks from the cache
        html = out / "_build" / "html"
        sizes = {page.stem: page.stat().st_size for page in sorted(html.glob("book/*.html"))}
        vendor = sum(f.stat().st_size for f in (html / "_static" / "vendor").rglob("*") if f.is_file())
    print(f"cold build (empty cache, -W): {cold:6.1f} s")
    print(f"warm build (nothing changed): {warm:6.1f} s")
    print(f"warm build, all pages (--all, cached execution): {touched:6.1f} s")
    print(f"{len(sizes)} pages (HTML, budget 5 MB each):")
    for name, size in sizes.items():
        print(f"  {name:<14} {size / 1024:8.0f} KB")
    print(f"shared vendored scripts (_static/vendor, loaded once per site): {vendor / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
