"""The import graph follows spec/architecture.md: a room imports only rooms on lower (or its own) floors, there is
no import cycle between modules, rlcert-internal imports sit at the top of the module (lazy imports are for
optional extras only), and ``import rlcert.certify`` stays free of gymnasium / SB3.

Imports are read with ``ast`` from every module under ``rlcert/`` (function-level imports included), so the test
needs no optional extra and sees imports that a run would only reach on some paths.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "rlcert"

# Longest prefix wins. Floors as in spec/architecture.md; rooms it does not list are placed by what they are:
# commands (argument parsing) on 6, reports and Ray sharding next to the sweeps on 5, certification methods on 1.
FLOORS = {
    "rlcert.cli": 6, "rlcert.train_cli": 6, "rlcert.demo": 6, "rlcert.certify.cli": 6, "rlcert.certify.__main__": 6,
    "rlcert.reproduce": 5, "rlcert.sweep": 5, "rlcert.certify.policy": 5, "rlcert.plots": 5,
    "rlcert.certify.distributed": 5,  # Ray sharding of the certify commands
    "rlcert.fleet": 4,
    "rlcert.training": 3, "rlcert.train": 3,
    "rlcert.agents": 2,
    "rlcert.envs": 1, "rlcert.runs": 1, "rlcert.certify": 1, "rlcert": 1,
}
# Known upward imports (none left: certification methods load models through rlcert.certify.io, never through the
# CLI). Never add one; test_known_lists_are_not_stale fails when an entry is no longer needed.
KNOWN_UPWARD: set[tuple[str, str]] = set()
# Function-level imports of rlcert modules that remain (each with its reason); everything else is at module top.
KNOWN_LAZY = {
    ("rlcert.certify.randomized.noise", "rlcert.certify.core.registry"),
    ("rlcert.certify.poisoning.dpa", "rlcert.certify.deterministic.enumeration"),
    ("rlcert.certify.cli.certify", "rlcert.certify.cli.plot"),  # matplotlib only when --plot is given
    ("rlcert.sweep.report", "rlcert.sweep.runner"),
    ("rlcert.certify.cli.certify", "rlcert.certify.distributed"),  # --ray only (Ray is an optional extra)
    ("rlcert.certify.policy.cli", "rlcert.certify.distributed"),
    ("rlcert.demo.envs", "rlcert.envs.hand_reach"),  # HandReach needs mujoco (optional extra)
    ("rlcert.demo.envs", "rlcert.envs.render"),
    ("rlcert.demo.certify_deterministic", "rlcert.certify.models"),
    *KNOWN_UPWARD,
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def floor_of(module: str) -> int:
    best = max((k for k in FLOORS if module == k or module.startswith(k + ".")), key=len)
    return FLOORS[best]


def imports_of(module: str) -> list[tuple[str, bool]]:
    """(imported rlcert module, imported at module top level) for every import statement of ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = {id(n) for n in tree.body}
    script: set[int] = set()  # ``if __name__ == "__main__":`` blocks run only as a script (python -m), not on import
    for node in tree.body:  # imports inside top-level if/try blocks still run at import time
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            script |= {id(n) for n in ast.walk(node)}
        elif isinstance(node, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    out = []
    for node in ast.walk(tree):
        if id(node) in script:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base
                                                                                                  else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if name == "rlcert" or name.startswith("rlcert."):
                while name not in MODULES:  # "rlcert.x.Name" -> "rlcert.x"
                    name = name.rpartition(".")[0]
                out.append((name, id(node) in top))
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_floor_map_covers_real_modules():
    assert {"rlcert.train", "rlcert.training.config", "rlcert.runs", "rlcert.envs.observation_noise",
            "rlcert.fleet.run", "rlcert.certify.policy.cli"} <= set(MODULES)
    assert floor_of("rlcert.certify.policy.cli") == 5 and floor_of("rlcert.certify.core.stats") == 1
    assert floor_of("rlcert.training.factories") == 3 and floor_of("rlcert.runs") == 1


def test_imports_go_down_the_floors():
    upward = sorted((m, d, floor_of(m), floor_of(d)) for m, deps in GRAPH.items() for d, _ in deps
                    if floor_of(d) > floor_of(m) and (m, d) not in KNOWN_UPWARD)
    assert not upward, f"imports climbing a floor (module, import, floors): {upward}"


def test_runs_imports_nothing_from_rlcert():
    assert GRAPH["rlcert.runs"] == []


def test_no_import_cycles():
    graph = {m: sorted({d for d, _ in deps if d != m}) for m, deps in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    # A package's __init__ re-exporting its submodules is not a cycle unless a submodule imports the package back
    # through a sibling; every component found here is a real cycle.
    assert not cycles, f"import cycles: {cycles}"


def test_rlcert_imports_are_at_module_top():
    lazy = sorted((m, d) for m, deps in GRAPH.items() for d, top in deps if not top and (m, d) not in KNOWN_LAZY)
    assert not lazy, f"function-level imports of rlcert modules (move them to the top of the module): {lazy}"


@pytest.mark.parametrize("module,banned", [("rlcert.certify", ("gymnasium", "stable_baselines3")),
                                           ("rlcert.runs", ("gymnasium", "torch", "numpy", "yaml"))])
def test_light_imports_stay_light(module, banned):
    code = f"import sys, {module}; print(','.join(m for m in {banned!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import {module} pulled in {out}"


def test_known_lists_are_not_stale():
    upward = {(m, d) for m, deps in GRAPH.items() for d, _ in deps if floor_of(d) > floor_of(m)}
    lazy = {(m, d) for m, deps in GRAPH.items() for d, top in deps if not top}
    assert KNOWN_UPWARD <= upward, f"fixed, remove from KNOWN_UPWARD: {KNOWN_UPWARD - upward}"
    assert KNOWN_LAZY - KNOWN_UPWARD <= lazy, f"fixed, remove from KNOWN_LAZY: {(KNOWN_LAZY - KNOWN_UPWARD) - lazy}"
