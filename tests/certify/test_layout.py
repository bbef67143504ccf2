"""Layout v2 of ``rlcert.certify``: one registration list, every certifier exported, no import cycles, no gymnasium."""

import ast
import subprocess
import sys
from pathlib import Path

import rlcert.certify
from rlcert.certify.core.registry import METHOD_MODULES, METHODS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rlcert" / "certify"


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_certify_does_not_import_gymnasium_or_sb3():
    assert _run("import sys, rlcert.certify; print(sorted(m for m in ('gymnasium', 'stable_baselines3') "
                "if m in sys.modules))") == "[]"


def test_envs_still_register_with_gymnasium_in_either_import_order():
    for first in ("import rlcert.certify, gymnasium as gym", "import gymnasium as gym, rlcert"):
        assert _run(f"{first}; print(gym.make('rlcert/ContinuousSeek-v0', d=2).unwrapped.d)") == "2"


def test_every_registered_certifier_is_exported_and_listed_once():
    assert len(METHODS) >= 11
    for name, cls in METHODS.items():
        assert getattr(rlcert.certify, cls.__name__) is cls, name
        assert cls.__name__ in rlcert.certify.__all__
        assert cls.__module__ in METHOD_MODULES, f"{cls.__module__} registers {name!r} but is not in METHOD_MODULES"
    assert len(set(METHOD_MODULES)) == len(METHOD_MODULES)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """rlcert.certify modules imported anywhere in the file (module level or inside functions)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("rlcert.certify.")}


def test_no_import_cycles_between_certify_modules():
    """Static import graph of rlcert/certify/** (deferred imports included; package __init__ files excluded as
    targets since importing a submodule always runs them): it must be acyclic."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = {m for m, p in files.items() if p.name != "__init__.py"}
    graph = {m: sorted(_imports(files[m], m) & modules - {m}) for m in modules}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in graph[m]:
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m)
    assert "rlcert.certify.core.smoothing" in graph  # the graph covers the package


def _method_modules() -> dict[str, Path]:
    """Certification methods and their floor-1 helpers: everything under rlcert/certify except the command-line
    code (cli/, policy/cli.py, the package's __main__)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    commands = ("rlcert.certify.policy.cli", "rlcert.certify.__main__")
    return {m: p for m, p in files.items() if not m.startswith("rlcert.certify.cli") and m not in commands}


def test_certification_methods_never_import_the_cli():
    """spec/architecture.md: methods load models and data through rlcert.certify.io, never through the CLI (the
    issue: adaptive/certifier.py and locally_biased/certifier.py imported cli.certify for model loading)."""
    offenders = {m: sorted(i for i in _imports(p, m) if i.startswith("rlcert.certify.cli")) for m, p in
                 _method_modules().items()}
    offenders = {m: i for m, i in offenders.items() if i}
    assert not offenders, offenders
    io = _imports(PACKAGE / "io.py", "rlcert.certify.io")
    assert not any(i.startswith("rlcert.certify.cli") for i in io)
    for rel in ("adaptive/certifier.py", "locally_biased/certifier.py", "cli/certify.py"):
        assert "rlcert.certify.io" in _imports(PACKAGE / rel, _module_name(PACKAGE / rel)), rel


def test_the_cli_check_catches_a_method_importing_the_cli(tmp_path, monkeypatch):
    pkg = tmp_path / "rlcert" / "certify"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "io.py").write_text("")
    (pkg / "m.py").write_text("def f():\n    from rlcert.certify.cli.certify import load_model\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    try:
        test_certification_methods_never_import_the_cli()
    except AssertionError as e:
        assert "rlcert.certify.m" in str(e)
    else:
        raise AssertionError("a method importing the CLI was not detected")


def test_cycle_detector_catches_a_cycle(tmp_path, monkeypatch):
    """The detector itself fails on a two-module cycle (the old ablation_models <-> dpa pattern)."""
    pkg = tmp_path / "rlcert" / "certify"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from rlcert.certify.b import g\n")
    (pkg / "b.py").write_text("from rlcert.certify import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    try:
        test_no_import_cycles_between_certify_modules()
    except AssertionError as e:
        assert "import cycle" in str(e)
    else:
        raise AssertionError("the cycle a -> b -> a was not detected")


def test_layout_folders_exist():
    """One folder per concept (other families -- locally biased, adaptive, policy inputs -- add their own)."""
    for folder in ("core", "randomized", "deterministic", "poisoning", "models", "cli"):
        assert (PACKAGE / folder / "__init__.py").is_file()
    assert (PACKAGE / "io.py").is_file()  # model and data loading, below the CLI
