"""Attention views render as a small snippet against the page's circuitsvis bundle, offline."""

import urllib.request

import pytest
import torch

from toybook.attention_view import CSS_CLASS, attention_heads


def test_view_is_small_asks_no_network_and_loads_no_cdn(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the attention view must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    pattern = torch.softmax(torch.randn(2, 5, 5), -1).tril()
    html = attention_heads(pattern, ["a", "b", "c", "d", "e"], ["L0", "L1"])._repr_html_()
    assert CSS_CLASS in html and "window.CircuitsVis.render" in html and "AttentionHeads" in html
    assert "import " not in html and len(html) < 5_000
    # the bundle is fetched only where the page has none (Colab, a downloaded notebook)
    assert "if (window.CircuitsVis) { render(); return; }" in html
    assert html.index("if (window.CircuitsVis)") < html.index("unpkg.com/circuitsvis@")


def test_plotly_figures_draw_from_the_page_s_plotly_and_fetch_it_only_without():
    import plotly.graph_objects as go
    import plotly.io as pio

    from toybook.plotting import RENDERER, use_book_renderer

    use_book_renderer()
    html = pio.renderers[RENDERER].to_mimebundle(go.Figure(go.Scatter(y=[1, 2])).to_dict())["text/html"]
    assert "if (window.Plotly) { draw(); return; }" in html
    assert html.index("if (window.Plotly)") < html.index("https://cdn.plot.ly/plotly-")
    assert html.count("<script") == 1 and "Plotly.newPlot" in html and len(html) < 20_000


def test_book_figures_write_exponents_as_powers_of_ten():
    """Plotly's default tick labels use SI prefixes: a loss of 1e-8 reads "10n"."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from toybook.plotting import use_book_renderer

    use_book_renderer()
    for figure in (go.Figure(go.Scatter(y=[1e-8, 1])), make_subplots(rows=1, cols=2)):
        layout = figure.layout.template.layout
        assert layout.xaxis.exponentformat == layout.yaxis.exponentformat == "power"


def test_two_views_get_different_elements():
    pattern = torch.eye(3)[None]
    view = attention_heads(pattern, ["x", "y", "z"])
    assert view._repr_html_().split('"')[1] != view._repr_html_().split('"')[1]


@pytest.mark.parametrize("shape, tokens, names, message", [
    ((3, 3), 3, None, "shape \\[heads, n, n\\]"),
    ((1, 3, 4), 4, None, "shape \\[heads, n, n\\]"),
    ((1, 3, 3), 2, None, "2 token labels for patterns over 3 positions"),
    ((2, 3, 3), 3, ["only one"], "1 head names for 2 heads"),
])
def test_bad_shapes_are_named(shape, tokens, names, message):
    with pytest.raises(ValueError, match=message):
        attention_heads(torch.zeros(shape), [str(i) for i in range(tokens)], names)


def test_views_are_tidied_for_readers_after_every_redraw():
    """The browser test checks the result (tests/test_browser.py); here, that every view
    carries the tidying and re-runs it when React redraws."""
    html = attention_heads(torch.rand(2, 3, 3).softmax(-1), ["a", "b", "c"], ["h0", "h1"])._repr_html_()
    assert "function tidy(element, n_tokens)" in html and html.count("tidy(element, 3)") == 2
    assert 'setAttribute("role", "none")' in html and "aria-label" in html
    assert "new MutationObserver" in html
