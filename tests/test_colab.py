"""Colab beside Binder: every page with code has a paired notebook in sync with its MyST
source, and a first (hidden) cell that installs toybook where it is missing."""

import json
import subprocess
import sys

import yaml
from myst_nb.core.read import read_myst_markdown_notebook

from conftest import ROOT

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
PAGES = [page for page in sorted((ROOT / "book").glob("*.md")) if "```{code-cell}" in page.read_text()]


def test_the_colab_notebooks_are_in_sync_with_the_pages():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "colab_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "book/*.ipynb" in CONFIG["exclude_patterns"]


def test_every_page_installs_toybook_first_where_it_is_missing():
    url = CONFIG["repository"]["url"]
    assert len(PAGES) >= 5
    for page in PAGES:
        first = next(cell for cell in read_myst_markdown_notebook(page.read_text()).cells
                     if cell.cell_type == "code")
        assert first.metadata.get("tags") == ["remove-cell"], page.name
        assert 'find_spec("toybook") is None' in first.source
        assert '"toybook @ git+{{ repository_url }}"' in first.source, page.name
        colab = json.loads(page.with_suffix(".ipynb").read_text())
        first = next(cell for cell in colab["cells"] if cell["cell_type"] == "code")
        assert f"toybook @ git+{url}" in "".join(first["source"]), f"{page.name}: not the repository of _config.yml"


def test_the_repository_address_is_typed_in_one_place():
    """``_config.yml``; the pages, the Colab notebooks (written from the pages) and the launch
    buttons take it from there (book/_ext/repository.py)."""
    url = CONFIG["repository"]["url"]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    typed = [name for name in tracked if not name.endswith(".ipynb") and (ROOT / name).is_file()
             and url in (ROOT / name).read_text(errors="ignore")]
    assert "_config.yml" in typed
    assert [name for name in typed if name.startswith(("book/", "scripts/", "src/"))] == []


def test_a_fork_s_address_reaches_the_pages_and_the_colab_notebooks(tmp_path):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from repository import fill, repository_url

    config = tmp_path / "_config.yml"
    config.write_text((ROOT / "_config.yml").read_text().replace(CONFIG["repository"]["url"], "https://github.com/someone/fork"))
    assert repository_url(config) == "https://github.com/someone/fork"
    assert "git+https://github.com/someone/fork\"" in fill(PAGES[0].read_text(), repository_url(config))


def test_the_install_cell_does_nothing_where_toybook_is_installed(tmp_path):
    first = next(cell for cell in read_myst_markdown_notebook(PAGES[0].read_text()).cells
                 if cell.cell_type == "code")
    pip = tmp_path / "pip-was-called"
    probe = ("import subprocess\n"
             f"subprocess.check_call = lambda *a, **k: open({str(pip)!r}, 'w').close()\n"
             + first.source)
    subprocess.run([sys.executable, "-c", probe], check=True)
    assert not pip.exists()
