"""``make book`` stamps its site with the commit it was built from; ``make test`` reuses that
site only when the tree is still exactly that commit."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stamp(tmp_path, monkeypatch):
    """scripts/build_stamp.py pointed at a fresh git repository with one commit."""
    spec = importlib.util.spec_from_file_location("build_stamp", ROOT / "scripts" / "build_stamp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / ".gitignore").write_text("_build/\n")
    (tmp_path / "page.md").write_text("# a page\n")
    git("add", "-A")
    git("commit", "-qm", "one")
    (tmp_path / "_build" / "html").mkdir(parents=True)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "SITE", tmp_path / "_build" / "html")
    monkeypatch.setattr(module, "STAMP", tmp_path / "_build" / "html" / ".built-from")
    return module, git


def test_a_build_of_a_clean_commit_is_reused(stamp):
    module, _ = stamp
    state = module.tree_state()
    assert len(state) == 40
    module.main(["write", state])
    assert module.reusable_site() == module.SITE
    assert module.main(["check"]) == 0


@pytest.mark.parametrize("change", ["edit", "untracked", "new commit"])
def test_any_change_after_the_build_makes_it_stale(stamp, change):
    module, git = stamp
    module.main(["write", module.tree_state()])
    if change == "edit":
        (module.ROOT / "page.md").write_text("# changed\n")
    elif change == "untracked":
        (module.ROOT / "new.md").write_text("new\n")
    else:
        (module.ROOT / "page.md").write_text("# two\n")
        git("commit", "-qam", "two")
    assert module.reusable_site() is None
    assert module.main(["check"]) == 1


def test_a_build_of_a_changed_tree_is_never_stamped(stamp):
    module, _ = stamp
    (module.ROOT / "page.md").write_text("# being edited\n")
    assert module.tree_state() == ""
    module.main(["write", module.tree_state()])
    assert not module.STAMP.exists()
    state = module.tree_state()
    (module.ROOT / "page.md").write_text("# a page\n")  # changed during the build, then back
    module.main(["write", "0" * 40])
    assert not module.STAMP.exists() and state == ""
