"""End to end: the book builds from scratch with warnings as errors, and the shipped
max_of_2 preset retrains from the command line to a model that is right on every input."""

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import toybook
from toybook.checkpoint import load_checkpoint
from toybook.cli import main

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def page_text(path):
    text = re.sub(r"<[^>]+>", " ", path.read_text())
    return re.sub(r"\s+", " ", html.unescape(text))


def squashed(text):
    """Text without whitespace: glued values sit in their own elements, so stripping tags
    leaves spaces around them that the prose does not have."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    if JUPYTER_BOOK is None:
        pytest.fail("jupyter-book is not installed: install the book extra (pip install -e '.[book]')")
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [JUPYTER_BOOK, "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out / "_build" / "html"


@pytest.mark.slow
def test_book_builds_every_toc_page(built_book):
    for name in toc_files():
        page = built_book / f"{name}.html"
        assert page.exists(), f"{page} was not built"
        text = page_text(page)
        assert "Traceback" not in text and "Error" not in text.replace("InvalidTokensError", "")


@pytest.mark.slow
def test_book_numbers_come_from_the_model(built_book):
    task = toybook.get_task("max_of_2")
    result = toybook.evaluate(toybook.load_model("max_of_2"), task, task.all_inputs())
    text = page_text(built_book / "book" / "intro.html")
    correct = result.n - result.n_wrong
    assert f"It answers {correct} of the {result.n} inputs correctly, having seen 408 of them" in text
    assert text.count("<table") == 0 and (built_book / "book" / "intro.html").read_text().count("<table") >= 2


@pytest.mark.slow
def test_max_of_2_chapter_glues_the_computed_bound(built_book):
    from toybook.analysis.max_of_2_bound import max_of_2_bound

    bound = max_of_2_bound(toybook.load_model("max_of_2"))
    page = built_book / "book" / "max_of_2.html"
    text = page_text(page)
    assert f"proves that at least {bound.n_certified} of the 4096 inputs" in text
    source = page.read_text()
    assert source.count('class="plotly-graph-div"') >= 7
    assert "cdn.plot.ly" not in source and "plotly.min.js" in source
    assert (built_book / "_static" / "vendor" / "plotly.min.js").exists()
    assert len(source) < 5 * 2**20


@pytest.mark.slow
def test_max_of_2_preset_retrains_to_full_accuracy(tmp_path, capsys):
    assert main(["train", "max_of_2", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert "eval acc 100.0000%" in capsys.readouterr().out
    retrained = load_checkpoint(tmp_path / "m")
    shipped = toybook.load_shipped("max_of_2")
    assert retrained.metadata["train_config"] == shipped.metadata["train_config"]
    tokens = retrained.task.all_inputs()
    assert torch.equal(retrained.model(tokens)[:, -1].argmax(-1), tokens[:, :2].max(1).values)
    assert retrained.metadata["history"] == shipped.metadata["history"]  # same seed, same run
    assert torch.equal(retrained.model(tokens), shipped.model(tokens))


@pytest.mark.slow
def test_list_update_chapter_glues_the_recorded_and_sampled_results(built_book):
    recorded = toybook.load_shipped("list_update").metadata["evaluations"]["exhaustive"]
    page = built_book / "book" / "list_update.html"
    text = squashed(page_text(page))
    assert squashed(f"Of all {recorded['n']:,} inputs, {recorded['n_wrong']:,} have a wrong answer") in text
    assert squashed("Sampled accuracy: 100.0000% (0 wrong)") in text
    source = page.read_text()
    assert source.count('class="plotly-graph-div"') >= 5
    assert source.count('class="toybook-circuitsvis"') == 3
    assert "vendor/circuitsvis.js" in source and "unpkg.com/circuitsvis" not in source
    assert "vendor/circuitsvis.js" not in (built_book / "book" / "intro.html").read_text()
    assert (built_book / "_static" / "vendor" / "circuitsvis.js").exists()
    assert len(source) < 5 * 2**20


@pytest.mark.slow
def test_majority_chapter_glues_the_recorded_accuracy(built_book):
    recorded = toybook.load_shipped("majority").metadata["evaluations"]["uniform_100000_seed12345"]
    page = built_book / "book" / "majority.html"
    text = squashed(page_text(page))
    assert squashed(f"at the last position, {recorded['last_acc']:.4%} ({recorded['last_wrong']} wrong") in text
    assert squashed(f"tie at the last position, {recorded['tie_acc']:.4%}") in text
    source = page.read_text()
    assert source.count('class="plotly-graph-div"') >= 4
    assert source.count('class="toybook-circuitsvis"') == 1 and "vendor/circuitsvis.js" in source
    assert len(source) < 5 * 2**20
