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
PACKAGES = ("collectives", "bench", "analysis")


def test_no_test_folder_shadows_a_package() -> None:
    """pytest's default import mode puts test folders on sys.path: one named like a package hides it."""
    shadows = [p.relative_to(ROOT) for p in (ROOT / "tests").rglob("*") if p.is_dir() and p.name in PACKAGES]
    assert not shadows, f"test folders named like a package: {shadows}"


def test_wheel_ships_exactly_the_three_packages() -> None:
    import setuptools

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = setuptools.find_packages(str(ROOT), include=cfg["tool"]["setuptools"]["packages"]["find"]["include"])
    assert {name.split(".")[0] for name in found} == set(PACKAGES)
    # data files the code reads at run time travel in the wheel too
    assert "hardware.json" in cfg["tool"]["setuptools"]["package-data"]["analysis"]
    assert (ROOT / "analysis" / "hardware.json").is_file()


def _module_names() -> dict[str, Path]:
    names = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).glob("*.py"):
            names[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return names


def _imports(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports anywhere (module level or inside functions)."""
    deps: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            deps |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            deps |= subs or ({node.module} & known)
    return deps


def test_no_import_cycles_between_modules() -> None:
    """Data flows collectives -> bench -> analysis; inside a package no two modules import each other."""
    names = _module_names()
    graph = {m: _imports(p, set(names)) - {m} for m, p in names.items()}
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


def test_analysis_and_collectives_never_import_bench_internals_with_torch() -> None:
    """analysis may use bench's torch-free vocabulary (result schema, size strings, sample statistics); never the
    harness (torch)."""
    names = _module_names()
    for mod, path in names.items():
        if mod.startswith("analysis"):
            bench_deps = {d for d in _imports(path, set(names)) if d.startswith("bench")}
            assert bench_deps <= {"bench.schema", "bench.sizes", "bench.stats"}, f"{mod} imports {bench_deps}"
        if mod.startswith("collectives"):
            assert not any(d.startswith(("bench", "analysis")) for d in _imports(path, set(names))), mod


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
