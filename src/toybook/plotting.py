"""Plotly figures for the book: an offline renderer and the figure helpers chapters share.

:func:`use_book_renderer` makes figures render as a small HTML snippet that calls the
page's one shared copy of plotly.js (served by the book's ``offline_assets`` extension),
instead of plotly's defaults: a JSON mime type that myst-nb drops, a 4.8 MB inline copy
of plotly.js per figure, or a CDN. Only where the page has no plotly.js — a chapter opened
in Colab or in a downloaded notebook — does the snippet fetch it from plotly's CDN; the
book's pages always have it, so they never load anything from outside.
"""

from __future__ import annotations

import re
from typing import Sequence

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots
from plotly.io._base_renderers import MimetypeRenderer
from plotly.io._utils import plotly_cdn_url

RENDERER = "toybook"


class SharedPlotlyJsRenderer(MimetypeRenderer):
    """``text/html`` that expects ``window.Plotly`` to exist already (loaded by the page)."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(
            fig_dict, include_plotlyjs=False, include_mathjax=False, full_html=False,
            validate=False, auto_play=False,
        )
        return {"text/html": with_plotly_fallback(html)}


def with_plotly_fallback(html: str) -> str:
    """Wrap the figure's script so that it draws at once where ``window.Plotly`` exists
    and otherwise first loads plotly.js from the CDN (Colab, a downloaded notebook)."""
    def wrap(match: re.Match[str]) -> str:
        return (
            f"{match.group(1)}(function () {{\n  function draw() {{ {match.group(2)} }}\n"
            "  if (window.Plotly) { draw(); return; }\n"
            "  var script = document.createElement('script');\n"
            f"  script.src = '{plotly_cdn_url()}'; script.onload = draw;\n"
            "  document.head.appendChild(script);\n})();</script>"
        )

    return re.sub(r"(<script[^>]*>)(.*?)</script>", wrap, html, count=1, flags=re.S)


def use_book_renderer() -> None:
    """Register the shared-plotly.js renderer and make it plotly's default; axes of every
    figure write exponents as powers of ten (plotly's default writes SI prefixes, which
    label a loss of 10⁻⁸ as "10n")."""
    pio.renderers[RENDERER] = SharedPlotlyJsRenderer()
    pio.renderers.default = RENDERER
    pio.templates[RENDERER] = go.layout.Template(layout=dict(
        xaxis=dict(exponentformat="power"), yaxis=dict(exponentformat="power")))
    pio.templates.default = f"plotly+{RENDERER}"


def animated_figure(
    frames: Sequence[go.Frame], labels: Sequence[str], base: go.Figure, prefix: str = "epoch ",
    duration_ms: int = 150,
) -> go.Figure:
    """``base`` with ``frames``, a play/pause button and a slider labelled ``labels``.

    The controls sit below the x-axis titles, the buttons on a row of their own above the
    slider (beside it, they covered its start at narrow widths): give ``base`` a bottom
    margin of about 190 px and a plot area about 230 px tall."""
    base.frames = list(frames)
    step_args = dict(mode="immediate", frame=dict(duration=duration_ms, redraw=True),
                     transition=dict(duration=0))
    base.update_layout(
        updatemenus=[dict(
            type="buttons", direction="left", x=0, y=-0.27, xanchor="left", yanchor="top",
            pad=dict(r=10, t=10), showactive=False,
            buttons=[
                dict(label="▶ play", method="animate", args=[None, {**step_args, "fromcurrent": True}]),
                dict(label="❚❚ pause", method="animate",
                     args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))]),
            ],
        )],
        sliders=[dict(
            x=0, y=-0.45, len=1, yanchor="top", pad=dict(t=0), currentvalue=dict(prefix=prefix),
            steps=[dict(method="animate", label=label, args=[[frame.name], step_args])
                   for frame, label in zip(frames, labels)],
        )],
    )
    return base


def training_animation(
    curves: dict[int, list[float]], history: Sequence[dict], curve_name: str, curve_title: str,
    x_title: str,
) -> go.Figure:
    """An animated figure of a curve measured at each snapshot (``curves``: step → values,
    one per x = 0, 1, ...), beside the train and eval loss and accuracy of ``history`` (the
    training record's rows), with a marker at the snapshot's step on both."""
    steps, epochs = list(curves), [row["step"] for row in history]
    by_step = {row["step"]: row for row in history}
    low, high = min(min(c) for c in curves.values()), max(max(c) for c in curves.values())

    def marker(step: int, key: str) -> dict:
        return dict(x=[step], y=[by_step[step][key]])

    fig = make_subplots(rows=1, cols=3, subplot_titles=(curve_title, "loss<br>(log)", "accuracy"))
    fig.add_scatter(x=list(range(len(curves[steps[0]]))), y=curves[steps[0]], mode="lines+markers",
                    marker_size=4, name=curve_name, row=1, col=1)
    for key, color in [("train", "#1f77b4"), ("eval", "#d62728")]:
        fig.add_scatter(x=epochs, y=[r[f"{key}_loss"] for r in history], line_color=color,
                        name=f"{key} loss", row=1, col=2)
        fig.add_scatter(x=epochs, y=[r[f"{key}_acc"] for r in history], line_color=color,
                        name=f"{key} accuracy", row=1, col=3)
    fig.add_scatter(**marker(steps[0], "eval_loss"), mode="markers", marker=dict(size=11, color="black"),
                    name="now", row=1, col=2)
    fig.add_scatter(**marker(steps[0], "eval_acc"), mode="markers", marker=dict(size=11, color="black"),
                    showlegend=False, row=1, col=3)
    fig.update_yaxes(range=[low - 1, high + 1], row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_xaxes(title_text=x_title, row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=1, col=2)
    fig.update_xaxes(title_text="epoch", row=1, col=3)
    frames = [go.Frame(name=str(step), traces=[0, 5, 6], data=[
        go.Scatter(y=curves[step]), go.Scatter(**marker(step, "eval_loss")), go.Scatter(**marker(step, "eval_acc")),
    ]) for step in steps]
    fig = animated_figure(frames, [str(s) for s in steps], fig)
    fig.update_layout(height=560, margin=dict(t=140, b=190, l=50, r=20),
                      legend=dict(orientation="h", yanchor="bottom", y=1.2, x=0))
    return fig
