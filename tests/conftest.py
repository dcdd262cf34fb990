import functools
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


def record_reproducibility(request, name, level):
    """Note which reproducibility level a test checked, for the run's closing summary."""
    request.node.user_properties.append(("reproducibility checked", f"{name}: {level}"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The notes tests left in their reports' ``user_properties`` (which also reach this
    summary from pytest-xdist's workers): how the book was had, what reproduced how."""
    notes = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for section, line in getattr(report, "user_properties", ()):
                if line not in notes.setdefault(section, []):
                    notes[section].append(line)
    for section in ("the book", "reproducibility checked", "in-browser models"):
        if notes.get(section):
            terminalreporter.section(section)
            for line in notes[section]:
                terminalreporter.line(line)


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run with the thread count the shipped models were trained with."""
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def max_of_2_checkpoint():
    return toybook.load_shipped("max_of_2")


def shipped_claim_results(name):
    """``check_claims(name, load_model(name))`` for a shipped model: measured once per test
    run, keyed on the checkpoint's weights SHA-256, and shared by every test that asserts on
    it (the claims of every shipped model take minutes in all)."""
    return _claim_results(name, toybook.load_shipped(name).metadata["weights"]["sha256"])


@functools.cache
def _claim_results(name, sha256):
    from toybook.claims import check_claims

    torch.set_num_threads(2)
    return tuple(check_claims(name, toybook.load_model(name)))


def toc_files():
    """The book's pages, as ``_toc.yml`` lists them (``book/intro``, ...)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def add(entries):
        for entry in entries:
            files.append(entry["file"])
            add(entry.get("sections", []))

    for part in toc.get("parts", []):
        add(part["chapters"])
    return files


def _stamped_site() -> Path | None:
    """``_build/html`` where ``make book`` built it from this very commit (no changes)."""
    spec = importlib.util.spec_from_file_location("build_stamp", ROOT / "scripts" / "build_stamp.py")
    build_stamp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_stamp)
    return build_stamp.reusable_site()


BOOK_NOTE = []  # how this process had the book, for the reports of the tests that used it


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if BOOK_NOTE and "built_book" in getattr(item, "fixturenames", ()):
        report.user_properties.append(("the book", BOOK_NOTE[0]))
    return report


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    site, how = _book(tmp_path_factory)
    BOOK_NOTE.append(how)
    return site


def _book(tmp_path_factory):
    """The whole book built from scratch with warnings as errors: ``_build/html``.

    Reused instead of built again: the site ``make book`` stamped as built from the current
    commit with no changes (``scripts/build_stamp.py``), or ``TOYBOOK_BUILT_SITE=_build/html``
    (for iterating on the browser tests). A fresh clone, as in CI, has neither and builds.
    """
    if os.environ.get("TOYBOOK_BUILT_SITE"):
        site = Path(os.environ["TOYBOOK_BUILT_SITE"]).resolve()
        return site, f"reused {site} (TOYBOOK_BUILT_SITE)"
    stamped = _stamped_site()
    if stamped is not None:
        return stamped, (f"reused {stamped.relative_to(ROOT)}: make book built it from this commit "
                         f"({(stamped / '.built-from').read_text().strip()[:12]})")
    if JUPYTER_BOOK is None:
        pytest.fail("jupyter-book is not installed: install the book extra (pip install -e '.[book]')")
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [JUPYTER_BOOK, "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out / "_build" / "html", "built the book from scratch (no stamped build of this commit)"
