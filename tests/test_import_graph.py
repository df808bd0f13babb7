"""The package-level import graph of ``simulator`` has no cycle (issue 10 "clean dependency
direction"): device and gateway packages may import the radio and codec packages, never the
reverse. Every ``import`` statement counts, also those inside functions."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "simulator"
#: Packages that only group device packages: each subpackage is a node of its own.
GROUPS = {"gateways"}


def node(module: str) -> str | None:
    """The graph node of a dotted module name: ``mbus``, ``scenario``, ``gateways.cme3100``."""
    parts = module.split(".")
    if parts[0] != "simulator" or len(parts) < 2:
        return None
    if parts[1] in GROUPS and len(parts) > 2:
        return f"{parts[1]}.{parts[2]}"
    return parts[1]


def import_graph(root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """``{node: {imported node: [files that import it]}}`` for every module under ``root``."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    MODULES = {p.stem for p in root.glob("*.py")}  # noqa: N806 (scenario, rig, cli...)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        src = node(".".join(parts))
        if src is None:
            continue
        for n in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                targets = [n.module] + [f"{n.module}.{a.name}" for a in n.names]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            else:
                continue
            # "from simulator.gateways import cme3100" names the device package; the
            # group package itself ("gateways") holds nothing to depend on
            dst = {node(t) for t in targets} - {None, src, *GROUPS}
            dst = {d for d in dst if (root / d.replace(".", "/")).is_dir() or d in MODULES}
            for d in dst:
                graph[src][d].append(str(path.relative_to(root.parent)))
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None if the graph is acyclic."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, {})):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_package_import_graph_is_acyclic():
    graph = import_graph()
    cycle = find_cycle(graph)
    if cycle:
        where = [
            f"{a} -> {b}: {', '.join(sorted(set(graph[a][b])))}"
            for a, b in zip(cycle, cycle[1:], strict=False)
        ]
        raise AssertionError("import cycle " + " -> ".join(cycle) + "\n" + "\n".join(where))


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path):
    # the check itself can fail: two packages that import each other
    pkg = tmp_path / "simulator"
    for name, other in (("radio", "device"), ("device", "radio")):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
        (pkg / name / "m.py").write_text(f"def f():\n    from simulator.{other}.m import f\n")
    assert find_cycle(import_graph(pkg)) == ["device", "radio", "device"]
