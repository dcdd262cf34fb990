"""End to end: the book builds from scratch with warnings as errors, and `toybook
reproduce max_of_2` retrains the shipped model: bit-identical where the recorded
environment is this machine's, the same behaviour everywhere."""

import contextlib
import html
import html.parser
import io
import re

import pytest
import torch

import toybook
from conftest import record_reproducibility, toc_files
from toybook.checkpoint import load_checkpoint
from toybook.claims import check_claims, claims_for
from toybook.cli import main
from toybook.environment import bit_identity_mismatch, current_environment, describe


def page_text(path):
    text = re.sub(r"<[^>]+>", " ", path.read_text())
    return re.sub(r"\s+", " ", html.unescape(text))


def squashed(text):
    """Text without whitespace: glued values sit in their own elements, so stripping tags
    leaves spaces around them that the prose does not have."""
    return "".join(text.split())


class _Words(html.parser.HTMLParser):
    """The words a reader reads on a page: the article's prose and outputs, not the code
    inputs, scripts or styles."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.hidden, self.words = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        hide = tag in ("script", "style") or "cell_input" in (dict(attrs).get("class") or "")
        self.stack.append(hide)
        self.hidden += hide

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.hidden -= self.stack.pop()

    def handle_data(self, data):
        if not self.hidden:
            self.words += data.split()


def page_words(path):
    """How many words of prose and outputs a built page's article holds (code inputs excluded)."""
    article = re.search(r'<article class="bd-article"[^>]*>(.*)</article>', path.read_text(), re.S)[1]
    parser = _Words()
    parser.feed(article)
    return len(parser.words)


def check_figures(page, plots, views):
    """At least ``plots`` plotly figures and exactly ``views`` attention views, drawn by the
    site's own plotly.js and circuitsvis bundle (the latter only where a view needs it),
    on a page under the 5 MB budget."""
    source = page.read_text()
    assert source.count('class="plotly-graph-div"') >= plots
    assert source.count('class="toybook-circuitsvis"') == views
    assert ("vendor/circuitsvis.js" in source) == (views > 0)
    # a CDN is named only in each snippet's fallback for pages without the library (Colab,
    # a downloaded notebook), behind the check that this page passes; the browser tests
    # show that no request leaves the site
    assert source.count("cdn.plot.ly") == source.count("if (window.Plotly) { draw(); return; }")
    assert source.count("unpkg.com/circuitsvis") == source.count("if (window.CircuitsVis) { render(); return; }")
    assert source.count("unpkg.com/circuitsvis") == views
    assert "plotly.min.js" in source
    assert len(source) < 5 * 2**20


@pytest.mark.slow
def test_book_builds_every_toc_page(built_book):
    for name in toc_files():
        page = built_book / f"{name}.html"
        assert page.exists(), f"{page} was not built"
        text = page_text(page)
        assert "Traceback" not in text and "Error" not in text.replace("InvalidTokensError", "")
        assert "output stderr" not in page.read_text(), f"{name} shows stderr output (a warning?)"


@pytest.mark.slow
def test_book_numbers_come_from_the_model(built_book):
    task = toybook.get_task("max_of_2")
    result = toybook.evaluate(toybook.load_model("max_of_2"), task, task.all_inputs())
    text = page_text(built_book / "book" / "intro.html")
    correct = result.n - result.n_wrong
    assert f"It answers {correct} of the {result.n} inputs correctly, having seen 408 of them" in text
    assert text.count("<table") == 0 and (built_book / "book" / "intro.html").read_text().count("<table") >= 2


@pytest.mark.slow
def test_max_of_2_chapter_glues_the_computed_proofs(built_book):
    from toybook.tasks.max_of_2.bound import max_of_2_bound

    model = toybook.load_model("max_of_2")
    best, brute = max_of_2_bound(model, "grouped_exact"), max_of_2_bound(model, "brute_force")
    page = built_book / "book" / "max_of_2.html"
    text = squashed(page_text(page))
    assert squashed(f"proves all {best.n_certified} of the 4096 inputs right for {best.cost:,} operations, "
                    f"{brute.cost / best.cost:.0f} times fewer than the brute force ({brute.cost:,})") in text
    assert squashed(f"grouped alone certifies {max_of_2_bound(model, 'grouped').n_certified}") in text
    check_figures(page, plots=12, views=0)
    # every seed's accuracy, and every seed's QK scores halfway through its plateau
    check_figures(built_book / "book" / "max_of_2_appendix.html", plots=2, views=0)
    assert (built_book / "_static" / "vendor" / "plotly.min.js").exists()


