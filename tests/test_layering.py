"""The package layout is a layering: each stage imports only the stages before it, and nothing imports in a
circle. Read from the source with ``ast`` (every import counts, including the lazy ones inside functions),
so the rule cannot silently rot when a module moves.

Stages, in data-flow order: model → theory → finite → simulate → unet → cli. Beside them: ``precision``,
``errors`` and ``io`` (leaves), ``results`` (labelled result files, on ``io``), ``sweep`` (grid engine),
``plots`` (figures), ``spec`` (the spec schema).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "rfdiff"

LEAVES = {"precision", "errors"}
# what each part may import (besides itself); rfdiff/__init__.py is the public face and is exempt
ALLOWED = {
    "precision": set(),
    "errors": set(),
    "io": LEAVES,
    "results": LEAVES | {"io"},
    "model": LEAVES,
    "theory": LEAVES | {"model"},
    "finite": LEAVES | {"io", "model", "theory"},
    "sweep": LEAVES | {"io", "results"},
    "plots": LEAVES | {"io"},  # save_figure writes atomically (io.atomic_write_bytes)
    "_schema": LEAVES,
    "spec": LEAVES | {"_schema", "io", "model", "theory", "simulate", "unet"},
    "simulate": LEAVES | {"io", "results", "plots", "model", "theory", "finite"},
    "unet": LEAVES | {"io", "results", "plots", "model", "theory", "finite", "simulate"},
    "cli": LEAVES | {"io", "results", "plots", "spec", "sweep", "model", "theory", "finite", "simulate", "unet"},
    "__main__": {"cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["rfdiff", *parts])] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports (resolved to the longest known module path)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t.startswith("rfdiff.") and t != name:
                found.add(t)
    return found


def _part(module: str) -> str:
    return module.split(".")[1]


MODULES = _modules()
GRAPH = {m: _imports(m, p, set(MODULES)) for m, p in MODULES.items()}


def test_every_module_belongs_to_a_known_part():
    parts = {_part(m) for m in MODULES if m != "rfdiff"}
    assert parts <= set(ALLOWED), f"unknown parts {parts - set(ALLOWED)}: add them to the layering rule"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "rfdiff"))
def test_stage_imports_only_earlier_stages(module):
    part = _part(module)
    bad = sorted(t for t in GRAPH[module] if t != "rfdiff" and _part(t) != part and _part(t) not in ALLOWED[part])
    assert not bad, f"{module} ({part}) must not import {bad}"
    assert "rfdiff" not in GRAPH[module], f"{module} imports the public face rfdiff/__init__.py (import the module)"


def test_no_import_cycles():
    graph = {m: {t for t in ts if t != "rfdiff"} for m, ts in GRAPH.items() if m != "rfdiff"}
    # a package's __init__ re-exporting its own modules is not a cycle of concepts: drop package → child edges
    for m in graph:
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_rule_is_not_vacuous():
    # the reader must actually see imports: the theory's curves use the equations and the model
    assert "rfdiff.theory.equations" in GRAPH["rfdiff.theory.curves"]
    assert any(_part(t) == "model" for t in GRAPH["rfdiff.theory.spectrum"])
    # and a forbidden edge is caught: the old compare ⇄ simulation circle, rebuilt on paper
    fake = {"rfdiff.theory.x": {"rfdiff.finite.features"}}
    assert _part(next(iter(fake["rfdiff.theory.x"]))) not in ALLOWED["theory"]
