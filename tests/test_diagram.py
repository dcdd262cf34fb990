"""Circuit diagrams (toybook.analysis.diagram): drawn from the readings the faithfulness
measure scores, with edges only where the architecture lets an output reach an input, the
measured drops in the boxes, and the circuit in words for a screen reader."""

from __future__ import annotations

import re
import shutil

import pytest

import toybook
from toybook.analysis.diagram import circuit_diagram
from toybook.analysis.faithfulness import Part, Reading, faithfulness, whole
from toybook.analysis.patching import head, mlp, neurons
from toybook.errors import ToybookError
from toybook.tasks.list_update.hypotheses import READING
from toybook.tasks.max_of_2.hypotheses import readings as max_of_2_readings

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def by_title(diagram):
    return {(node.title, node.positions): node.key for node in diagram.nodes}


def test_max_of_2_is_one_head_between_the_tokens_and_the_answer():
    task = toybook.get_task("max_of_2")
    diagram = circuit_diagram(max_of_2_readings()[0], task, 1)
    assert [node.key for node in diagram.nodes] == ["embed", "g0", "answer"]
    assert set(diagram.edges) == {("embed", "g0"), ("g0", "answer"), ("embed", "answer")}
    head_node = diagram.nodes[1]
    assert head_node.title == "L0H0" and head_node.reads == "reads only the larger operand"
    assert "at = (2)" in head_node.where and head_node.drop is None
    assert "L0H0 at = (2)" in diagram.alt and "feeds answer logits" in diagram.alt


def test_edges_follow_the_architecture_not_the_order_of_the_parts():
    """Attention in layer 1 reads every earlier position of layer 0's output, never a later
    one; an MLP reads its own position only."""
    task = toybook.get_task("list_update")
    diagram = circuit_diagram(READING, task, 2)
    keys = by_title(diagram)
    l0_at = {node.positions[0]: node.key for node in diagram.nodes if node.title == "L0H0"}
    l1_at = {node.positions[0]: node.key for node in diagram.nodes if node.title == "L1H0"}
    assert (l0_at[6], l1_at[7]) in diagram.edges and (l0_at[7], l1_at[7]) in diagram.edges
    assert (l0_at[9], l1_at[7]) not in diagram.edges and (l0_at[9], l1_at[9]) in diagram.edges
    assert all((l1, l0) not in diagram.edges for l1 in l1_at.values() for l0 in l0_at.values())
    assert (keys["tokens and positions", ()], keys["answer logits", (7, 8, 9)]) in diagram.edges

    mixed = Reading("mixed", "a head and the MLP at one position, and the MLP elsewhere",
                    (*whole(head(0, 3, 0)), *whole(mlp(0, 3), group="MLP0 at 3"), *whole(mlp(0, 5), group="MLP0 at 5")))
    drawn = circuit_diagram(mixed, task, 2)
    names = {node.title: node.key for node in drawn.nodes}
    assert (names["L0H0"], names["MLP0 at 3"]) in drawn.edges
    assert (names["L0H0"], names["MLP0 at 5"]) not in drawn.edges


def test_neuron_groups_are_boxes_of_their_own_fed_by_the_heads_at_their_positions():
    task = toybook.get_task("majority")
    reading = Reading("neurons", "two neuron groups at position 4, a head at 4",
                      (*whole(head(0, 4, 1)), Part(neurons(0, 4, [1, 2]), group="value neurons"),
                       Part(neurons(0, 4, [3]), group="minority neurons")))
    diagram = circuit_diagram(reading, task, 1)
    names = {node.title: node for node in diagram.nodes}
    assert names["value neurons"].kind == "mlp" and names["L0H1"].kind == "head"
    assert (names["L0H1"].key, names["value neurons"].key) in diagram.edges
    assert (names["value neurons"].key, "answer") in diagram.edges


def test_the_boxes_carry_the_measured_drops_and_the_caption_f():
    model = toybook.load_model("max_of_2")
    task = toybook.get_task("max_of_2")
    reading = max_of_2_readings()[0]
    result = faithfulness(model, task, reading, n_random=4, n_subsets=0)
    diagram = circuit_diagram(reading, task, 1, result)
    assert diagram.nodes[1].drop == pytest.approx(result.drops["L0H0@2"])
    assert f"F = {result.recovered:.3f}" in diagram.caption and "95th percentile" in diagram.caption
    assert f"loses {result.drops['L0H0@2']:.2f} of F" in diagram.alt
    with pytest.raises(ToybookError, match="the result is of the reading 'copies_the_larger', not 'which_slot'"):
        circuit_diagram(max_of_2_readings()[1], task, 1, result)


@needs_dot
def test_the_svg_is_an_image_named_by_its_words_and_drawn_in_the_text_colour():
    task = toybook.get_task("list_update")
    diagram = circuit_diagram(READING, task, 2)
    svg = diagram.svg()
    assert svg.startswith("<svg role=\"img\" aria-label=\"Circuit of the reading")
    assert "currentColor" in svg and "#010203" not in svg and "<title>" not in svg
    width = float(re.search(r"max-width: (\d+)px", svg)[1])
    assert float(re.search(r"min-width: (\d+)px", svg)[1]) == pytest.approx(0.7 * width, abs=1)
    assert diagram._repr_html_().startswith('<figure class="toybook-circuit"><svg')


def test_without_graphviz_it_says_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    diagram = circuit_diagram(READING, toybook.get_task("list_update"), 2)
    with pytest.raises(ToybookError, match="apt install graphviz"):
        diagram.svg()