@pytest.fixture(scope="module")
def reproduced_max_of_2(tmp_path_factory):
    """`toybook reproduce max_of_2` (about 45 s), run once for the two tests below."""
    out, printed = tmp_path_factory.mktemp("reproduced"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["reproduce", "max_of_2", "--out", str(out), "--quiet"])
    shipped = toybook.load_shipped("max_of_2")
    recorded = shipped.metadata["training"]["environment"]
    return code, printed.getvalue(), shipped, load_checkpoint(out / "max_of_2"), recorded


@pytest.mark.slow
def test_retrained_max_of_2_behaves_like_the_shipped_one(reproduced_max_of_2, request):
    """Holds on every machine: the same configs, every input right, every circuit claim."""
    code, printed, shipped, retrained, recorded = reproduced_max_of_2
    assert code == 0 and "max_of_2: retraining for 6000 steps" in printed
    n_claims = len(claims_for("max_of_2"))
    assert "max_of_2: REPRODUCED" in printed and f"claims       {n_claims}/{n_claims} hold" in printed
    for key in ("task", "model_config", "train_config"):
        assert retrained.metadata[key] == shipped.metadata[key]
    tokens = retrained.task.all_inputs()
    assert torch.equal(retrained.model(tokens)[:, -1].argmax(-1), tokens[:, :2].max(1).values)
    results = check_claims("max_of_2", retrained.model)
    assert all(result.holds for result in results), "\n".join(map(str, results))
    record_reproducibility(request, "max_of_2", f"behaviour (configs, 4096/4096 correct, {n_claims} claims)")


@pytest.mark.slow
def test_retrained_max_of_2_is_bit_identical_where_the_environment_matches(reproduced_max_of_2, request):
    """Same seed, same environment, same bits: asserted only where the environment the
    shipped model records is this one; elsewhere the test says why it was skipped."""
    _, printed, shipped, retrained, recorded = reproduced_max_of_2
    reasons = bit_identity_mismatch(recorded, current_environment("cpu"))
    if reasons:
        record_reproducibility(request, "max_of_2", "bit-identity NOT checked: " + "; ".join(reasons))
        pytest.skip("bit-identity is not expected on this machine: " + "; ".join(reasons))
    assert "REPRODUCED, bit-identical" in printed
    assert retrained.metadata["history"] == shipped.metadata["history"]
    tokens = retrained.task.all_inputs()
    assert torch.equal(retrained.model(tokens), shipped.model(tokens))
    for key, value in shipped.model.state_dict().items():
        assert torch.equal(retrained.model.state_dict()[key], value), key
    record_reproducibility(request, "max_of_2", f"bit-identity ({describe(recorded)})")


@pytest.mark.slow
def test_list_update_chapter_glues_the_recorded_and_sampled_results(built_book):
    recorded = toybook.load_shipped("list_update").metadata["evaluations"]["exhaustive"]
    page = built_book / "book" / "list_update.html"
    text = squashed(page_text(page))
    assert squashed(f"Of all {recorded['n']:,} inputs, {recorded['n_wrong']:,} have a wrong answer") in text
    assert squashed("Sampled accuracy: 100.0000% (0 wrong)") in text
    assert "b0correct" in text  # the sampled accuracy by idx: a table (all 100.0000%, no heatmap)
    check_figures(page, plots=4, views=3)
    assert "vendor/circuitsvis.js" not in (built_book / "book" / "intro.html").read_text()
    assert (built_book / "_static" / "vendor" / "circuitsvis.js").exists()


@pytest.mark.slow
def test_majority_chapter_glues_the_recorded_accuracy(built_book):
    recorded = toybook.load_shipped("majority").metadata["evaluations"]["uniform_100000_seed12345"]
    page = built_book / "book" / "majority.html"
    text = squashed(page_text(page))
    assert squashed(f"at the last position, {recorded['last_acc']:.4%} ({recorded['last_wrong']} wrong") in text
    assert squashed(f"tie at the last position, {recorded['tie_acc']:.4%}") in text
    check_figures(page, plots=4, views=1)


@pytest.mark.slow
def test_addition_chapter_glues_the_recorded_accuracy_and_the_interventions(built_book):
    recorded = toybook.load_shipped("addition").metadata["evaluations"]["accuracy_1000000_seed12345"]
    page = built_book / "book" / "addition.html"
    text = squashed(page_text(page))
    assert squashed(f"The two-layer model got {recorded['random_wrong']:,} of a million random questions wrong") in text
    assert squashed("loss above 0.01 are 7: y3, 8: y2, 9: y1, 10: y0, 11: =, 12: A5, 13: A4, 14: A3, 15: A2, "
                    "16: A1.") in text  # positions whose ablation raises the loss
    assert "Hypothesis 3: the cascade is resolved in layer 1" in page_text(page)
    check_figures(page, plots=6, views=3)


