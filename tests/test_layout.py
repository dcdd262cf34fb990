"""The package's layout: each task's knowledge in its folder, generic tools that know no task,
registries discovered from the folders, and one patching function behind every variant."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import toybook
from toybook.errors import ToybookError
from toybook.tasks import task_part, task_parts

PACKAGE = Path(toybook.__file__).parent
TASK_NAMES = toybook.list_tasks()
# modules allowed to name tasks: the task folders, and the two entry points
ALLOWED = {PACKAGE / "__init__.py", PACKAGE / "cli.py"}


def _generic_modules() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if PACKAGE / "tasks" not in path.parents or path.parent == PACKAGE / "tasks"
            if path not in ALLOWED]


def _string_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant of a module, docstrings included, with its line."""
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_the_generic_modules_name_no_task():
    # a task name, or one with a suffix (a variant, a seed): "addition", "max_of_2_s3"
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, TASK_NAMES)) + r")(_\w+)?\b")
    found = []
    for path in _generic_modules():
        for line, text in _string_literals(ast.parse(path.read_text())):
            quoted = [match.group(0) for match in pattern.finditer(text)]
            if quoted:
                found.append(f"{path.relative_to(PACKAGE)}:{line}: {quoted}")
    assert not found, "task names outside the task folders:\n" + "\n".join(found)


def test_the_generic_modules_import_no_task_folder_at_module_level():
    for path in _generic_modules():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not re.match(r"toybook\.tasks\.\w+", node.module) or \
                    node.module == "toybook.tasks.base", f"{path.name} imports {node.module}"


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_folder_holds_its_parts(name):
    folder = PACKAGE / "tasks" / name
    assert (folder / "task.py").exists()
    presets = task_part(name, "presets").PRESETS
    claims = task_part(name, "claims").CLAIMS
    assert presets and all(preset.task.name == name for preset in presets)
    assert set(claims) == {preset.name for preset in presets}, "every preset is held to claims"
    assert task_part(name, "exercises").__all__
    hypotheses = task_part(name, "hypotheses").HYPOTHESES
    assert set(hypotheses) == set(claims), "every preset states its reading as data"
    assert task_part(name, "no_such_part") is None


def test_registries_are_discovered_from_the_folders():
    from toybook.claims import CLAIMS
    from toybook.presets import PRESETS

    assert list(PRESETS) == [p.name for module in task_parts("presets") for p in module.PRESETS]
    assert set(CLAIMS) == set(PRESETS)
    checkers = {name for module in task_parts("exercises") for name in module.__all__}
    import toybook.exercises as exercises
    assert all(callable(getattr(exercises, name)) for name in checkers)
    with pytest.raises(AttributeError):
        exercises.check_nothing_of_the_sort  # noqa: B018
    with pytest.raises(ToybookError, match="unknown task"):
        task_part("no_such_task", "claims")
