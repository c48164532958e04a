"""The pytest-benchmark regression gate of docs/pytest-gate.md, run as written on a scratch copy of the repository:
the baseline is saved, unchanged code passes the compare, and a copy whose ring all_reduce runs twice (a planted
2x slowdown) fails it. The recipe's commands are read from docs/pytest-gate.md, so what is tested is what the page
(and the README, test_readme_shows_the_recipe) tells users to run; ``-k all_reduce`` keeps it to six cases."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATE_DOC = ROOT / "docs" / "pytest-gate.md"
SUBSET = ["-k", "all_reduce"]  # builtin, ring, recursive_doubling at 1 MiB and 4 MiB
COPY = ("bench", "collectives", "analysis", "benchmarks", "pyproject.toml")
# the planted regression: the copy's ring all_reduce runs the ring twice (once on a scratch clone, so the
# result stays right and only the time doubles)
SLOW_RING = '''

def _ring_twice(tensor, op=ReduceOp.SUM, group=None, **kw):
    ring(tensor.clone(), op, group, **kw)
    ring(tensor, op, group, **kw)


ALGORITHMS["ring"] = _ring_twice
'''


def recipe_lines(text: str) -> list[str]:
    """The ``pytest benchmarks/ --benchmark-...`` command lines of a page's code blocks, comments stripped."""
    lines = [re.sub(r"^(- )?run: ", "", line.split("#")[0].strip()) for line in text.splitlines()]
    return [re.sub(r"\s+", " ", line) for line in lines if line.startswith("pytest benchmarks/ --benchmark-")]


def recipe() -> tuple[list[str], list[str]]:
    """(save, compare): the page's baseline command and its compare command."""
    lines = set(recipe_lines(GATE_DOC.read_text()))
    save = [line for line in lines if "--benchmark-autosave" in line and "--benchmark-compare" not in line]
    compare = [line for line in lines if "--benchmark-compare-fail=median:" in line and "autosave" not in line]
    assert len(save) == 1 and len(compare) == 1, lines
    return shlex.split(save[0]), shlex.split(compare[0])


def _run(copy: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """``argv`` (``pytest ...`` as on the page) in ``copy``, with the copy's packages first on the path."""
    assert argv[0] == "pytest"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COLLBENCH_"))}
    env["PYTHONPATH"] = str(copy)
    cmd = [sys.executable, "-m", "pytest", *argv[1:], *SUBSET, "-p", "no:cacheprovider"]
    return subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=240)


def _show(proc: subprocess.CompletedProcess) -> str:
    return f"rc {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"


def test_readme_shows_the_recipe() -> None:
    """The README's gate commands are the page's (the one place the threshold is measured and stated)."""
    readme = set(recipe_lines((ROOT / "README.md").read_text()))
    page = set(recipe_lines(GATE_DOC.read_text()))
    assert readme and readme <= page, f"README: {sorted(readme)}\ndocs/pytest-gate.md: {sorted(page)}"


@pytest.mark.alone
@pytest.mark.timeout(600)
def test_recipe_saves_passes_unchanged_and_fails_a_2x_slower_ring(tmp_path: Path) -> None:
    save, compare = recipe()
    copy = tmp_path / "repo"
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, copy / name, ignore=shutil.ignore_patterns("__pycache__", ".benchmarks"))
        else:
            shutil.copy2(src, copy / name)

    first = _run(copy, save)
    assert first.returncode == 0, _show(first)
    saved = list((copy / ".benchmarks").glob("*/0001_*.json"))
    assert len(saved) == 1, _show(first)
    names = {b["name"] for b in json.loads(saved[0].read_text())["benchmarks"]}
    assert len(names) == 6 and "test_collective[all_reduce-ring-1MiB]" in names, names

    same = _run(copy, compare)
    assert same.returncode == 0, _show(same)
    assert "(0001" in same.stdout and "6 passed" in same.stdout, _show(same)  # really compared with the baseline

    module = copy / "collectives" / "all_reduce.py"
    module.write_text(module.read_text() + SLOW_RING)
    slow = _run(copy, compare)
    assert slow.returncode != 0, _show(slow)
    out = slow.stdout + slow.stderr
    # every test passed (six dots; pytest-benchmark then ends the session with its PerformanceRegression), the gate
    # failed
    assert re.search(r"test_collectives_bench\.py \.{6}\s", out) and "Performance has regressed:" in out, _show(slow)
    regressed = re.findall(r"^\ttest_collective\[([\w-]+)\]", out.split("Performance has regressed:", 1)[1], re.M)
    assert "all_reduce-ring-1MiB" in regressed or "all_reduce-ring-4MiB" in regressed, _show(slow)
