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


def test_send_recv_is_a_point_to_point_case_of_the_same_descriptor() -> None:
    """send_recv is described like a collective (kind point_to_point) but is no collective: not registered, not in
    the cost table, measured only when named, busbw = algbw, op none, no root, out of place."""
    from collectives.spec import CASES, SEND_RECV, describe, is_point_to_point

    assert describe("send_recv") is SEND_RECV and CASES["send_recv"] is SEND_RECV
    assert SEND_RECV.is_point_to_point and is_point_to_point("send_recv") and SEND_RECV.min_world_size == 2
    assert not any(is_point_to_point(c) for c in COLLECTIVES) and not is_point_to_point("nope")
    assert "send_recv" not in COLLECTIVES and "send_recv" not in costs.ENTRIES and not SEND_RECV.default_sweep
    assert (SEND_RECV.busbw(8), SEND_RECV.recorded_op("sum"), SEND_RECV.recorded_root(0)) == (1.0, "none", -1)
    assert SEND_RECV.variants("both") == (False,) and SEND_RECV.program == "sendrecv"
    assert SEND_RECV.p2p.algorithms == ("latency", "bw", "bibw", "ring_shift")
    with pytest.raises(ValueError, match="not point-to-point"):
        SPECS["all_reduce"].p2p  # noqa: B018
