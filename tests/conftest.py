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


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The whole book built from scratch with warnings as errors: ``_build/html``.

    ``TOYBOOK_BUILT_SITE=_build/html`` reuses an existing build (for iterating on the
    browser tests); CI never sets it.
    """
    if os.environ.get("TOYBOOK_BUILT_SITE"):
        return Path(os.environ["TOYBOOK_BUILT_SITE"]).resolve()
    if JUPYTER_BOOK is None:
        pytest.fail("jupyter-book is not installed: install the book extra (pip install -e '.[book]')")
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [JUPYTER_BOOK, "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out / "_build" / "html"
