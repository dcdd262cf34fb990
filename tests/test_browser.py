"""The built site in a real browser: offline-complete pages, figures that render, live cells.

Headless Chromium from the system (Debian's ``chromium``) driven by Playwright; never
``playwright install``. Every chapter page is served from 127.0.0.1 and must make no
request to any other host, log no JavaScript error, and render every plotly figure,
circuitsvis view and formula. Screenshots go to ``test-artifacts/screenshots``. The live
test starts ``toybook.live.LiveSite`` (a local Jupyter server), activates Thebe on a
chapter and waits for a cell's output to appear in the page.
"""

import contextlib
import functools
import http.server
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest

from conftest import ROOT, toc_files

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("TOYBOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
LOCAL = {"127.0.0.1"}


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright for Python: pip install -e '.[test]'")
    if CHROMIUM is None:
        pytest.skip(
            "browser tests need a Chromium executable: apt-get install chromium "
            "(or set TOYBOOK_CHROMIUM to its path)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(built_book):
    handler = functools.partial(QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def outside_requests(urls):
    return [url for url in urls if urlparse(url).scheme in {"http", "https", "ws", "wss"}
            and urlparse(url).hostname not in LOCAL]


# every attention view's problems as a reader meets them: headings in the page outline,
# canvases without a name, head labels that overflow their tile, labels under 4.5:1 contrast
ATTENTION_VIEW_PROBLEMS = r"""
() => {
  const problems = [];
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map(c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const parse = (css) => (css.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
  document.querySelectorAll('.toybook-circuitsvis').forEach((view, v) => {
    view.querySelectorAll('h1,h2,h3,h4,h5,h6').forEach(h => {
      const role = h.getAttribute('role');
      if (role !== 'none' && role !== 'presentation') problems.push(`view ${v}: heading <${h.tagName}> "${h.textContent}" in the page outline`);
    });
    view.querySelectorAll('canvas').forEach((c, i) => {
      if (!(c.getAttribute('aria-label') || '').trim()) problems.push(`view ${v}: canvas ${i} has no accessible name`);
    });
    view.querySelectorAll('h2, h4').forEach(label => {
      const box = label.getBoundingClientRect(), tile = label.parentElement.getBoundingClientRect();
      if (box.width === 0) return;
      const style = getComputedStyle(label);
      const one_line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
      if (label.tagName === 'H4' && (box.left < tile.left - 1 || box.right > tile.right + 1 || label.scrollWidth > label.clientWidth + 1 || box.height > 1.6 * one_line))
        problems.push(`view ${v}: label "${label.textContent}" (${Math.round(box.width)}x${Math.round(box.height)} px) does not fit its ${Math.round(tile.width)} px tile`);
      const fg = luminance(parse(style.color)), bg = luminance(parse(style.backgroundColor));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) problems.push(`view ${v}: label "${label.textContent}" contrast ${ratio.toFixed(2)}:1`);
    });
    view.querySelectorAll('h3').forEach(heading => {  // on whatever is behind it: the view's panel or the page
      let behind = null;
      for (let node = heading; node && !behind; node = node.parentElement) {
        const c = parse(getComputedStyle(node).backgroundColor), alpha = (getComputedStyle(node).backgroundColor.match(/[\d.]+/g) || [])[3];
        if (c.length === 3 && (alpha === undefined || Number(alpha) > 0)) behind = c;
      }
      const fg = luminance(parse(getComputedStyle(heading).color)), bg = luminance(behind || [255, 255, 255]);
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) problems.push(`view ${v}: heading "${heading.textContent}" contrast ${ratio.toFixed(2)}:1`);
    });
  });
  return problems;
}
"""

# every text of a plotly figure (titles, axis titles, tick labels, legend, subplot titles)
# under 4.5:1 against what is behind it: the figure's paper, or the page where it is clear
FIGURE_TEXT_CONTRAST = r"""
() => {
  const channels = (css) => (css.match(/[\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => [r, g, b].map(c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  let page = 'rgb(255, 255, 255)';
  for (let node = document.querySelector('.plotly-graph-div'); node; node = node.parentElement) {
    const bg = getComputedStyle(node).backgroundColor, c = channels(bg);
    if (c.length >= 3 && (c.length < 4 || c[3] > 0)) { page = bg; break; }
  }
  const problems = [];
  document.querySelectorAll('.plotly-graph-div').forEach((plot, i) => {
    const paper = channels(plot._fullLayout.paper_bgcolor);
    const behind = paper.length >= 4 && paper[3] === 0 ? channels(page) : paper;
    plot.querySelectorAll('.gtitle, .xtitle, .ytitle, [class^="x"][class$="title"], [class^="y"][class$="title"], '
                          + '.xtick text, .ytick text, .legendtext, .cbtitle text, .cbaxis text').forEach(text => {
      if (!text.textContent.trim() || text.getBoundingClientRect().width === 0) return;
      const fg = luminance(channels(getComputedStyle(text).fill)), bg = luminance(behind);
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) problems.push(`figure ${i}: "${text.textContent.slice(0, 30)}" ${ratio.toFixed(2)}:1`);
    });
  });
  return [...new Set(problems)];
}
"""

# what a reader sees of a figure's layout, figure by figure: text cut by the figure's edge,
# text under 10 px, two texts printed over each other (their boxes, rotated as drawn, overlap
# by more than 3 px: a box is a line's height, glyphs less), a figure wider than its column;
# and a page wider than the window (it scrolls sideways)
FIGURE_LAYOUT_PROBLEMS = r"""
() => {
  const problems = [];
  const corners = (el) => {
    const b = el.getBBox(), m = el.getScreenCTM();
    if (!m || b.width === 0 || b.height === 0) return null;
    return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
      .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
  };
  const depth = (p, q) => {  // separating axis theorem on convex quadrilaterals: the least overlap
    let least = Infinity;
    for (const poly of [p, q]) for (let i = 0; i < 4; i++) {
      const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
      const nx = y2 - y1, ny = x1 - x2, len = Math.hypot(nx, ny) || 1;
      const proj = (s) => s.map(([x, y]) => (x * nx + y * ny) / len);
      const a = proj(p), b = proj(q);
      least = Math.min(least, Math.min(Math.max(...a), Math.max(...b)) - Math.max(Math.min(...a), Math.min(...b)));
    }
    return least;
  };
  const name = (t) => JSON.stringify(t.textContent.slice(0, 25));
  document.querySelectorAll('.plotly-graph-div').forEach((plot, i) => {
    const frame = plot.getBoundingClientRect();
    const texts = [...plot.querySelectorAll('svg.main-svg text')].filter(t => {
      if (!t.textContent.trim() || t.closest('.hoverlayer') || t.closest('.menulayer') && !t.closest('.updatemenu-container')) return false;
      const style = getComputedStyle(t);
      return style.display !== 'none' && style.visibility !== 'hidden' && Number(style.opacity) !== 0 && t.getBoundingClientRect().width > 0;
    }).map(t => [t, corners(t)]).filter(([, c]) => c);
    for (const [t, c] of texts) {
      const size = parseFloat(getComputedStyle(t).fontSize);
      if (size < 10) problems.push(`figure ${i}: ${name(t)} is ${size.toFixed(1)} px`);
      const xs = c.map(p => p[0]), ys = c.map(p => p[1]);
      if (Math.min(...xs) < frame.left - 1 || Math.max(...xs) > frame.right + 1 || Math.min(...ys) < frame.top - 1 || Math.max(...ys) > frame.bottom + 1)
        problems.push(`figure ${i}: ${name(t)} is cut by the figure's edge`);
    }
    for (let a = 0; a < texts.length; a++) for (let b = a + 1; b < texts.length; b++) {
      const [s, p] = texts[a], [t, q] = texts[b];
      if (s.contains(t) || t.contains(s)) continue;
      const d = depth(p, q);
      if (d > 3) problems.push(`figure ${i}: ${name(s)} overlaps ${name(t)} by ${d.toFixed(1)}`);
    }
    const column = plot.closest('.cell_output') || plot.parentElement, edge = column.getBoundingClientRect().right;
    if (frame.right > edge + 1 && !plot.closest('.toybook-wide')) problems.push(`figure ${i}: ${Math.round(frame.width)} px wide in a ${Math.round(column.getBoundingClientRect().width)} px column`);
  });
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${window.innerWidth} px window`);
  return problems;
}
"""

# a legend, play/pause button or slider drawn over a figure's title, a subplot title,
# an axis title or another of these controls
PLOTLY_OVERLAPS = r"""
() => {
  const problems = [];
  const boxes = (root, selector) => [...root.querySelectorAll(selector)].map(e => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.width > 0 && r.height > 0);
  const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  document.querySelectorAll('.plotly-graph-div').forEach((plot, i) => {
    const controls = [...boxes(plot, 'g.legend'), ...boxes(plot, 'g.updatemenu-container g.updatemenu-button'),
                      ...boxes(plot, 'g.slider-container')];
    const titles = [...boxes(plot, '.g-gtitle text, .g-xtitle text, .g-ytitle text, .g-x2title text, .g-y2title text, [class^="g-x"][class$="title"] text, [class^="g-y"][class$="title"] text, g.annotation-text-g text')];
    for (const [c, cr] of controls) for (const [t, tr] of titles)
      if (hit(cr, tr)) problems.push(`figure ${i}: ${c.getAttribute('class')} covers "${t.textContent}"`);
    const kinds = [boxes(plot, 'g.legend'), boxes(plot, 'g.updatemenu-container g.updatemenu-button'),
                   boxes(plot, 'g.slider-container')];
    kinds.forEach((one, a) => kinds.slice(a + 1).forEach(other => {
      for (const [c, cr] of one) for (const [d, dr] of other)
        if (hit(cr, dr)) problems.push(`figure ${i}: ${c.getAttribute('class')} covers ${d.getAttribute('class')}`);
    }));
  });
  return [...new Set(problems)];
}
"""

# the chromatic colour words a figure's title, subplot titles or legend name, figure by
# figure (black, grey and white are left out: every figure has text in them)
NAMED_COLOURS = r"""
() => [...document.querySelectorAll('.plotly-graph-div')].map(plot => {
  const text = [...plot.querySelectorAll('.gtitle, .legendtext, g.annotation-text-g text')]
    .map(t => t.textContent).join(' ').toLowerCase();
  return [...new Set(text.match(/\b(red|orange|yellow|green|cyan|blue|purple|pink)\b/g) || [])];
})
"""

# pixels of a PNG screenshot (base64) per colour word, by hue; decoded by the browser
COLOUR_PIXELS = r"""
async (png) => {
  const image = new Image();
  image.src = 'data:image/png;base64,' + png;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, image.width, image.height).data;
  const counts = {red: 0, orange: 0, yellow: 0, green: 0, cyan: 0, blue: 0, purple: 0, pink: 0};
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i] / 255, g = data[i + 1] / 255, b = data[i + 2] / 255;
    const max = Math.max(r, g, b), min = Math.min(r, g, b), delta = max - min;
    if (max < 0.35 || delta / max < 0.35) continue;
    let hue = max === r ? 60 * (((g - b) / delta) % 6) : max === g ? 60 * ((b - r) / delta + 2)
      : 60 * ((r - g) / delta + 4);
    if (hue < 0) hue += 360;
    const name = hue < 15 || hue >= 340 ? 'red' : hue < 45 ? 'orange' : hue < 70 ? 'yellow'
      : hue < 170 ? 'green' : hue < 200 ? 'cyan' : hue < 260 ? 'blue' : hue < 300 ? 'purple' : 'pink';
    counts[name] += 1;
  }
  return counts;
}
"""
MIN_PIXELS = 40  # a legend swatch or one heatmap cell at 390 px


def colours_not_shown(page):
    """``{figure index: colour words its text names but its pixels do not show}``."""
    import base64

    missing = {}
    for i, words in enumerate(page.evaluate(NAMED_COLOURS)):
        if not words:
            continue
        figure = page.locator(".plotly-graph-div").nth(i)
        figure.scroll_into_view_if_needed()
        counts = page.evaluate(COLOUR_PIXELS, base64.b64encode(figure.screenshot()).decode())
        absent = [word for word in words if counts[word] < MIN_PIXELS]
        if absent:
            missing[i] = absent
    return missing


# every table or printed output wider than its column, and whether a visible cue (from
# book/_ext/toybook-reader.js) stands right above it
WIDE_WITHOUT_CUE = r"""
() => [...document.querySelectorAll('.pst-scrollable-table-container, div.cell_output pre')]
  .filter(box => box.scrollWidth > box.clientWidth + 1 && box.getBoundingClientRect().width > 0)
  .filter(box => {
    const cue = box.previousElementSibling;
    return !(cue && cue.classList.contains('toybook-scroll-cue') && cue.getBoundingClientRect().height > 0
             && /scroll/.test(cue.textContent));
  })
  .map(box => box.textContent.trim().replace(/\s+/g, ' ').slice(0, 60))
"""


AXE_CORE = "4.14.1"


@pytest.fixture(scope="module")
def axe_js():
    """axe-core from the npm registry, fetched once like the book's other npm assets."""
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from offline_assets import npm_package

    return (npm_package("axe-core", AXE_CORE) / "axe.min.js").read_text()


WIDTHS = (1280, 390)
THEMES = ("light", "dark")
VIEW_PAGES = ["book/addition", "book/list_update", "book/majority"]


@dataclass
class Seen:
    """What the checks below read of one page at one width and theme. Each page is opened
    and drawn once per width and theme for all of them (a heavy chapter takes seconds to
    draw), and its requests and errors are recorded from the first request to the last check."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    traces: list[int] = field(default_factory=list)  # data traces per plotly figure
    view_texts: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    n_wide: int = 0
    wide_without_cue: list[str] = field(default_factory=list)
    named_colours: list[list[str]] = field(default_factory=list)
    colours_missing: dict[int, list[str]] = field(default_factory=dict)
    accessibility: list[str] = field(default_factory=list)  # serious or critical axe violations
    layout_problems: list[str] = field(default_factory=list)  # FIGURE_LAYOUT_PROBLEMS
    view_problems: list[str] = field(default_factory=list)  # as drawn, then after a hover
    zoomed_label: str | None = None
    hovered_label: str | None = None
    unreadable_figure_text: list[str] = field(default_factory=list)  # under 4.5:1 on what is behind it
    figure_themes: list[str] = field(default_factory=list)  # the theme each figure was drawn in


def open_drawn(browser, site, name, width, seen=None, theme="light"):
    """A page of the site at ``width`` px, once every plotly figure, attention view and
    formula is drawn, for a reader whose system is in ``theme`` ("light" or "dark": the
    book follows it); ``seen`` records its requests and JavaScript errors from the start."""
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=theme)
    if seen is not None:
        page.on("request", lambda request: seen.requests.append(request.url))
        page.on("console", lambda message: seen.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.goto(f"{site}/{name}.html", wait_until="load")
    page.wait_for_function(  # drawn, and laid out for this width by book/_ext/toybook-fit.js
        "() => [...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('svg.main-svg')"
        " && d.dataset.toybookFit) && [...document.querySelectorAll('.toybook-circuitsvis')].every(v => v.querySelector('canvas'))",
        timeout=30_000,
    )
    if page.locator("div.math, span.math").count():
        page.wait_for_selector("mjx-container", timeout=20_000)
    page.wait_for_function(f"() => document.documentElement.dataset.theme === '{theme}'", timeout=5_000)
    page.wait_for_timeout(300)
    return page


def look(browser, site, axe_js, name, width, theme="light"):
    """Open ``name`` at ``width`` in ``theme`` and read everything the checks assert on, in an
    order that leaves each reading as it was on a freshly drawn page: the hover over an
    attention view, which redraws it, comes last. In dark mode, only what the theme changes
    is read again (text contrast, the views' labels), with the page's requests and errors."""
    seen, started = Seen(), time.monotonic()
    page = open_drawn(browser, site, name, width, seen, theme)
    seen.traces = page.evaluate(
        "() => [...document.querySelectorAll('.plotly-graph-div')].map(d => (d._fullData || []).length)")
    seen.view_texts = page.evaluate("() => [...document.querySelectorAll('.toybook-circuitsvis')].map(v => v.textContent)")
    seen.figure_themes = page.evaluate(
        "() => [...document.querySelectorAll('.plotly-graph-div')].map(d => d.dataset.toybookTheme || 'light')")
    seen.unreadable_figure_text = page.evaluate(FIGURE_TEXT_CONTRAST)
    seen.layout_problems = page.evaluate(FIGURE_LAYOUT_PROBLEMS)
    seen.accessibility = accessibility(page, axe_js)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if theme == "dark":
        seen.view_problems = page.evaluate(ATTENTION_VIEW_PROBLEMS) if seen.view_texts else []
        page.screenshot(path=str(ARTIFACTS / f"{name.replace('/', '_')}_{width}_dark.png"), full_page=True)
    else:
        read_light_page(page, seen, axe_js, name, width)
    page.wait_for_timeout(max(0, 1500 - 1000 * (time.monotonic() - started)))  # late requests too
    page.close()
    return seen


def accessibility(page, axe_js):
    """axe-core's critical and serious violations (WCAG 2.1 A and AA, best practices), and
    any of the experimental rules td-has-header and focus-order-semantics (the latter rates
    a focusable box without a role "minor"), as drawn."""
    page.add_script_tag(content=axe_js)
    return page.evaluate("""async () => (await axe.run(document, {resultTypes: ["violations"],
            rules: {"td-has-header": {enabled: true}, "focus-order-semantics": {enabled: true}}}))
        .violations.filter(v => v.impact === "critical" || v.impact === "serious"
                                || v.id === "td-has-header" || v.id === "focus-order-semantics")
        .map(v => `${v.impact} ${v.id} (${v.nodes.length}): ${v.nodes[0].target.join(" ")}`)""")


def read_light_page(page, seen, axe_js, name, width):
    """The checks made in light mode only: figure controls, wide blocks, named colours, and
    the attention views before and after a hover."""
    seen.overlaps = page.evaluate(PLOTLY_OVERLAPS)
    if name == "book/max_of_2":  # the animation: its legend, buttons and slider
        animation = page.locator(".plotly-graph-div:has(g.updatemenu-container)").first
        animation.scroll_into_view_if_needed()
        animation.screenshot(path=str(ARTIFACTS / f"max_of_2_animation_{width}.png"))
    seen.n_wide = page.evaluate("() => document.querySelectorAll('.toybook-wide').length")
    seen.wide_without_cue = page.evaluate(WIDE_WITHOUT_CUE)
    if width == 390 and name == "book/intro":
        page.locator(".toybook-scroll-cue").last.evaluate("cue => cue.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(200)
        page.screenshot(path=str(ARTIFACTS / "intro_models_table_390.png"))
    seen.named_colours = page.evaluate(NAMED_COLOURS)
    seen.colours_missing = colours_not_shown(page)
    page.screenshot(path=str(ARTIFACTS / f"{name.replace('/', '_')}_{width}.png"), full_page=True)
    if seen.view_texts:
        seen.view_problems = page.evaluate(ATTENTION_VIEW_PROBLEMS)
        last_tile = page.locator(".toybook-circuitsvis").first.locator("canvas").nth(-2)
        last_tile.scroll_into_view_if_needed()
        last_tile.hover()  # the enlarged view switches head: React redraws it
        page.wait_for_timeout(300)
        seen.view_problems += [f"after a hover: {problem}" for problem in page.evaluate(ATTENTION_VIEW_PROBLEMS)]
        seen.zoomed_label = page.locator(".toybook-circuitsvis").first.locator("canvas").last.get_attribute("aria-label")
        seen.hovered_label = last_tile.get_attribute("aria-label")
        if width == 390:
            page.locator(".toybook-circuitsvis").first.screenshot(
                path=str(ARTIFACTS / f"attention_view_{name.replace('/', '_')}_390.png"))


@pytest.fixture(scope="module")
def seen(browser, site, axe_js):
    """``seen(name, width)``: the :class:`Seen` of a page, looked at once per test run; a
    page that could not be drawn fails every test that reads it, with the same error."""
    cache = {}

    def get(name, width, theme="light"):
        key = (name, width, theme)
        if key not in cache:
            try:
                cache[key] = look(browser, site, axe_js, name, width, theme)
            except Exception as error:  # noqa: BLE001 (re-raised to each reader)
                cache[key] = error
        if isinstance(cache[key], Exception):
            raise cache[key]
        return cache[key]

    return get


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", toc_files())
def test_page_is_offline_complete_and_renders(seen, name, width, theme):
    page = seen(name, width, theme)
    assert all(n > 0 for n in page.traces), f"plotly figures without data on {name}: {page.traces}"
    assert not any("could not be loaded" in text for text in page.view_texts)
    assert not outside_requests(page.requests), f"{name} asked outside hosts: {outside_requests(page.requests)}"
    assert not page.errors, f"JavaScript errors on {name}: {page.errors}"
    if name in {"book/list_update", "book/majority", "book/max_of_2"}:
        assert len(page.traces) >= 3


def test_the_view_pages_are_the_ones_with_views(built_book):
    with_views = [name for name in toc_files()
                  if "toybook-circuitsvis" in (built_book / f"{name}.html").read_text()]
    assert sorted(with_views) == VIEW_PAGES


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", VIEW_PAGES)
def test_attention_views_read_well(seen, name, width):
    """On today's circuitsvis alone, every page fails this (see toybook.attention_view)."""
    page = seen(name, width)
    assert page.view_texts and page.view_problems == []
    assert page.zoomed_label == page.hovered_label and page.zoomed_label.startswith("attention pattern of ")


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", WIDTHS)
def test_figures_follow_the_theme_and_their_text_reads(seen, width, theme):
    """Before book/_ext/toybook-theme.js, every plotly figure stayed white on the dark page."""
    themes = {name: seen(name, width, theme).figure_themes for name in toc_files()}
    assert sum(map(len, themes.values())) >= 20
    assert {name: [t for t in drawn if t != theme] for name, drawn in themes.items()} == {name: [] for name in themes}
    unreadable = {name: seen(name, width, theme).unreadable_figure_text for name in toc_files()
                  if seen(name, width, theme).unreadable_figure_text}
    assert unreadable == {}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", VIEW_PAGES)
def test_attention_views_read_well_in_dark_mode(seen, name, width):
    assert seen(name, width, "dark").view_problems == []


def test_figures_follow_a_theme_switched_while_the_page_is_open(browser, site):
    """The reader's toggle: dark, light and dark again, each figure redrawn each time (black
    marks drawn light on the dark plot), and the light layout it had at first restored exactly."""
    page = open_drawn(browser, site, "book/max_of_2", 1280, theme="light")
    layout = ("() => [...document.querySelectorAll('.plotly-graph-div')].map(d => JSON.stringify("
              "[d._fullLayout.paper_bgcolor, d._fullLayout.plot_bgcolor, d._fullLayout.font.color, "
              "d._fullLayout.xaxis.gridcolor, d.dataset.toybookTheme || 'light', "
              "d.data.map(t => [t.marker && t.marker.color, t.line && t.line.color])]))")
    black = ("() => [...document.querySelectorAll('.plotly-graph-div')].flatMap(d => d.data)"
             ".flatMap(t => [t.marker && t.marker.color, t.line && t.line.color]).filter(c => c === 'black').length")
    light = page.evaluate(layout)
    assert len(light) >= 10 and all('"light"' in figure for figure in light) and page.evaluate(black) > 0
    for theme in ("dark", "light", "dark"):
        page.evaluate(f"() => {{ document.documentElement.dataset.theme = '{theme}'; }}")
        page.wait_for_function(f"() => [...document.querySelectorAll('.plotly-graph-div')]"
                               f".every(d => (d.dataset.toybookTheme || 'light') === '{theme}')", timeout=10_000)
        now = page.evaluate(layout)
        assert (now == light) == (theme == "light")
        assert (page.evaluate(black) == 0) == (theme == "dark")  # the "now" marker: light on a dark plot
        assert page.evaluate(FIGURE_TEXT_CONTRAST) == []
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_no_figure_control_covers_a_title(seen, width):
    found = {name: seen(name, width).overlaps for name in toc_files() if seen(name, width).overlaps}
    assert found == {}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_colour_a_figure_names_is_shown(seen, width):
    found = {name: seen(name, width).colours_missing for name in toc_files() if seen(name, width).colours_missing}
    n_named = sum(bool(words) for name in toc_files() for words in seen(name, width).named_colours)
    assert found == {} and n_named >= 3


def test_the_colour_check_can_fail(browser, site):
    """A figure titled "wrong (red)" drawn in blue is caught; drawn in red, it passes."""
    page = open_drawn(browser, site, "book/intro", 1280)
    for colour, caught in (("#1f77b4", {0: ["red"]}), ("#d62728", {})):
        page.evaluate("""(colour) => {
            document.querySelectorAll('.plotly-graph-div').forEach(d => d.remove());
            const div = document.createElement('div');
            div.className = 'plotly-graph-div';
            document.querySelector('main').prepend(div);
            return Plotly.newPlot(div, [{type: 'bar', x: [1, 2, 3], y: [3, 1, 2], marker: {color: colour}}],
                                  {title: {text: 'wrong answers (red)'}, width: 500, height: 300});
        }""", colour)
        assert colours_not_shown(page) == caught
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_no_wide_block_hides_without_a_cue(seen, width):
    """On the pages before book/_ext/toybook-reader.js, 19 tables and printed outputs at
    1280 px and 46 at 390 px scrolled sideways with no sign of it (the scrollbar shows only
    on hover, at the bottom)."""
    found = {name: seen(name, width).wide_without_cue for name in toc_files() if seen(name, width).wide_without_cue}
    assert found == {} and sum(seen(name, width).n_wide for name in toc_files()) > 0


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", toc_files())
def test_no_serious_accessibility_violation(seen, name, width, theme):
    violations = seen(name, width, theme).accessibility
    assert violations == [], f"{name}: {violations}"


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", toc_files())
def test_figures_fit_the_page(seen, name, width, theme):
    """Every figure's text inside the figure, 10 px or larger, none printed over another, no
    figure wider than its column and no page wider than the window. Before
    book/_ext/toybook-fit.js and the chapters' fixes, at 390 px: 33 problems on max_of_2,
    15 on list_update, 197 on majority, 1,333 on addition, and max_of_2 and addition 412 and
    405 px wide."""
    problems = seen(name, width, theme).layout_problems
    assert problems == [], f"{name} at {width} px: {problems[:20]}"


@pytest.mark.parametrize("theme", THEMES)
def test_the_theme_s_own_controls_read_and_appear_once(browser, site, theme):
    """The back-to-top button was white on orange (2.45:1), and a header band at desktop
    widths held a second "Search Ctrl+K" field (book/_ext/toybook-reader.css)."""
    page = open_drawn(browser, site, "book/methods", 1280, theme=theme)
    searches = page.evaluate("() => [...document.querySelectorAll('.search-button-field')]"
                             ".filter(b => b.getBoundingClientRect().width > 0).length")
    ratio = page.evaluate("""() => {
        const channels = (css) => (css.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
        const luminance = ([r, g, b]) => [r, g, b].map(c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; })
          .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
        const style = getComputedStyle(document.querySelector('#pst-back-to-top'));
        const [fg, bg] = [luminance(channels(style.color)), luminance(channels(style.backgroundColor))];
        return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    }""")
    page.close()
    assert searches == 1 and ratio >= 4.5, (searches, ratio)


def test_a_figure_fitted_to_a_phone_is_laid_out_again_when_the_window_widens(browser, site):
    """A phone turned, a window resized: the desktop layout comes back exactly, and a phone
    layout again after, with no problem at either width."""
    layout = ("() => [...document.querySelectorAll('.plotly-graph-div')].map(d => JSON.stringify("
              "[d._fullLayout.height, d._fullLayout.title.text, d._fullLayout.margin, (d._fullLayout.legend || {}).orientation, "
              "(d._fullLayout.annotations || []).map(a => [a.text, a.x, a.y]), d._fullLayout.xaxis.domain, "
              "d.data.map(t => t.texttemplate || null)]))")
    fitted = "(w) => [...document.querySelectorAll('.plotly-graph-div')].every(d => Number(d.dataset.toybookFit) <= w)"
    page = open_drawn(browser, site, "book/max_of_2", 1280)
    wide = page.evaluate(layout)
    for width in (390, 1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function(fitted, arg=width, timeout=20_000)
        page.wait_for_function("(w) => [...document.querySelectorAll('.plotly-graph-div')].every(d => Number(d.dataset.toybookFit) > w / 2)",
                               arg=width, timeout=20_000)
        page.wait_for_timeout(300)
        assert (page.evaluate(layout) == wide) == (width == 1280)
        assert page.evaluate(FIGURE_LAYOUT_PROBLEMS) == []
    page.close()


def test_the_bibliography_labels_entries_as_the_text_cites_them(built_book):
    """Before book/_ext/reader_fixes.py's style, the text cited "Elhage et al., 2021" and the
    list labelled that entry [ENO+21]."""
    import html
    import re

    references = (built_book / "book" / "references.html").read_text()
    labels = {anchor: html.unescape(label) for anchor, label in re.findall(
        r'<div class="citation" id="(\w+)" role="listitem">\s*<span class="label">'
        r'<span class="fn-bracket">\[</span>([^<]*)<', references)}
    assert len(labels) == len(re.findall(r"^@", (ROOT / "book" / "references.bib").read_text(), re.M))
    cited = {}
    for name in toc_files():
        for anchor, text in re.findall(r'href="references\.html#(\w+)"[^>]*>(.*?)</a>',
                                       (built_book / f"{name}.html").read_text()):
            cited[html.unescape(re.sub(r"<[^>]+>", "", text)).replace(",", "")] = anchor
    assert len(cited) >= 8
    assert {text: labels.get(anchor) for text, anchor in cited.items()} == {text: text for text in cited}


def test_no_cell_output_is_a_python_object_repr(built_book):
    """A stray ``<torch.autograd.grad_mode.set_grad_enabled object at 0x...>`` under a cell."""
    import re

    pattern = re.compile(r"&lt;[\w.]+ object at 0x[0-9a-f]+&gt;|set_grad_enabled")
    assert pattern.search("&lt;torch.autograd.grad_mode.set_grad_enabled object at 0x7f3a2c1d&gt;")
    found, n_outputs = {}, 0
    for name in toc_files():
        outputs = re.findall(r'<div class="cell_output[^"]*">(.*?)</div>\s*</div>',
                             (built_book / f"{name}.html").read_text(), flags=re.S)
        n_outputs += len(outputs)
        hits = [hit for output in outputs for hit in pattern.findall(output)]
        if hits:
            found[name] = hits
    assert n_outputs > 100 and found == {}


@pytest.fixture(scope="module")
def live_site(built_book):
    """``toybook live`` (a local Jupyter server) serving the built book, for the tests below;
    each page that starts Live Code gets a kernel of its own."""
    from toybook.live import LiveSite

    with LiveSite(built_book, root_dir=ROOT) as live:
        yield live


@contextlib.contextmanager
def live_page(browser, live, path):
    """A page of the built book served by ``toybook live``; on exit, asserts that it asked
    no outside host and logged no JavaScript error."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live.url}/{path}", wait_until="load")
    yield page
    page.close()
    assert not outside_requests(requests), outside_requests(requests)
    assert not errors, errors


def test_live_cells_run_on_a_local_jupyter_server(browser, live_site):
    with live_page(browser, live_site, "book/list_update.html") as page:
        page.locator(".dropdown-launch-buttons button.dropdown-toggle").first.click()
        started = time.monotonic()
        page.locator("button.btn-launch-thebe").first.click()
        page.wait_for_selector(".thebe-cell", state="attached", timeout=30_000)
        page.wait_for_function("() => window.toybookThebe && window.toybookThebe.ready", timeout=10_000)
        page.evaluate("() => window.toybookThebe.ready.then(() => true)")  # kernel up, setup cell sent
        ready_seconds = time.monotonic() - started
        # `task` and `model` exist only if the chapter's hidden setup cell (thebe-init) ran
        code = "print('live-ok', task.n_ctx, model.cfg.n_layers, toybook.load_model('max_of_2').cfg.d_model)"
        page.evaluate(  # the chapter's inputs are folded away, so edit and run through the DOM
            """code => {
                const cell = document.querySelectorAll('.thebe-cell')[1];
                cell.querySelector('.CodeMirror').CodeMirror.setValue(code);
                cell.querySelector('.thebe-run-button').click();
            }""",
            code,
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('.thebe-output')].some(o => o.textContent.includes('live-ok 11 2 32'))",
            timeout=90_000,
        )
        seconds = time.monotonic() - started
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live_cell.png"))
        (ARTIFACTS.parent / "live_cell_seconds.txt").write_text(
            f"list_update: kernel ready {ready_seconds:.2f} s after Live Code; "
            f"output of a cell run after the setup cell {seconds:.2f} s\n"
        )


def test_an_exercise_solution_unfolds_and_its_checker_runs_live(browser, live_site):
    """The implement-exercise of list update: its solution is folded until clicked, and
    its cell, run through Live Code on the local server, gets the checker's verdict."""
    with live_page(browser, live_site, "book/list_update.html") as page:
        exercises = page.locator("div.exercise.admonition")
        solutions = page.locator("div.solution.dropdown.admonition")
        assert exercises.count() >= 3 and solutions.count() == exercises.count()
        solution = solutions.filter(has_text="check_copy_sources")
        code = solution.locator(".cell_input")
        assert not code.is_visible()  # folded
        solution.locator(".admonition-title").click()
        code.wait_for(state="visible", timeout=5_000)
        page.locator(".dropdown-launch-buttons button.dropdown-toggle").first.click()
        page.locator("button.btn-launch-thebe").first.click()
        page.wait_for_function("() => window.toybookThebe && window.toybookThebe.ready", timeout=30_000)
        page.evaluate("() => window.toybookThebe.ready.then(() => true)")
        cell = solution.locator(".thebe-cell")
        cell.wait_for(state="attached", timeout=30_000)
        cell.locator(".thebe-run-button").click()
        page.wait_for_function(
            """() => [...document.querySelectorAll('div.solution .thebe-output')]
                   .some(o => o.textContent.includes('✓ copy sources (list_update): all 5 cases pass'))""",
            timeout=90_000,
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "exercise_checker_live.png"))


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("server", ["binder", "local", "not_jupyter"])
def test_live_code_that_cannot_start_says_why_and_restores_the_cells(browser, site, server):
    """Binder unreachable (every outside host refused, as offline), a local server that is not
    running, or one that answers but is no Jupyter server (Thebe has made the cells editors by
    then): within 10 s the page says what happened and what to do instead, the cells are back
    in their static, executed form, and no error is left uncaught."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route(lambda url: urlparse(url).hostname not in LOCAL, lambda route: route.abort())
    base = {"local": f"http://127.0.0.1:{free_port()}/", "not_jupyter": f"{site}/"}.get(server)
    if base:  # as toybook.live injects it
        page.add_init_script(f"window.TOYBOOK_LIVE = {{baseUrl: '{base}', "
                             f"wsUrl: '{base.replace('http', 'ws')}', token: 'x'}};")
    uncaught = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))
    page.goto(f"{site}/book/max_of_2.html", wait_until="load")
    page.wait_for_function("() => [...document.querySelectorAll('.plotly-graph-div')].every(d => d.dataset.toybookFit)",
                           timeout=30_000)  # the figures as fitted to the page (toybook-fit.js), before the snapshot
    page.wait_for_timeout(300)
    cells = "() => [...document.querySelectorAll('div.cell')].map(c => c.innerHTML.replace(/ tabindex=\"-?\\d\"/g, ''))"
    static = page.evaluate(cells)
    page.locator(".dropdown-launch-buttons button.dropdown-toggle").first.click()
    started = time.perf_counter()
    page.locator("button.btn-launch-thebe").first.click()
    page.wait_for_selector("#toybook-live-failed", timeout=10_000)
    seconds = time.perf_counter() - started
    note = page.locator("#toybook-live-failed").inner_text()
    page.wait_for_timeout(500)  # anything Thebe does late
    assert "Live code could not start" in note and "make live" in note and "Colab" in note
    assert ("mybinder.org" if server == "binder" else "local Jupyter server") in note
    assert "cannot be reached" in note if server != "not_jupyter" else "could not start a kernel" in note
    assert page.locator(".thebe-cell, .CodeMirror").count() == 0, "the cells stay editors"
    assert page.evaluate(cells) == static
    assert page.evaluate("() => window.toybookThebe.ready.then(value => value)") is None
    assert not uncaught, f"uncaught errors: {uncaught}"
    assert "Live code unavailable" in page.locator(".thebe-launch-button").first.inner_text()
    assert seconds < 10
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"live_code_failed_{server}.png"))
    page.close()
