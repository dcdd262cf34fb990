"""Attention views (circuitsvis) that render from one page-wide copy of the circuitsvis bundle.

circuitsvis' own ``_repr_html_`` asks the network on every call (``urlopen`` of an outside
host with a 1 s timeout) and then either imports its bundle from a CDN or inlines all
1.3 MB of it into each view. The views made here do neither: the HTML is a ``div`` plus a
short script calling ``window.CircuitsVis.render``, and the page provides ``CircuitsVis``
once (the book's ``offline_assets`` extension adds ``circuitsvis/dist/cdn/iife.js`` to
every page that shows a view). Only where the page has no bundle — a chapter opened in
Colab or in a downloaded notebook — does the view fetch it, from unpkg.

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
BUNDLE_CDN = f"https://unpkg.com/circuitsvis@{circuitsvis.__version__}/dist/cdn/iife.js"


@dataclass(frozen=True)
class CircuitsVisView:
    """One circuitsvis component with its props; displays itself as HTML in notebooks."""

    component: str  # a name exported by the circuitsvis bundle, e.g. "AttentionHeads"
    props: dict[str, Any]

    def _repr_html_(self) -> str:
        element = f"circuits-vis-{uuid.uuid4().hex[:12]}"
        props = convert_props(self.props)
        missing = html.escape(
            "This attention view needs the circuitsvis bundle (circuitsvis/dist/cdn/iife.js); "
            "the page has none and it could not be loaded."
        )
        return (
            f'<div id="{element}" class="{CSS_CLASS}" style="margin: 15px 0;"></div>\n'
            "<script>(function () {\n"
            f'  var element = document.getElementById("{element}");\n'
            "  function render() {\n"
            f"    window.CircuitsVis.render(element.id, window.CircuitsVis.{self.component}, {props});\n"
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
    patterns = torch.as_tensor(patterns, dtype=torch.float32).detach().cpu()
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
