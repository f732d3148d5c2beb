"""No import cycle in rtfin_cli: among its packages, and among the modules of any one package.

The layer order itself is import-linter's job (`make lint`, `[tool.importlinter]` in pyproject.toml); this
test keeps the graph acyclic at every level, so each package can be read (and imported) before the ones
that use it. Imports under ``if TYPE_CHECKING:`` count too: a type a module needs is a dependency.
"""

from __future__ import annotations

from collections.abc import Iterator

import grimp
import pytest

pytestmark = pytest.mark.unit


def _packages(graph: grimp.ImportGraph, root: str) -> Iterator[str]:
    """``root`` and every package below it (modules that have children)."""
    if graph.find_children(root):
        yield root
        for child in sorted(graph.find_children(root)):
            yield from _packages(graph, child)


def _sibling_edges(graph: grimp.ImportGraph, package: str) -> dict[str, set[str]]:
    """Which direct children of ``package`` import which others (a child counts with its descendants)."""
    kids = sorted(graph.find_children(package))
    return {
        a: {
            b for b in kids if b != a and graph.direct_import_exists(importer=a, imported=b, as_packages=True)
        }
        for a in kids
    }


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _example_chain(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """One import of the cycle, module to module, so the failure says where to look."""
    a, b = cycle[0], cycle[1]
    for importer, imported in ((a, b), (b, a)):
        chain = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
        if chain:
            return " -> ".join(chain)
    return ""


def test_cycle_finder_sees_a_cycle_and_ignores_a_chain() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_between_packages_or_modules_of_rtfin_cli() -> None:
    graph = grimp.build_graph("rtfin_cli", exclude_type_checking_imports=False)
    problems = [
        f"{package}: {' <-> '.join(cycle)} (e.g. {_example_chain(graph, cycle)})"
        for package in _packages(graph, "rtfin_cli")
        for cycle in _cycles(_sibling_edges(graph, package))
    ]
    assert not problems, "import cycles:\n" + "\n".join(problems)
