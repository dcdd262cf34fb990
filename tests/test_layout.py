"""The package's layout: each task's knowledge in its folder, generic tools that know no task,
registries discovered from the folders, imports that run one way (no cycles), and short
functions in the task folders."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import toybook
from toybook.errors import ToybookError
from toybook.registry import claims, collect, exercise_checkers, presets, readings, task_part

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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs, at module level or inside a function; not those
    under ``if TYPE_CHECKING:``, which only a type checker reads."""
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports, the packages above them included (a name
    imported from a package counts as that package's submodule where there is one)."""
    def resolve(name: str) -> str | None:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names if alias.name.startswith("toybook")}
                continue
            base = node.module or ""
            if node.level:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            if base.split(".")[0] == "toybook":
                targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else resolve(base)
                            for alias in node.names}
        # importing toybook.a.b runs the packages toybook.a and toybook first
        parents = {target.rsplit(".", depth)[0] for target in targets - {None}
                   for depth in range(1, target.count(".") + 1)}
        graph[module] = (targets | parents) - {None, module, *_packages_of(module)}
    return graph


def _packages_of(module: str) -> set[str]:
    """The packages above ``module`` (Python has run them before it: not an import of it)."""
    return {module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or ``None`` (a depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_package_imports_have_no_cycles():
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_can_fail():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import toybook.x\n"
                     "def f():\n    from toybook import y\n")
    assert [node.lineno for node in _runtime_imports(tree)] == [1, 5]


def test_only_the_registry_imports_the_task_folders():
    importers = sorted(module for module, targets in import_graph().items()
                       if not module.startswith("toybook.tasks")
                       if any(target.startswith("toybook.tasks") for target in targets))
    assert importers == [], f"modules outside the task folders that import them: {importers}"
    registry = (PACKAGE / "registry.py").read_text()
    assert '"toybook.tasks"' in registry, "the registry finds the folders by name, with importlib"


def test_task_folders_hold_short_functions_and_files():
    too_long = []
    for path in sorted((PACKAGE / "tasks").rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            too_long.append(f"{path.relative_to(PACKAGE)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 50:
                    too_long.append(f"{path.relative_to(PACKAGE)}: {node.name} is {length} lines")
    assert not too_long, "\n".join(too_long)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_folder_holds_its_parts(name):
    folder = PACKAGE / "tasks" / name
    assert (folder / "task.py").exists()
    its_presets = task_part(name, "presets").PRESETS
    its_claims = task_part(name, "claims").CLAIMS
    assert its_presets and all(preset.task.name == name for preset in its_presets)
    assert set(its_claims) == {preset.name for preset in its_presets}, "every preset is held to claims"
    assert task_part(name, "exercises").__all__
    its_readings = task_part(name, "hypotheses").READINGS
    assert set(its_readings) == set(its_claims), "every preset states its readings as programs"
    assert task_part(name, "no_such_part") is None


def test_registries_are_discovered_from_the_folders():
    assert list(presets()) == [p.name for table in collect("presets", "PRESETS").values() for p in table]
    assert set(claims()) == set(presets()) == set(readings())
    assert list(collect("presets", "PRESETS")) == TASK_NAMES
    checkers = {name for names in collect("exercises", "__all__").values() for name in names}
    assert set(exercise_checkers()) == checkers
    import toybook.exercises as exercises
    assert all(callable(getattr(exercises, name)) for name in checkers)
    with pytest.raises(AttributeError):
        exercises.check_nothing_of_the_sort  # noqa: B018
    with pytest.raises(ToybookError, match="unknown task"):
        task_part("no_such_task", "claims")


def test_a_variant_restates_only_claims_that_exist():
    from toybook.claims import restated

    base = claims()[TASK_NAMES[0]]
    changed = restated(base, {base[0].name: {"all_seeds": False}})
    assert changed[0].all_seeds is False and changed[1:] == base[1:]
    with pytest.raises(ToybookError, match="no claim named 'l0_neded_for_updates'"):
        restated(base, {"l0_neded_for_updates": {"all_seeds": False}})
    with pytest.raises(ToybookError, match="no field al_seeds"):
        restated(base, {base[0].name: {"al_seeds": False}})


def test_claims_are_tables_of_named_measures():
    """Every claim's measure is a named module-level function, or one with its arguments
    bound (``partial``): no closure, no lambda."""
    import functools

    for preset, table in claims().items():
        for claim in table:
            measure = claim.measure.func if isinstance(claim.measure, functools.partial) else claim.measure
            assert "<" not in measure.__qualname__, f"{preset}: {claim.name} measures with {measure.__qualname__}"
