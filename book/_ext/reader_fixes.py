"""Accessibility defects of the theme and of myst-nb, fixed in the written pages.

Each rewrite names the upstream behaviour it works around; each is checked by axe-core in
``tests/test_browser.py`` (``test_no_serious_accessibility_violation``), so a theme update
that fixes one upstream (or changes its markup) shows up there.

- myst-nb 1.4 (``myst_nb.sphinx_.visit_HideCellInput``) names every folded code cell's
  ``<summary>`` "Toggle hidden content", while it shows "Show code cell source": axe's
  ``label-content-name-mismatch``. Without the attribute the summary is named by what it
  shows.
- pydata-sphinx-theme 0.16 labels its search fields "Search" while they show "Search
  Ctrl+K": the same rule. The icon-only search button keeps its label.
- The same theme's colour-mode button is labelled "Color mode", but its three icons carry
  titles ("Light", "Dark", "System Settings") that Font Awesome turns into text inside the
  button: the same rule. The icons lose their titles (the button keeps its tooltip).
- Sphinx 7 writes the bibliography as ``<div role="list" class="citation-list">`` whose
  children (``role="doc-biblioentry"`` entries and their back-links) are not list items:
  axe's ``aria-required-children`` (critical). The list role goes; the entries keep theirs.
"""

from __future__ import annotations

import re
from pathlib import Path

REWRITES = (
    ('<summary aria-label="Toggle hidden content">', "<summary>"),
    ('class="btn search-button-field search-button__button pst-js-only" title="Search" aria-label="Search"',
     'class="btn search-button-field search-button__button pst-js-only" title="Search"'),
    ('<div role="list" class="citation-list">', '<div class="citation-list">'),
)


THEME_ICON_TITLE = re.compile(r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"')


def rewrite(html: str) -> str:
    for old, new in REWRITES:
        html = html.replace(old, new)
    return THEME_ICON_TITLE.sub(r'\1 aria-hidden="true"', html)


def fix_pages(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = rewrite(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("build-finished", fix_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
