"""The repository's shape: what a fresh clone, the wheel and CI rely on (no processes, no torch needed)."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
#: the layers, bottom first: a module may import from its own layer and those below, never from one above
PACKAGES = ("collectives", "bench", "analysis", "collbench")
#: bench modules analysis may use: the result schema, size strings, sample statistics, the error and exit codes,
#: the pairs schedule (each torch-free, which test_torch_stays_out_of_analysis_and_the_command_layer checks)
BENCH_FOR_ANALYSIS = {"bench.schema", "bench.sizes", "bench.stats", "bench.errors", "bench.pairings",
                      "bench.hunt_strategy"}
#: the one upward hand-over: ``python -m bench`` runs ``collbench`` (runpy, not an import) as an alias
ALIASES = {("bench.__main__", "collbench")}


def test_no_test_folder_shadows_a_package() -> None:
    """pytest's default import mode puts test folders on sys.path: one named like a package hides it."""
    shadows = [p.relative_to(ROOT) for p in (ROOT / "tests").rglob("*") if p.is_dir() and p.name in PACKAGES]
    assert not shadows, f"test folders named like a package: {shadows}"


def test_wheel_ships_exactly_the_four_packages() -> None:
    import setuptools

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = setuptools.find_packages(str(ROOT), include=cfg["tool"]["setuptools"]["packages"]["find"]["include"])
    assert {name.split(".")[0] for name in found} == set(PACKAGES)
    assert "collbench.commands" in found
    assert cfg["project"]["scripts"]["collbench"] == "collbench.cli:main"
    assert cfg["project"]["entry-points"]["pytest11"]["collbench"] == "bench.pytest_plugin"
    # data files the code reads at run time travel in the wheel too
    assert "hardware.json" in cfg["tool"]["setuptools"]["package-data"]["analysis"]
    assert (ROOT / "analysis" / "hardware.json").is_file()


def _module_names() -> dict[str, Path]:
    names = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return names


def _imported(node: ast.AST) -> set[str]:
    """Dotted names one import statement (or ``runpy.run_module`` call) brings in, submodules spelled out."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "run_module" and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return {first.value}
    return set()


def _imports(path: Path, known: set[str], *, module_level: bool = False) -> set[str]:
    """Modules ``path`` imports: project modules of ``known`` (a package's ``__init__`` when no module of it is
    named) and third-party top-level names; every import statement, or with ``module_level`` only those that
    run when the module is imported (not inside a function)."""
    deps: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text())]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            todo.append(child)
        names = _imported(node)
        project = {n for n in names if n in known}
        deps |= {n for n in project if not any(m.startswith(n + ".") for m in project)}
        deps |= {n.split(".")[0] for n in names if n.split(".")[0] not in PACKAGES}
    return deps


def _layer(module: str) -> int:
    return PACKAGES.index(module.split(".")[0])


def test_every_import_between_packages_points_down() -> None:
    """collectives <- bench <- analysis <- collbench: every import statement anywhere (module level or inside a
    function) reaches its own layer or one below; bench never imports analysis or the commands, collectives
    imports neither; analysis uses only bench's torch-free vocabulary (BENCH_FOR_ANALYSIS)."""
    names = _module_names()
    upward, harness = [], []
    for mod, path in names.items():
        for dep in _imports(path, set(names)):
            if dep not in names:
                continue
            if _layer(dep) > _layer(mod) and (mod, dep) not in ALIASES:
                upward.append(f"{mod} -> {dep}")
            if mod.startswith("analysis") and dep.startswith("bench") and dep not in BENCH_FOR_ANALYSIS | {"bench"}:
                harness.append(f"{mod} -> {dep}")
    assert not upward, f"imports against the layers: {upward}"
    assert not harness, f"analysis reaches into the harness: {harness}"
    assert ALIASES <= {(m, d) for m, p in names.items() for d in _imports(p, set(names))}, "the alias moved"


