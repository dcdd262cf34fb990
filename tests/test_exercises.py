"""The book's exercises: every chapter has at least three, each solution in the book passes
its checker, and typical wrong answers get specific feedback, not a bare "wrong"."""

import ast
import re

import pytest
import torch

import toybook
from myst_nb.core.read import read_myst_markdown_notebook

from conftest import ROOT
from toybook.errors import ToybookError
from toybook.tasks.list_update.analysis import b2_route, hypothesised_sources
from toybook.tasks.list_update.task import ListUpdateTask
from toybook.zoo import shipped_names
from toybook.exercises import (
    check_carries, check_copy_sources, check_qk_token_scores, check_running_histogram,
    reference_carries,
)

CHAPTERS = ["list_update", "addition", "majority", "max_of_2"]


def chapter(name):
    return (ROOT / "book" / f"{name}.md").read_text()


def solution_cells(name):
    notebook = read_myst_markdown_notebook(chapter(name))
    return [cell.source for cell in notebook.cells
            if cell.cell_type == "code" and "exercise-solution" in cell.metadata.get("tags", [])]


def run_cell(source):
    """Execute a cell as a notebook would (with ``torch`` imported, as every chapter's setup
    cell does) and return its last expression's value."""
    tree = ast.parse(source)
    namespace = {"torch": torch}
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace) if last else None


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_has_three_or_more_exercises_with_folded_solutions(name):
    text = chapter(name)
    exercises = re.findall(r"^```\{exercise-start\}", text, flags=re.M)
    solutions = re.findall(r"^```\{solution-start\} (\S+)\n:class: dropdown", text, flags=re.M)
    labels = re.findall(r"^```\{exercise-start\}.*\n:label: (\S+)", text, flags=re.M)
    assert len(exercises) >= 3 and sorted(solutions) == sorted(labels) and len(labels) == len(exercises)


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_book_s_solutions_pass_their_checkers(name):
    checked = 0
    for source in solution_cells(name):
        if "check_" not in source:
            continue
        feedback = run_cell(source)
        assert feedback.passed, feedback.message
        assert feedback.message.startswith("✓")
        checked += 1
    assert checked >= 1, f"{name}: no solution runs a checker"


def test_copy_sources_feedback_names_the_mistake():
    always_a = check_copy_sources(lambda tokens: torch.tensor([1, 2, 3]).repeat(len(tokens), 1))
    assert not always_a and "case idx = 0" in always_a.message
    assert "this always copies a_k" in always_a.message and "expected 6, got 1" in always_a.message
    shifted = check_copy_sources(lambda tokens: hypothesised_sources(tokens) - 1)
    assert not shifted and "BOS holds position 0" in shifted.message
    elt_for_b2 = check_copy_sources(
        lambda tokens: torch.where(tokens[:, 5:6] == torch.arange(3), 6, torch.arange(1, 4)))
    assert not elt_for_b2 and "case idx = 2" in elt_for_b2.message
    assert "second NL (position 7)" in elt_for_b2.message
    wrong_shape = check_copy_sources(lambda tokens: hypothesised_sources(tokens)[:, :2])
    assert "expected shape [1, 3], got [1, 2]" in wrong_shape.message
    crashing = check_copy_sources(lambda tokens: tokens.nonsense)
    assert "your function raised AttributeError" in crashing.message


@pytest.mark.parametrize("name", [n for n in shipped_names() if n.startswith("list_update")])
def test_copy_sources_expects_what_each_shipped_model_does(name):
    """The checker's answer is measured on the model it names: the position its layer-1 head
    attends to most, for every answer of every case; seeds whose b2 route differs from the
    chapter's get the other answer, and the other route is the named mistake."""
    model = toybook.load_model(name)
    seen = []

    def attended(tokens):
        _, cache = model.run_with_cache(tokens, names_filter="blocks.1.attn.hook_pattern")
        seen.append(tokens)
        return cache["blocks.1.attn.hook_pattern"][:, 0, [7, 8, 9]].argmax(-1)

    feedback = check_copy_sources(attended, model=name)
    assert feedback, feedback.message
    assert len(seen) == 5 and any((tokens[:, 5] == 2).any() for tokens in seen)
    reads_elt = b2_route(model, ListUpdateTask().generate(300, seed=11)) == 6
    chapter = check_copy_sources(hypothesised_sources, model=name)
    assert bool(chapter) != reads_elt
    if reads_elt:
        assert "reads elt itself (position 6) for b2 too" in chapter.message


