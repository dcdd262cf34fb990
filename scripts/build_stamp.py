"""Which commit the built site in ``_build/html`` was built from, so ``make test`` can reuse
a build that ``make book`` just made instead of building the book a second time.

A build is stamped only when the tree it was built from is a commit with nothing changed
(``git status --porcelain`` empty, before and after the build); the stamp file holds that
commit. A build from a changed tree, or with no git, gets no stamp and is never reused.

    python scripts/build_stamp.py state          # the commit, or nothing if the tree has changes
    python scripts/build_stamp.py write STATE    # stamp _build/html if the tree is still STATE
    python scripts/build_stamp.py check          # exit 0 if _build/html is from the current tree
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
STAMP = SITE / ".built-from"


def tree_state() -> str:
    """The current commit if the work tree has no changes (untracked files count), else ''."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        if git("status", "--porcelain"):
            return ""
        return git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return ""


def reusable_site() -> Path | None:
    """``_build/html`` if its stamp names the current, unchanged commit, else ``None``."""
    state = tree_state()
    if state and STAMP.exists() and STAMP.read_text().strip() == state:
        return SITE
    return None


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "state":
        print(tree_state())
        return 0
    if command == "write":
        before = argv[1] if len(argv) > 1 else ""
        if before and before == tree_state() and SITE.is_dir():
            STAMP.write_text(before + "\n")
            print(f"stamped {SITE.relative_to(ROOT)} as built from {before[:12]}: make test reuses it")
        else:
            STAMP.unlink(missing_ok=True)
            print("built from a tree with uncommitted changes: not stamped (make test builds again)")
        return 0
    if command == "check":
        return 0 if reusable_site() else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
