"""A reading drawn as its circuit: the data the faithfulness measure scores, as a picture.

:func:`circuit_diagram` turns a :class:`~toybook.analysis.faithfulness.Reading` (and, where
given, its :class:`~toybook.analysis.faithfulness.Faithfulness`) into a Graphviz graph:

- a node per group of the reading's parts (what minimality takes out together), named by
  its layer, heads and positions, with what it is read as depending on ("reads only the
  larger operand") or "kept whole", and the F lost when it alone is resampled;
- a node for the tokens and positions (the embeddings) and one for the answer logits;
- an edge wherever the architecture lets one node's output reach another's input: an earlier
  layer at the same or an earlier position (attention reads every earlier position; an MLP
  only its own), and a node at an answer position into the answer. The direct path from
  the embeddings to the answer is dashed: the scrub never touches it.

Nothing is placed by hand: Graphviz's ``dot`` lays it out, a rank per layer (top to bottom,
or left to right where a layer has many boxes).
The figure is SVG with its circuit stated in words as alt text (:attr:`CircuitDiagram.alt`);
it draws in ``currentColor``, so it reads in either theme.
"""

from __future__ import annotations

import html
import re
import shutil
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from toybook.analysis.faithfulness import WHOLE, Faithfulness, Reading, describe
from toybook.errors import ToybookError
from toybook.task import Task

COLOURS = {"head": "#2f6fbf", "mlp": "#c05a00", "io": "#808080"}  # >= 3:1 on white and on #121212
WRAP = 30  # characters per label line: long features wrap rather than widen the diagram
ACROSS = 3  # more boxes than this in one layer, and the layers run left to right
LEGIBLE = 0.7  # the smallest scale a diagram is drawn at (13 pt labels: 12 px); narrower, it scrolls
INK = "#010203"  # drawn as currentColor: Graphviz knows no such colour, so the SVG is edited


@dataclass(frozen=True)
class Node:
    """One drawn node: a group of a reading's parts, or the embeddings or the answer."""

    key: str
    title: str  # first line: "L0H0", "MLP1", "value neurons"
    where: str  # second line: "at = (2)", "at =..A1 (11–16) → A5..A0"
    reads: str  # third line: "reads only the larger operand", "kept whole"
    kind: str  # "head" (attention only), "mlp" (an MLP, its neurons, or a mix) or "io"
    layer: float  # rank: -1 the embeddings, L a layer's heads, L + 0.5 its MLP, n_layers + 1 the answer
    positions: tuple[int, ...] = ()
    drop: float | None = None  # F lost when this group alone is resampled