@pytest.mark.slow
def test_chapter_pages_have_the_reader_conveniences(built_book):
    page = built_book / "book" / "list_update.html"
    source = page.read_text()
    for link in ("../_sources/book/list_update.ipynb", "../_sources/book/list_update.md"):
        assert f'href="{link}"' in source and (page.parent / link).exists()
        assert "toybook @ git+https://github.com/toybook-org/toybook" in (page.parent / link).read_text()
    assert "https://mybinder.org/v2/gh/toybook-org/toybook/main?urlpath=tree/book/list_update.ipynb" in source
    assert ("https://colab.research.google.com/github/toybook-org/toybook/blob/main/"
            "book/list_update.ipynb") in source  # Colab opens the paired notebook
    assert "btn-launch-thebe" in source and "vendor/toybook-thebe.js" in source  # Live Code
    assert 'const THEBE_JS_URL = "../_static/vendor/thebe/lib/index.js"' in source
    assert source.count("const THEBE_JS_URL") == 1  # declared twice, it throws
    assert "copybutton.js" in source and "search-button" in source
    assert "https://github.com/toybook-org/toybook" in source  # repository button
    assert (built_book / "search.html").exists() and (built_book / "searchindex.js").exists()
    assert "vendor/mathjax/es5/tex-mml-chtml.js" in (built_book / "book" / "majority.html").read_text()
    references = page_text(built_book / "book" / "references.html")
    for author in ("Quirke", "Gross", "Nanda", "Elhage", "TransformerLens"):
        assert author in references


@pytest.mark.slow
def test_max_of_2_appendix_shows_every_seed(built_book):
    from toybook.sweep import read_sweep
    from toybook.zoo import SHIPPED_DIR

    sweep = read_sweep(SHIPPED_DIR, "max_of_2")
    n, grokked = len(sweep), sum(r.generalised_step is not None for r in sweep)
    text = squashed(page_text(built_book / "book" / "max_of_2_appendix.html"))
    assert squashed("Does it hold for other seeds?") in text
    assert squashed(f"{grokked} of the {n} seeds reached 99% test accuracy") in text
    assert squashed(f"holds for {sum(r.all_claims_hold for r in sweep)} of the {n} seeds") in text


@pytest.mark.slow
def test_list_update_appendix_compares_the_shortformer(built_book):
    recorded = toybook.load_shipped("list_update_shortformer").metadata["evaluations"]["exhaustive"]
    text = squashed(page_text(built_book / "book" / "list_update_appendix.html"))
    assert squashed("The reference's architecture: shortformer positions".replace("'", "’")) in text
    assert squashed(f"The shortformer model is also exact: {recorded['n_wrong']:,} wrong of "
                    f"{recorded['n']:,} inputs") in text


CHAPTERS = ("max_of_2", "list_update", "majority", "addition")
LESSON_WORDS = 6000  # prose and outputs a chapter page may hold; the rest is in its appendix


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_each_chapter_is_a_lesson_that_draws_its_circuit_first(built_book, name):
    """Before you start; the circuit diagram (an image named by the circuit in words) before
    the first table; at most LESSON_WORDS words; its appendix linked and built."""
    page = built_book / "book" / f"{name}.html"
    source = page.read_text()
    assert source.count('<figure class="toybook-circuit">') == 1
    assert source.index('<figure class="toybook-circuit">') < source.index("<table")
    label = re.search(r'<figure class="toybook-circuit"><svg role="img" aria-label="([^"]+)"', source)
    assert label and label[1].startswith("Circuit of the reading") and "feeds answer logits" in label[1]
    assert "Before you start" in source and f'href="{name}_appendix.html' in source
    assert page_words(page) <= LESSON_WORDS, f"{name}: {page_words(page)} words"
    appendix = built_book / "book" / f"{name}_appendix.html"
    assert "every seed and every check" in page_text(appendix)


def test_a_page_s_words_leave_out_its_code(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<article class="bd-article"><p>two words</p><div class="cell docutils container">'
                    '<div class="cell_input docutils container"><pre>print("not counted")</pre></div>'
                    '<div class="cell_output"><pre>three more words</pre><script>var x = 1;</script></div>'
                    '</div><br/><img src="a.png"/></article>')
    assert page_words(page) == 5