def test_copy_sources_refuses_a_model_of_another_task():
    with pytest.raises(ToybookError, match="'max_of_2' is a 'max_of_2' model"):
        check_copy_sources(hypothesised_sources, model="max_of_2")


def test_carries_feedback_names_the_mistake():
    def no_cascade(x, y):
        return torch.cat([torch.zeros(len(x), 1, dtype=torch.bool), x + y >= 10], 1)

    feedback = check_carries(no_cascade)
    assert not feedback and "case a cascade: 99,995 + 5" in feedback.message
    assert "the carry cascades" in feedback.message
    carry_out = check_carries(lambda x, y: torch.cat(
        [reference_carries(x, y)[:, 1:], torch.zeros(len(x), 1, dtype=torch.bool)], 1))
    assert not carry_out and "case one carry: 5 + 5" in carry_out.message
    assert "carry out of each column" in carry_out.message


def test_running_histogram_feedback_names_the_mistake():
    from toybook import get_task

    task = get_task("majority")
    counts = check_running_histogram(lambda tokens: task.running_counts(tokens).double())
    assert not counts and "these are counts" in counts.message
    assert "case one value repeated" in counts.message and "expected 1, got 2" in counts.message

    def exclusive(tokens):
        c = task.running_counts(tokens).double()
        c = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], 1)
        return c / torch.arange(1, tokens.shape[1] + 1)[None, :, None]

    feedback = check_running_histogram(exclusive)
    assert not feedback and "attends to itself too" in feedback.message


def test_qk_scores_feedback_names_the_mistake():
    from toybook.analysis.circuits import one_layer_circuits

    def unscaled(model):
        return one_layer_circuits(model, 64, 2).qk_token * model.cfg.d_head**0.5

    feedback = check_qk_token_scores(unscaled)
    assert not feedback and "divided by sqrt(d_head)" in feedback.message

    def token_only(model):
        E, W_Q, W_K = model.W_E.double(), model.W_Q[0, 0].double(), model.W_K[0, 0].double()
        return E @ W_K @ W_Q.T @ E[64] / model.cfg.d_head**0.5

    feedback = check_qk_token_scores(token_only)
    assert not feedback and "W_E[=] + W_pos[2]" in feedback.message
    other = check_qk_token_scores(lambda model: torch.zeros(65, dtype=torch.float64))
    assert not other and "hint: score(t) =" in other.message

    def scaled_by_d_model(model):  # right on the shipped model, whose d_head = d_model
        return one_layer_circuits(model, 64, 2).qk_token * (model.cfg.d_head / model.cfg.d_model) ** 0.5

    feedback = check_qk_token_scores(scaled_by_d_model)
    assert not feedback and "d_head 8 < d_model 32" in feedback.message
    assert "not sqrt(d_model)" in feedback.message


def _histogram_with_nan(tokens):
    task = toybook.get_task("majority")
    histogram = task.running_counts(tokens).double() / torch.arange(1, tokens.shape[1] + 1)[None, :, None]
    histogram[:, -1, 0] = float("nan")
    return histogram


@pytest.mark.parametrize("checker, answer, words", [
    (check_carries, lambda x, y: None, "your function returned None"),
    (check_running_histogram, lambda tokens: None, "your function returned None"),
    (check_copy_sources, lambda tokens: "positions", "not a tensor of numbers"),
    (check_qk_token_scores, lambda model: [[1.0], [1.0, 2.0]], "not a tensor of numbers"),
    (check_running_histogram, _histogram_with_nan, "expected 0, got nan"),
    (check_qk_token_scores, lambda model: torch.full((65,), float("nan")), "got nan"),
])
def test_checkers_report_none_nan_and_non_tensors(checker, answer, words):
    """A reader's answer of None, a NaN or something that is no tensor gets a report, never
    a raw exception and never a pass (NaN > tolerance is False: it must still fail)."""
    feedback = checker(answer)
    assert not feedback and words in feedback.message, feedback.message
