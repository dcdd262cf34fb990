"""The "try it" widget: a chapter's trained models, run in the reader's browser.

``try_it(TASK)`` in a chapter cell shows a form in the task's own terms (for list update:
a list, an index and a value), the model's answer with its probabilities, each head's attention
pattern, and a switch per head and MLP that zero-ablates it. The models run as ONNX graphs
(:mod:`toybook.export`, written into the built site by ``book/_ext/offline_assets.py``)
in onnxruntime-web, which the page fetches only when the reader opens the widget.

What is generic lives here and in ``book/_ext/toybook-try.js``; what a task's input means
(its fields, how they become tokens, the right answers) lives in the task's own
``widget.js``. A ``goal`` turns the widget into an exercise the page checks: with exactly
the components ``off`` switched off, find an input whose answer is ``"right"``, ``"wrong"``,
or ``"changes"`` (differs from the whole model's).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toybook._lazy import lazy
from toybook.errors import ToybookError

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

CSS_CLASS = "toybook-try"
WIDGET_SCRIPTS = Path(__file__).parent / "tasks"  # tasks/NAME/widget.js
EXPECT = ("right", "wrong", "changes")


def task_scripts() -> list[Path]:
    """Each task's ``widget.js`` (what its input means), in a fixed order."""
    return sorted(WIDGET_SCRIPTS.glob("*/widget.js"))


def model_entry(name: str) -> dict[str, Any]:
    """What the widget needs to know of shipped model ``name`` (read from its sidecar)."""
    from toybook.checkpoint import read_sidecar
    from toybook.zoo import SHIPPED_DIR

    config = read_sidecar(SHIPPED_DIR / name)["model_config"]
    return {
        "name": name, "file": f"{name}.onnx", "n_layers": config["n_layers"],
        "n_heads": config["n_heads"], "mlp": config["d_mlp"] is not None,
        "d_vocab_out": config["d_vocab_out"],
    }


def task_models(task: str) -> list[str]:
    """The shipped models of ``task``, its default model first."""
    from toybook.zoo import list_models

    names = [info.name for info in list_models() if info.task == task]
    return sorted(names, key=lambda name: name != task)


def widget_spec(task: str, model: str | None = None, goal: dict[str, Any] | None = None) -> dict[str, Any]:
    """The widget's data: the task's format, its models, the first model shown, the goal."""
    from toybook.registry import get_task, list_tasks

    if task not in list_tasks():
        raise ToybookError(f"try_it: no task {task!r}; tasks: {', '.join(list_tasks())}")
    spec_task = get_task(task)
    models = task_models(task)
    if not models:
        raise ToybookError(f"try_it: task {task!r} has no shipped model")
    model = model or models[0]
    if model not in models:
        raise ToybookError(f"try_it: {model!r} is not a shipped model of {task!r}; those are: {', '.join(models)}")
    answers = spec_task.answer_positions
    slots = spec_task.slots
    if goal is not None:
        if goal.get("model", model) not in models:
            raise ToybookError(f"try_it: the goal's model {goal['model']!r} is not a shipped model of {task!r}")
        check_goal(goal, model_entry(goal.get("model", model)))
    return {
        "task": task, "model": model, "models": [model_entry(name) for name in models],
        "n_ctx": spec_task.n_ctx, "answers": [answers.start, answers.stop],
        "answer_names": list(spec_task.answer_names), "fed_back": fed_back(spec_task),
        "shown": "last" if shows_last(spec_task) else "all",
        "slot_names": [slot.name for slot in slots], "slot_separator": [slot.separator for slot in slots],
        "goal": goal,
    }


def fed_back(task: Any) -> bool:
    """Whether the task's answers are tokens of its sequence (``b0 b1 b2``, the sum's
    digits), which the model reads back as it writes them, one at a time."""
    answers = task.answer_positions
    return [slot.name for slot in task.slots[answers.start + 1 : answers.stop + 1]] == list(task.answer_names)


def shows_last(task: Any) -> bool:
    """The widget shows every answer of a short answer, and only the last of a long one
    (such as a running answer at each of 128 positions)."""
    return task.n_answers > 8