@dataclass
class CircuitDiagram:
    """A reading's circuit: ``nodes`` and ``edges`` (node keys), as Graphviz source
    (:meth:`dot`), SVG (:meth:`svg`) and words (:attr:`alt`). In a notebook it shows as
    the SVG with its caption."""

    reading: Reading
    nodes: list[Node]
    edges: list[tuple[str, str]]
    recovered: float | None = None
    random_p95: float | None = None
    caption: str = ""
    _svg: str | None = field(default=None, repr=False)

    @property
    def alt(self) -> str:
        """The circuit in words: each node, what it reads and costs, and what it feeds."""
        by_key = {node.key: node for node in self.nodes}
        sentences = []
        for node in self.nodes:
            targets = [by_key[b] for a, b in self.edges if a == node.key]
            if not targets:
                continue
            name = _spoken(node)
            detail = [] if node.kind == "io" else [node.reads]
            if node.drop is not None:
                detail.append(f"resampling it alone loses {node.drop:.2f} of F")
            sentences.append(f"{name}{' (' + '; '.join(detail) + ')' if detail else ''} feeds "
                             f"{_listed([_spoken(t) for t in targets])}.")
        if self.recovered is not None:
            sentences.append(f"The reading recovers F = {self.recovered:.2f} of the loss"
                             + (f" (random readings of its size: {self.random_p95:.2f} at their 95th percentile)."
                                if self.random_p95 is not None else "."))
        return f"Circuit of the reading {self.reading.name!r}: " + " ".join(sentences)

    def dot(self) -> str:
        """The Graphviz source: a rank per layer, top to bottom (left to right where a
        layer has more than :data:`ACROSS` boxes, so that a phone can hold it)."""
        import graphviz  # noqa: PLC0415 (only drawing needs it)

        widest = max(Counter(node.layer for node in self.nodes).values())
        graph = graphviz.Digraph(self.reading.name, graph_attr={
            "rankdir": "LR" if widest > ACROSS else "TB", "bgcolor": "transparent", "nodesep": "0.25",
            "ranksep": "0.45", "fontname": "Helvetica", "margin": "0.05"},
            node_attr={"shape": "box", "style": "rounded", "fontname": "Helvetica", "fontsize": "13",
                       "color": INK, "fontcolor": INK, "penwidth": "1.6", "margin": "0.12,0.06"},
            edge_attr={"color": INK, "arrowsize": "0.7", "penwidth": "1.2"})
        for rank in sorted({node.layer for node in self.nodes}):
            with graph.subgraph() as same:
                same.attr(rank="same")
                in_rank = sorted((n for n in self.nodes if n.layer == rank), key=lambda n: n.positions or (-1,))
                for node in in_rank:
                    same.node(node.key, _label(node), color=COLOURS[node.kind],
                              penwidth="1.2" if node.kind == "io" else "2.2")
                for a, b in zip(in_rank, in_rank[1:]):  # keep a layer's boxes in position order
                    same.edge(a.key, b.key, style="invis")
        for a, b in self.edges:
            direct = a == "embed" and b == "answer"
            graph.edge(a, b, style="dashed" if direct else "solid")
        return graph.source

    def svg(self) -> str:
        """The diagram as an SVG element drawn in ``currentColor``, labelled with :attr:`alt`."""
        if self._svg is None:
            if shutil.which("dot") is None:
                raise ToybookError("drawing a circuit needs Graphviz's `dot` program: install "
                                   "Graphviz (Debian/Ubuntu: apt install graphviz; conda: "
                                   "conda install graphviz; macOS: brew install graphviz)")
            import graphviz  # noqa: PLC0415

            text = graphviz.pipe("dot", "svg", self.dot().encode()).decode()
            text = text[text.index("<svg"):]
            size = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', text)
            width = float(size[1]) * 4 / 3  # px
            text = text.replace(size[0], f'<svg role="img" aria-label="{html.escape(self.alt)}" '
                                f'style="width: 100%; max-width: {width:.0f}px; min-width: '
                                f'{LEGIBLE * width:.0f}px"', 1)
            text = re.sub(r"<title>[^<]*</title>", "", text)  # Graphviz's node ids; the figure's name is aria-label
            text = text.replace('fill="white"', 'fill="none"').replace('stroke="transparent"', 'stroke="none"')
            text = text.replace(INK, "currentColor")
            self._svg = text
        return self._svg

    def _repr_html_(self) -> str:
        caption = f"<figcaption>{html.escape(self.caption)}</figcaption>" if self.caption else ""
        return f'<figure class="toybook-circuit">{self.svg()}{caption}</figure>'


def _label(node: Node) -> str:
    where = [line for part in node.where.split(" → ") for line in textwrap.wrap(part, WRAP)]
    if " → " in node.where:
        where[-1] = "→ " + where[-1]
    lines = [node.title, *where, *textwrap.wrap(node.reads, WRAP)]
    if node.drop is not None:
        lines.append(f"F lost without it: {node.drop:.2f}")
    return "\n".join(line for line in lines if line)


