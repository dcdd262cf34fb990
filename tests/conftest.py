import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import toybook

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")


REPRODUCIBILITY = pytest.StashKey[list]()


def record_reproducibility(request, name, level):
    """Note which reproducibility level a test checked, for the run's closing summary."""
    request.config.stash.setdefault(REPRODUCIBILITY, []).append(f"{name}: {level}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    built = config.stash.get(BUILT_BOOK, None)
    if built:
        terminalreporter.section("the book")
        terminalreporter.line(built)
    lines = config.stash.get(REPRODUCIBILITY, [])
    if lines:
        terminalreporter.section("reproducibility checked")
        for line in lines:
            terminalreporter.line(line)


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run with the thread count the shipped models were trained with."""
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def max_of_2_checkpoint():
    return toybook.load_shipped("max_of_2")


def toc_files():
    """The book's pages, as ``_toc.yml`` lists them (``book/intro``, ...)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def _stamped_site() -> Path | None:
    """``_build/html`` where ``make book`` built it from this very commit (no changes)."""
    spec = importlib.util.spec_from_file_location("build_stamp", ROOT / "scripts" / "build_stamp.py")
    build_stamp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_stamp)
    return build_stamp.reusable_site()


BUILT_BOOK = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, pytestconfig):
    """The whole book built from scratch with warnings as errors: ``_build/html``.

    Reused instead of built again: the site ``make book`` stamped as built from the current
    commit with no changes (``scripts/build_stamp.py``), or ``TOYBOOK_BUILT_SITE=_build/html``
    (for iterating on the browser tests). A fresh clone, as in CI, has neither and builds.
    """
    if os.environ.get("TOYBOOK_BUILT_SITE"):
        site = Path(os.environ["TOYBOOK_BUILT_SITE"]).resolve()
        pytestconfig.stash[BUILT_BOOK] = f"reused {site} (TOYBOOK_BUILT_SITE)"
        return site
    stamped = _stamped_site()
    if stamped is not None:
        pytestconfig.stash[BUILT_BOOK] = (f"reused {stamped.relative_to(ROOT)}: make book built "
                                          f"it from this commit ({(stamped / '.built-from').read_text().strip()[:12]})")
        return stamped
    if JUPYTER_BOOK is None:
        pytest.fail("jupyter-book is not installed: install the book extra (pip install -e '.[book]')")
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [JUPYTER_BOOK, "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    pytestconfig.stash[BUILT_BOOK] = "built the book from scratch (no stamped build of this commit)"
    return out / "_build" / "html"
