"""Serve the JavaScript the book's outputs need from the site itself, one copy per site.

- plotly.js, copied from the installed ``plotly`` package, is loaded in every page's head,
  so figures made with ``toybook.plotting.use_book_renderer`` render with no network.
- the circuitsvis bundle (``circuitsvis/dist/cdn/iife.js``) is added only to pages that
  contain a view made by ``toybook.attention_view``.

The files are staged outside the book's own ``_static`` folder: Jupyter Book adds every
script found under ``_static`` to every page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import circuitsvis
import plotly

from toybook.attention_view import CSS_CLASS

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
CIRCUITSVIS_JS = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"


def stage_assets(app) -> None:
    staging = Path(app.doctreedir).parent / "offline_assets"
    vendor = staging / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLOTLY_JS, vendor / "plotly.min.js")
    shutil.copyfile(CIRCUITSVIS_JS, vendor / "circuitsvis.js")
    app.config.html_static_path.append(str(staging))
    app.add_js_file("vendor/plotly.min.js", priority=200)


def add_circuitsvis_where_used(app, pagename, templatename, context, doctree) -> None:
    if CSS_CLASS in context.get("body", ""):
        app.add_js_file("vendor/circuitsvis.js", priority=200)


def setup(app):
    app.connect("builder-inited", stage_assets)
    app.connect("html-page-context", add_circuitsvis_where_used)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