def test_torch_stays_out_of_analysis_and_the_command_layer() -> None:
    """analysis never imports torch, not even inside a function; importing any analysis or collbench module (and
    the bench modules analysis uses) loads no torch: no module it imports at module level, directly or through
    other project modules, imports torch then (the commands that run ranks import it when they start them)."""
    names = _module_names()
    known = set(names)
    at_import = {m: _imports(p, known, module_level=True) for m, p in names.items()}
    for mod, path in names.items():
        if mod.startswith("analysis"):
            assert "torch" not in _imports(path, known), f"{mod} imports torch"
    checked = [m for m in names if m.startswith(("analysis", "collbench"))] + sorted(BENCH_FOR_ANALYSIS)
    for mod in checked:
        seen, todo = set(), [mod]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            assert "torch" not in at_import[m], f"importing {mod} imports torch (through {m})"
            parents = [".".join(m.split(".")[:i]) for i in range(1, m.count(".") + 1)]  # packages load first
            todo += [d for d in at_import[m] | set(parents) if d in known]


def test_options_are_read_only_in_the_command_layer() -> None:
    """One usage parser (``collbench.cli.UsageParser``) and one module per subcommand in ``collbench.commands``
    (each with ``add_arguments`` and ``run``); no library module of bench or analysis builds a parser or adds an
    option, and none defines exit codes."""
    names = _module_names()
    offenders = []
    for mod, path in names.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            call = node.func if isinstance(node, ast.Call) else None
            called = getattr(call, "attr", None) or getattr(call, "id", None)
            if called in ("ArgumentParser", "add_argument", "add_argument_group") and not mod.startswith("collbench"):
                offenders.append(f"{mod}: {called}")
            if isinstance(node, ast.ClassDef) and mod != "collbench.cli":
                bases = {getattr(b, "attr", None) or getattr(b, "id", None) for b in node.bases}
                if "ArgumentParser" in bases:
                    offenders.append(f"{mod}: a parser class {node.name}")
            stores = node.targets if isinstance(node, ast.Assign) else []
            targets = [n.id for t in stores for n in ast.walk(t) if isinstance(n, ast.Name)]
            if mod != "bench.errors" and any(t.startswith("EXIT_") for t in targets):
                offenders.append(f"{mod}: defines {[t for t in targets if t.startswith('EXIT_')]}")
    assert not offenders, offenders
    from collbench.cli import COMMANDS

    for name, command in COMMANDS.items():
        path = ROOT / "collbench" / "commands" / f"{command.module}.py"
        defs = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert {"add_arguments", "run"} <= defs, f"collbench {name}: {path.name} lacks add_arguments or run"


def test_no_import_cycles_between_modules() -> None:
    """Inside a package no two modules import each other (the layers above keep packages apart)."""
    names = _module_names()
    graph = {m: {d for d in _imports(p, set(names)) if d in names} - {m} for m, p in names.items()}
    graph = {m: {d for d in deps if d not in PACKAGES} for m, deps in graph.items()}  # __init__ is always loaded
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(graph.get(node, ())):
            if dep in path:
                cycles.append(path[path.index(dep) :] + [dep])
            elif len(path) < 12:
                visit(dep, path + [dep])

    for m in graph:
        visit(m, [m])
    assert not cycles, f"import cycles: {sorted({' -> '.join(c) for c in cycles})}"


@pytest.mark.skipif(shutil.which("ruff") is None and importlib.util.find_spec("ruff") is None,
                    reason="ruff is not installed (pip install -e '.[test]' brings it)")  # fmt: skip
def test_ruff_is_clean() -> None:
    """Lint is part of the test command, so the README's one test command covers it."""
    exe = shutil.which("ruff") or sys.executable
    args = [exe, "check", "."] if exe != sys.executable else [exe, "-m", "ruff", "check", "."]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_ci_runs_the_readmes_two_commands() -> None:
    """.ci/run runs what a newcomer types: the Quick start's main job and its test command, nothing else."""
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    commands = module.quick_start_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(commands) == 2, commands
    assert "collbench run" in commands[0] and "pip install -e ." in commands[0]
    assert commands[1].endswith("pytest") and "pip install -e '.[test]'" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_commands.py README.md" in ci


def test_docs_are_in_the_repository() -> None:
    """Nothing refers to design documents a clone does not have."""
    offenders = []
    for path in ROOT.rglob("*"):
        if path.suffix not in (".py", ".md", ".sh", ".toml", ".sbatch") or not path.is_file():
            continue
        if {".git", ".venv", "venv", "node_modules"} & set(path.relative_to(ROOT).parts) or ".egg-info" in str(path):
            continue
        text = path.read_text(errors="replace")
        if "DESIGN.md" in text or "THEORY.md" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not [o for o in offenders if o != "tests/test_layout.py"], offenders
