"""The import graph of netwarden/: no cycles, and only the allowed directions.

Read with `ast` from the source (every import statement, inside functions too, since a
deferred import is still a dependency), so it needs nothing installed and imports nothing.
docs/architecture.md says why each rule exists.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "netwarden"

#: (importer, imported): a module under the first may import nothing under the second.
FORBIDDEN = [
    ("netwarden.store", target)
    for target in ("netwarden.sensor", "netwarden.discovery", "netwarden.notify",
                   "netwarden.viewer_tui", "netwarden.viewer_dash")
] + [
    (viewer, target)
    for viewer in ("netwarden.viewer_tui", "netwarden.viewer_dash")
    for target in ("netwarden.sensor", "netwarden.discovery", "netwarden.notify")
]

#: The only module that may import the CLI: `python -m netwarden`.
ENTRY_POINT = "netwarden.__main__"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
              modules: dict[str, Path]) -> Iterator[str]:
    """The netwarden modules one statement loads, each package on the way included."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".")[: len(module.split(".")) - (node.level - 1)
                                        - (0 if is_package else 1)]
            base = ".".join(parts + ([base] if base else []))
        # `from package import module` loads the module; `from module import name` does not.
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                   for alias in node.names]
    for target in targets:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name in modules:
                yield name


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, set())
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(_imported(module, path.name == "__init__.py", node, modules))
        edges.discard(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    graph = import_graph()
    assert "netwarden.store.traffic_queries" in graph["netwarden.viewer_tui.state"]
    assert "netwarden.cli" in graph[ENTRY_POINT]
    # An import inside a function counts.
    assert "netwarden.sensor.service" in graph["netwarden.cli"]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_cycles_between_packages():
    """store -> discovery -> store is a cycle even when no two modules import each other."""
    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        packages.setdefault(part(module), set()).update(
            part(t) for t in targets if part(t) != part(module) and part(t) != "netwarden")
    for targets in packages.values():
        targets.intersection_update(packages)
    assert cycles(packages) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_forbidden_imports():
    graph = import_graph()
    wrong = sorted((module, target) for module, targets in graph.items() for target in targets
                   for importer, forbidden in FORBIDDEN
                   if _within(module, importer) and _within(target, forbidden))
    assert wrong == []


def test_nothing_imports_the_cli():
    graph = import_graph()
    importers = sorted(m for m, targets in graph.items() if "netwarden.cli" in targets)
    assert importers == [ENTRY_POINT]
