"""Attention views (circuitsvis) that render from one page-wide copy of the circuitsvis bundle.

circuitsvis' own ``_repr_html_`` asks the network on every call (``urlopen`` of an outside
host with a 1 s timeout) and then either imports its bundle from a CDN or inlines all
1.3 MB of it into each view. The views made here do neither: the HTML is a ``div`` plus a
short script calling ``window.CircuitsVis.render``, and the page provides ``CircuitsVis``
once (the book's ``offline_assets`` extension adds ``circuitsvis/dist/cdn/iife.js`` to
every page that shows a view). Only where the page has no bundle — a chapter opened in
Colab or in a downloaded notebook — does the view fetch it, from unpkg.

Once drawn, each view is tidied for readers (:data:`TIDY_JS`), where circuitsvis 1.43's
``AttentionHeads`` falls short: its headings ("Head Selector (hover to view, click to
lock)", each head's label) join the page's outline, so they get ``role="none"``; its head
labels, set in the page's heading size on tiles a twelfth of the view wide, overflow their
tiles, so they get a small font and the tiles a minimum width; its labels are white on the
head's colour (1.7:1 on cyan), so each gets black or white, whichever contrasts more
(always at least 4.58:1); and its canvases have no accessible name, so each is named
after its head. React redraws the view on hover and click; an observer tidies it again.

Shapes: H heads, Q query (destination) positions, K key (source) positions.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import circuitsvis
import torch
from circuitsvis.utils.convert_props import convert_props

from toybook.errors import ToybookError

CSS_CLASS = "toybook-circuitsvis"
TILE_MIN_PX = 64
TIDY_JS = """function tidy(element, n_tokens) {
  function luminance(css) {
    var rgb = (css.match(/[\\d.]+/g) || [255, 255, 255]).slice(0, 3).map(function (c) {
      c = Number(c) / 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }
  element.querySelectorAll("h1, h2, h3, h4, h5, h6").forEach(function (h) { h.setAttribute("role", "none"); });
  element.querySelectorAll("h3").forEach(function (h) { h.style.setProperty("font-size", "1rem"); });
  element.querySelectorAll("h2, h4").forEach(function (label) {
    if (label.tagName === "H4") {
      label.style.setProperty("font-size", "12px");
      label.style.setProperty("line-height", "1.4");
      label.style.setProperty("padding", "0 3px");
    }
    label.style.setProperty("white-space", "nowrap");
    var dark = luminance(getComputedStyle(label).backgroundColor) > 0.179;
    label.style.setProperty("color", dark ? "#000" : "#fff");
  });
  element.querySelectorAll("div").forEach(function (tile) {
    if (tile.style.flexBasis.indexOf("8.33") === 0) tile.style.setProperty("min-width", "%dpx");
  });
  element.querySelectorAll("canvas").forEach(function (canvas) {
    var box = canvas.parentElement, label = null;
    while (box && box !== element && !label) {
      label = box.querySelector(":scope > h2, :scope > h4");
      box = box.parentElement;
    }
    var name = label ? label.textContent : "a head";
    canvas.setAttribute("aria-label", "attention pattern of " + name + " over " + n_tokens + " tokens");
  });
}""" % TILE_MIN_PX
BUNDLE_CDN = f"https://unpkg.com/circuitsvis@{circuitsvis.__version__}/dist/cdn/iife.js"


@dataclass(frozen=True)
class CircuitsVisView:
    """One circuitsvis component with its props; displays itself as HTML in notebooks."""

    component: str  # a name exported by the circuitsvis bundle, e.g. "AttentionHeads"
    props: dict[str, Any]

    def _repr_html_(self) -> str:
        element = f"circuits-vis-{uuid.uuid4().hex[:12]}"
        props = convert_props(self.props)
        n_tokens = len(self.props.get("tokens") or [])
        missing = html.escape(
            "This attention view needs the circuitsvis bundle (circuitsvis/dist/cdn/iife.js); "
            "the page has none and it could not be loaded."
        )
        return (
            f'<div id="{element}" class="{CSS_CLASS}" style="margin: 15px 0;"></div>\n'
            "<script>(function () {\n"
            f'  var element = document.getElementById("{element}");\n'
            f"  {TIDY_JS.replace(chr(10), chr(10) + '  ')}\n"
            "  function render() {\n"
            f"    window.CircuitsVis.render(element.id, window.CircuitsVis.{self.component}, {props});\n"
            "    var observer = new MutationObserver(function () {\n"
            "      observer.disconnect();\n"
            f"      tidy(element, {n_tokens});\n"
            "      observer.observe(element, {childList: true, subtree: true, characterData: true, attributes: true});\n"
            "    });\n"
            f"    tidy(element, {n_tokens});\n"
            "    observer.observe(element, {childList: true, subtree: true, characterData: true, attributes: true});\n"
            "  }\n"
            "  function draw() {\n"
            "    if (window.CircuitsVis) { render(); return; }\n"
            "    var script = document.createElement('script');\n"
            f"    script.src = '{BUNDLE_CDN}'; script.onload = render;\n"
            f'    script.onerror = function () {{ element.textContent = "{missing}"; }};\n'
            "    document.head.appendChild(script);\n"
            "  }\n"
            '  if (document.readyState === "complete") draw(); else window.addEventListener("load", draw);\n'
            "})();</script>"
        )


def attention_heads(
    patterns: torch.Tensor, tokens: Sequence[str], head_names: Sequence[str] | None = None
) -> CircuitsVisView:
    """An interactive view of attention ``patterns [H, Q, K]`` over ``tokens`` (length K = Q).

    Each head appears as a thumbnail; clicking one enlarges it, hovering shows the weights.
    """
    try:
        patterns = torch.as_tensor(patterns, dtype=torch.float32).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ToybookError(f"patterns must be attention weights [heads, n, n] (a tensor, e.g. "
                           f"cache['blocks.0.attn.hook_pattern'][0]), got {type(patterns).__name__}") from None
    if patterns.ndim != 3 or patterns.shape[1] != patterns.shape[2]:
        raise ToybookError(f"patterns must have shape [heads, n, n], got {list(patterns.shape)}")
    if len(tokens) != patterns.shape[-1]:
        raise ToybookError(f"{len(tokens)} token labels for patterns over {patterns.shape[-1]} positions")
    if head_names is not None and len(head_names) != len(patterns):
        raise ToybookError(f"{len(head_names)} head names for {len(patterns)} heads")
    return CircuitsVisView(
        "AttentionHeads",
        dict(
            attention=patterns.round(decimals=4).tolist(),
            tokens=list(tokens),
            attentionHeadNames=list(head_names) if head_names is not None else None,
            maskUpperTri=True,
        ),
    )