def _spoken(node: Node) -> str:
    return node.title + (f" {node.where}" if node.where else "")


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _where(task: Task, positions: Sequence[int]) -> str:
    """``at elt (6)``; at an answer position also what is predicted there: ``at b1 (9) → b2``."""
    names = [task.slots[p].name for p in positions]
    answers = dict(zip(range(task.n_ctx)[task.answer_positions], task.answer_names))
    predicted = [answers[p] for p in positions if p in answers]
    if len(names) <= 3:
        where = "at " + ", ".join(f"{name} ({p})" for name, p in zip(names, positions))
    elif list(positions) == list(range(positions[0], positions[-1] + 1)):
        where = f"at {names[0]}..{names[-1]} ({positions[0]}–{positions[-1]})"
    else:
        where = f"at {len(names)} positions: {names[0]}..{names[-1]}"
    if not predicted:
        return where
    return where + " → " + (", ".join(predicted) if len(predicted) <= 3 else f"{predicted[0]}..{predicted[-1]}")


def _layer(component) -> int:
    return int(component.hook.split(".")[1])


def _title(label: str, components) -> str:
    """The group's name, or for a group of one component its name without the position."""
    return re.sub(r"@[\d,]+", "", label) if label == describe(components[0]) else label


def circuit_diagram(reading: Reading, task: Task, n_layers: int, result: Faithfulness | None = None,
                    caption: str = "") -> CircuitDiagram:
    """The circuit of ``reading`` for a model of ``n_layers`` on ``task``; with ``result``
    (the reading's :func:`~toybook.analysis.faithfulness.faithfulness`), each node's F lost
    without it (minimality) and F with its random baseline in the words."""
    if result is not None and result.reading != reading.name:
        raise ToybookError(f"the result is of the reading {result.reading!r}, not {reading.name!r}")
    groups: dict[str, list] = {}
    for part in reading.parts:
        groups.setdefault(part.label, []).append(part)
    answers = tuple(range(task.n_ctx)[task.answer_positions])
    nodes = [Node("embed", "tokens and positions", "", "", "io", -1)]
    for index, (label, parts) in enumerate(groups.items()):
        components = [part.component for part in parts]
        layers = sorted({_layer(c) for c in components})
        positions = tuple(sorted({p for c in components for p in (c.positions or range(task.n_ctx))}))
        features = {part.feature.name if part.feature is not None else WHOLE for part in parts}
        reads = "kept whole" if features == {WHOLE} else "reads only " + " / ".join(sorted(features - {WHOLE}))
        kinds = {"head" if c.hook.endswith("hook_z") else "mlp" for c in components}
        drop = None if result is None or label not in result.drops else result.drops[label]
        nodes.append(Node(f"g{index}", _title(label, components), _where(task, positions), reads,
                          "head" if kinds == {"head"} else "mlp", layers[0] + (0.5 if "head" not in kinds else 0),
                          positions, drop))
    names = task.answer_names
    nodes.append(Node("answer", "answer logits", ", ".join(names) if len(names) <= 3 else f"{names[0]}..{names[-1]}",
                      "", "io", n_layers + 1, answers))
    edges = []
    inner = nodes[1:-1]
    for node in inner:
        if node.layer < 1:
            edges.append(("embed", node.key))
    for a in inner:
        for b in inner:
            if b.layer <= a.layer:
                continue
            reaches = (min(a.positions) <= max(b.positions)) if b.kind == "head" else bool(set(a.positions) & set(b.positions))
            if reaches:
                edges.append((a.key, b.key))
        if set(a.positions) & set(answers):
            edges.append((a.key, "answer"))
    edges.append(("embed", "answer"))
    if not caption:
        caption = (f"The reading {reading.name!r}: {reading.text}. Blue boxes are attention heads, "
                   "orange ones MLPs; each arrow is a way the architecture lets a box's output reach "
                   "another's input, and the dashed one is the direct path from the embeddings, which "
                   "the scrub never touches. Everything not drawn is resampled.")
        if result is not None:
            caption += (f" A box's last line is the F lost when it alone is resampled. F = "
                        f"{result.recovered:.3f} of the loss recovered on {reading.n_inputs:,} held-out inputs")
            caption += (f"; random readings of the same size: {result.random_p95:.2f} at their 95th "
                        "percentile." if result.random else ".")
    return CircuitDiagram(reading, nodes, edges, None if result is None else result.recovered,
                          None if result is None or not result.random else result.random_p95, caption)


__all__ = ["CircuitDiagram", "Node", "circuit_diagram"]
