"""One repository address for the whole book: ``repository.url`` in ``_config.yml``.

Jupyter Book builds the launch buttons and the repository button from it. The chapters'
install cells (which run only where toybook is missing: Colab, a downloaded notebook) name
it as ``{{ repository_url }}``, which this extension writes in as each page is read, and
``scripts/colab_notebooks.py`` does the same for the Colab notebooks; the copies of the
sources a reader downloads from a page get it when the build finishes. A fork sets its own
address there, and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TOKEN = "{{ repository_url }}"
CONFIG = Path(__file__).resolve().parents[2] / "_config.yml"


def repository_url(config: Path = CONFIG) -> str:
    """The address in ``_config.yml``, without a trailing slash."""
    return yaml.safe_load(config.read_text())["repository"]["url"].rstrip("/")


def fill(text: str, url: str) -> str:
    return text.replace(TOKEN, url)


def setup(app):
    url = (app.config.html_theme_options or {}).get("repository_url") or repository_url()

    def source_read(app, docname, source):
        source[0] = fill(source[0], url.rstrip("/"))

    def sources_copied(app, exception):  # the page's source a reader downloads
        if exception is None and app.builder.format == "html":
            for copy in (Path(app.outdir) / "_sources").rglob("*"):
                if copy.is_file() and copy.suffix in {".md", ".txt", ".ipynb"}:
                    text = copy.read_text(encoding="utf-8")
                    if TOKEN in text:
                        copy.write_text(fill(text, url.rstrip("/")), encoding="utf-8")

    app.connect("source-read", source_read)
    app.connect("build-finished", sources_copied)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
