"""The import graph: the layering of DESIGN.md holds and there are no cycles.

Every import counts, module-level or inside a function (a function-level import hides a cycle
from the interpreter, not from the design). Read with the standard library's ``ast``; the graph
and its cycles with networkx.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top: a lower layer never imports a higher one.
LAYERS = ("scenarios", "tools", "evaluators", "sandbox")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for layer in LAYERS
        for path in sorted((ROOT / layer).rglob("*.py"))
    }


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports (the longest known prefix of each name imported)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            targets = [f"{module}.{alias.name}" for alias in node.names] or [module]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> nx.DiGraph:
    known = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for name, path in known.items():
        graph.add_edges_from((name, target) for target in _imports(name, path, known))
    return graph


def test_a_lower_layer_never_imports_a_higher_one() -> None:
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    upward = [
        f"{source} imports {target}"
        for source, target in _graph().edges
        if rank[target.split(".")[0]] > rank[source.split(".")[0]]
    ]
    assert upward == []


def test_the_import_graph_has_no_cycles() -> None:
    graph = _graph()
    assert graph.number_of_nodes() > 100  # the project's modules were found
    cycles = [" -> ".join([*cycle, cycle[0]]) for cycle in nx.simple_cycles(graph)]
    assert cycles == []


def test_the_reader_sees_imports_inside_functions(tmp_path: Path) -> None:
    # A function-level import is an edge too: it is how cycles hide.
    module = tmp_path / "sandbox" / "late.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from sandbox.early import g\n    return g\n")
    known = {"sandbox.late": module, "sandbox.early": module}
    assert _imports("sandbox.late", module, known) == {"sandbox.early"}
