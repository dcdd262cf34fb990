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
  children are ``role="doc-biblioentry"`` entries: not list items, axe's
  ``aria-required-children`` (critical), and a role that DPUB-ARIA 1.1 deprecates (axe's
  ``aria-deprecated-role``). The entries become list items of the list.
- The same theme scrolls a wide table inside ``.pst-scrollable-table-container``, whose
  scrollbar browsers with overlay scrollbars show only on hover, at the table's bottom:
  ``toybook-reader.js`` puts a visible cue above every table or printed output wider than
  the page ("4 of its 7 columns show; scroll it sideways for the rest").
- The theme's dark mode darkens the page but not plotly's figures, which stay white boxes:
  ``toybook-theme.js`` redraws each figure's backgrounds, text, grid and controls dark in
  dark mode (black marks light), and puts its light layout back when the reader switches to
  light; ``toybook-reader.css`` lifts the figures off the light box the theme gives every
  output in dark mode, and puts the attention views on a light card of their own.
- Plotly shrinks a figure laid out for a desktop column onto a phone: titles cut, subplot
  titles over each other, heatmap text of 3 px. ``toybook-fit.js`` lays each figure out
  again for the width it is shown at, where something does not fit.
- The same theme's sidebar opens a chapter's sections (its appendix) with a ``<summary>``
  that holds only a chevron icon: a control with no name (axe's ``summary-name``, serious).
  It is named "Sections of" the chapter.
- The same theme draws a header band at desktop widths holding only a second search
  field, and a back-to-top button at 2.45:1; a long name in inline code made a phone's
  page scroll sideways. ``toybook-reader.css`` fixes the three.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

HERE = Path(__file__).parent
STATIC = ("toybook-reader.js", "toybook-theme.js", "toybook-fit.js", "toybook-reader.css")

REWRITES = (
    ('<summary aria-label="Toggle hidden content">', "<summary>"),
    ('class="btn search-button-field search-button__button pst-js-only" title="Search" aria-label="Search"',
     'class="btn search-button-field search-button__button pst-js-only" title="Search"'),
    ('role="doc-biblioentry"', 'role="listitem"'),
)


THEME_ICON_TITLE = re.compile(r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"')
TOC_TOGGLE = re.compile(r'(<li class="toctree-l\d[^"]*has-children[^"]*">\s*<a [^>]*>)(.*?)(</a>\s*<details[^>]*>\s*<summary)>')


def _named_toggle(match: re.Match) -> str:
    title = re.sub(r"<[^>]+>", "", match[2]).replace('"', "&quot;")
    return f'{match[1]}{match[2]}{match[3]} aria-label="Sections of {title}">'


def rewrite(html: str) -> str:
    for old, new in REWRITES:
        html = html.replace(old, new)
    html = TOC_TOGGLE.sub(_named_toggle, html)
    return THEME_ICON_TITLE.sub(r'\1 aria-hidden="true"', html)


def fix_pages(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = rewrite(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def stage_static(app) -> None:
    staging = Path(app.doctreedir).parent / "reader_fixes"
    staging.mkdir(parents=True, exist_ok=True)
    for name in STATIC:
        shutil.copyfile(HERE / name, staging / name)
    app.config.html_static_path.append(str(staging))
    app.add_js_file("toybook-reader.js")
    app.add_js_file("toybook-theme.js")
    app.add_js_file("toybook-fit.js")
    app.add_css_file("toybook-reader.css")


def _author_year_style():
    """pybtex's unsrt style with author-year labels, entries sorted by author and year."""
    from pybtex.style.formatting.unsrt import Style
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = []
            for entry in sorted_entries:
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                names = [re.sub(r"[{}\\]", "", " ".join(p.last_names)) for p in people]
                who = (names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2
                       else f"{names[0]} et al." if names else entry.key)
                labels.append(f"{who} {entry.fields.get('year', 'n.d.')}")
            for label in labels:  # Smith 2020a, Smith 2020b where two would read the same
                if labels.count(label) > 1:
                    same = [i for i, other in enumerate(labels) if other == label]
                    for letter, i in zip("abcdefghij", same):
                        labels[i] = f"{label}{letter}"
            yield from labels

    class AuthorYearStyle(Style):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    return AuthorYearStyle


def setup(app):
    from pybtex.plugin import register_plugin

    register_plugin("pybtex.style.formatting", "toybook_author_year", _author_year_style())
    app.connect("builder-inited", stage_static)
    app.connect("build-finished", fix_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