def model_answers(model: torch.nn.Module, tokens: Tensor, off: tuple[str, ...] = (), batch: int = 256) -> Tensor:
    """``[B, A]``: the answers the widget shows for well-formed ``tokens [B, T]``, with
    the components ``off`` zero-ablated. Where the answers are fed back, each is the
    model's own, written from the question and its answers before it (greedy), found as
    the page finds them: the right answers go in, and each run confirms every answer up to
    the first the model would write differently, which goes in for the next run (a row the
    model gets right takes one run). Runs ``batch`` sequences at a time."""
    from toybook.export import ScaledForward, scales

    task, forward = model.toybook_task, ScaledForward(model)
    start, stop = task.answer_positions.start, task.answer_positions.stop
    switches = list(scales(model, off).values())
    answers = []
    with torch.no_grad():
        for row in tokens.split(batch):
            if not fed_back(task):
                answers.append(forward(row, *switches)[0][:, start:stop].argmax(-1))
                continue
            row, todo = row.clone(), torch.arange(len(row))
            while len(todo):
                written = forward(row[todo], *switches)[0][:, start:stop].argmax(-1)
                differ = written != row[todo, start + 1 : stop + 1]
                todo, written, differ = todo[differ.any(-1)], written[differ.any(-1)], differ[differ.any(-1)]
                first = differ.int().argmax(-1)
                row[todo, start + 1 + first] = written[torch.arange(len(todo)), first]
            answers.append(row[:, start + 1 : stop + 1])
    return torch.cat(answers)


def goal_met(model: torch.nn.Module, tokens: Tensor, goal: dict[str, Any]) -> Tensor:
    """``[B]`` bool: which inputs solve the exercise ``goal`` (as the page checks it)."""
    config = model.toybook_config
    check_goal(goal, {"name": getattr(model, "toybook_name", "this model"), "n_layers": config.n_layers,
                      "n_heads": config.n_heads, "mlp": not config.attn_only})
    task = model.toybook_task
    shown = slice(-1, None) if shows_last(task) else slice(None)
    got = model_answers(model, tokens, tuple(goal["off"]))[:, shown]
    if goal["expect"] == "changes":
        return (got != model_answers(model, tokens)[:, shown]).any(-1)
    right = (got == task.targets(tokens)[:, shown]).all(-1)
    return right if goal["expect"] == "right" else ~right


def check_goal(goal: dict[str, Any], model: dict[str, Any]) -> None:
    """A goal names components the model has, an expectation, and the two texts shown."""
    missing = {"off", "expect", "text", "solved"} - set(goal)
    if missing:
        raise ToybookError(f"try_it: a goal needs {sorted(missing)} (off, expect, text, solved)")
    if goal["expect"] not in EXPECT:
        raise ToybookError(f"try_it: a goal expects one of {EXPECT}, got {goal['expect']!r}")
    names = {f"L{l}H{h}" for l in range(model["n_layers"]) for h in range(model["n_heads"])}
    names |= {f"MLP{l}" for l in range(model["n_layers"])} if model["mlp"] else set()
    unknown = [name for name in goal["off"] if name not in names]
    if unknown:
        raise ToybookError(f"try_it: model {model['name']} has no {unknown}; it has {sorted(names)}")


class TryIt:
    """The widget as a cell output (HTML; with scripts off, a sentence saying what it needs)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def _repr_html_(self) -> str:
        data = html.escape(json.dumps(self.spec, separators=(",", ":")), quote=True)
        return (
            f'<div class="{CSS_CLASS}" data-spec="{data}"><p>Needs JavaScript.</p></div>'
        )

    def __repr__(self) -> str:
        return f"try_it({self.spec['task']!r}, model={self.spec['model']!r})"


def try_it(task: str, model: str | None = None, goal: dict[str, Any] | None = None) -> TryIt:
    """The widget for ``task``'s shipped models, showing ``model`` first (default: the
    task's own model), with an optional exercise ``goal``."""
    return TryIt(widget_spec(task, model, goal))
