"""Every registered collective has every part docs/add-a-collective.md lists: descriptor, module (algorithms,
builtin, harness), cost entry (every algorithm, gloo and NCCL bases), docs section."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from collectives import costs
from collectives.spec import COLLECTIVES, DEFAULT_SWEEP, SPECS

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def missing_parts(name: str) -> list[str]:
    """What collective ``name`` lacks, one phrase per part (empty when complete)."""
    from collectives.builtin import Builtin
    from collectives.harness import Harness
    from collectives.schedule import takes_segments

    problems: list[str] = []
    desc = SPECS[name]
    try:
        module = importlib.import_module(f"collectives.{name}")
    except ImportError:
        return [f"no module collectives/{name}.py"]
    algorithms = getattr(module, "ALGORITHMS", None)
    if not algorithms:
        problems.append("no ALGORITHMS in its module")
        algorithms = {}
    for wanted in (desc.bandwidth_algorithm, desc.latency_algorithm):
        if wanted not in algorithms:
            problems.append(f"the descriptor's algorithm {wanted!r} is not in ALGORITHMS")
    if not isinstance(getattr(module, "BUILTIN", None), Builtin):
        problems.append("no BUILTIN (collectives.builtin.Builtin) in its module")
    harness = getattr(module, "HARNESS", None)
    if not isinstance(harness, Harness):
        problems.append("no HARNESS (collectives.harness.Harness) in its module")
    else:
        for method in ("bind", "prepare", "count_wrong"):
            if getattr(type(harness), method) is getattr(Harness, method):
                problems.append(f"HARNESS does not define {method}")
    entry = costs.ENTRIES.get(name)
    if entry is None:
        problems.append("no entry in collectives.costs.ENTRIES")
    else:
        if set(entry.algorithms) != set(algorithms):
            problems.append(f"cost entry algorithms {sorted(entry.algorithms)} != module's {sorted(algorithms)}")
        pipelined = {a for a, fn in algorithms.items() if takes_segments(fn)}
        if set(entry.pipelined) != pipelined:
            problems.append(f"cost entry pipelines {sorted(entry.pipelined)}, the module segments {sorted(pipelined)}")
        for p in range(2, 9):
            gloo = costs.builtin_cost(name, p, 1 << 20, backend="gloo")
            if gloo.assumed or not gloo.basis:
                problems.append(f"no gloo basis at p = {p}")
                break
        if not callable(entry.nccl):
            problems.append("no NCCL basis (a function, or one that says NCCL's schedule is not modelled)")
    docs = (ROOT / "docs" / "costs.md").read_text()
    section = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## )", docs, re.S | re.M)
    if section is None:
        problems.append(f"no '## {name}' section in docs/costs.md")
    else:
        for algorithm in algorithms:
            if not re.search(rf"^\| {re.escape(algorithm)}\b", section.group(1), re.M):
                problems.append(f"docs/costs.md '## {name}' has no row for {algorithm}")
    return problems


@pytest.mark.parametrize("name", COLLECTIVES)
def test_every_collective_is_complete(name: str) -> None:
    assert missing_parts(name) == []


def test_a_missing_part_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: take parts away and it names them."""
    monkeypatch.delitem(costs.ENTRIES, "gather")
    assert missing_parts("gather") == ["no entry in collectives.costs.ENTRIES"]
    module = importlib.import_module("collectives.scatter")
    monkeypatch.delattr(module, "HARNESS")
    monkeypatch.setitem(module.ALGORITHMS, "ring", module.ALGORITHMS["linear"])
    got = missing_parts("scatter")
    assert "no HARNESS (collectives.harness.Harness) in its module" in got
    assert any("cost entry algorithms" in g for g in got)
    assert "docs/costs.md '## scatter' has no row for ring" in got


def test_the_default_sweep_is_the_six_classic_collectives() -> None:
    """``collbench run`` with no --collectives measures these (the README's first command stays fast); the
    others run when named."""
    assert DEFAULT_SWEEP == ("broadcast", "reduce", "all_reduce", "all_gather", "reduce_scatter", "all_to_all")
    assert set(COLLECTIVES) - set(DEFAULT_SWEEP) == {"gather", "scatter"}
