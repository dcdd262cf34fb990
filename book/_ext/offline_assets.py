"""Serve the JavaScript the book's outputs need from the site itself, one copy per site.

plotly.js is copied from the installed ``plotly`` package into ``_static/vendor/`` and
loaded in every page's head, so figures made with ``toybook.plotting.use_book_renderer``
render with no network. The files are staged outside the book's own ``_static`` folder:
Jupyter Book adds every script found under ``_static`` to every page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import plotly


def stage_assets(app) -> None:
    staging = Path(app.doctreedir).parent / "offline_assets"
    vendor = staging / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copyfile(source, vendor / "plotly.min.js")
    app.config.html_static_path.append(str(staging))
    app.add_js_file("vendor/plotly.min.js", priority=200)


def setup(app):
    app.connect("builder-inited", stage_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
