"""The layers of the package, read from the source's imports (ast), never run.

``literature`` (constants from the papers, imports nothing) ← ``problems``
(families) ← ``theory`` (bounds, conditions, checks: pure functions of
constants) ← ``algorithms`` (estimators, fast samplers, the trajectory engine,
the runner) ← ``experiments`` (the ledger, the experiments, the command line)
← the package's own entry points (``mamlcheck/__init__``, ``testing``).
An import from a lower layer to a higher one, a cycle between packages, or an
import of the folders under their bare names (``import problems``) fails.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"problems": "mamlcheck.problems", "theory": "mamlcheck.theory",
           "algorithms": "mamlcheck.algorithms", "experiments": "mamlcheck.experiments",
           "conformance": "mamlcheck.conformance", "mamlcheck": "mamlcheck"}
LAYER = {"mamlcheck.literature": 0, "mamlcheck.problems": 1, "mamlcheck.theory": 2, "mamlcheck.algorithms": 3,
         "mamlcheck.experiments": 4, "mamlcheck.conformance": 5, "mamlcheck": 6}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every installed source file."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            out[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return out


def _package(module: str) -> str:
    """The layer unit a module belongs to (``mamlcheck.literature`` is its own)."""
    for unit in sorted(LAYER, key=len, reverse=True):
        if module == unit or module.startswith(unit + "."):
            return unit
    raise AssertionError(f"{module} is in no layer")


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules that ``module`` imports (absolute names; submodules resolved)."""
    is_pkg = path.stem == "__init__"
    here = module if is_pkg else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that run up the layers, and imports of the folders' bare names."""
    bad = []
    for mod, targets in graph.items():
        for t in targets:
            if t.split(".")[0] in ("problems", "theory", "algorithms", "experiments"):
                bad.append(f"{mod} imports {t} by its bare name (use mamlcheck.{t})")
            elif t == "mamlcheck" or t.startswith("mamlcheck."):
                if LAYER[_package(t)] > LAYER[_package(mod)]:
                    bad.append(f"{mod} (layer {_package(mod)}) imports {t} (higher layer {_package(t)})")
    return bad


def package_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles in the graph of layer units (each edge: some module imports another unit)."""
    edges: dict[str, set[str]] = {}
    for mod, targets in graph.items():
        for t in targets:
            if t == "mamlcheck" or t.startswith("mamlcheck."):
                a, b = _package(mod), _package(t)
                if a != b:
                    edges.setdefault(a, set()).add(b)
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_runs_up_the_layers():
    assert layer_violations(import_graph()) == []


def test_no_cycle_between_packages():
    assert package_cycles(import_graph()) == []


def test_the_graph_sees_the_imports_it_judges():
    """The reader is not vacuous: it finds the known downward imports."""
    g = import_graph()
    assert "mamlcheck.literature" in g["mamlcheck.problems.hard_chain"]
    assert "mamlcheck.algorithms.steps" in g["mamlcheck.algorithms.engine"]
    assert "mamlcheck.theory.bounds" in g["mamlcheck.algorithms.objective"]


@pytest.mark.parametrize("extra, expected", [
    ({"mamlcheck.theory.bounds": {"mamlcheck.algorithms.hyper"}}, "higher layer"),
    ({"mamlcheck.problems.base": {"mamlcheck.theory.bounds"}}, "higher layer"),
    ({"mamlcheck.algorithms.steps": {"problems.base"}}, "bare name"),
])
def test_an_upward_or_bare_import_is_caught(extra, expected):
    g = import_graph()
    for mod, targets in extra.items():
        g[mod] = g[mod] | targets
    assert any(expected in v for v in layer_violations(g))


def test_a_cycle_between_packages_is_caught():
    g = import_graph()
    g["mamlcheck.theory.bounds"] = g["mamlcheck.theory.bounds"] | {"mamlcheck.algorithms.hyper"}
    assert package_cycles(g)
