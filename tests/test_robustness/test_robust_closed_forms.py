"""The closed forms of ``collectives.costs`` against the per-rank computations they replace.

The double binary tree's fill and drain were measured on its schedule, built rank by rank from the same loops as
``collectives.all_reduce.tree`` and run through ``collectives.critpath``; Bruck's all-to-all counted its moved
blocks slot by slot. Both references live here: the critical path for every p up to 64 (and a sample above), a
step-by-step longest path over the same schedule (the critical path's rule, one step at a time) for every p up to
1100 and a sample up to 4200. Offline the same comparison held for every p in 3..4199 and k = 1, 2, 3.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from collectives import costs
from collectives.critpath import Event, Schedule, critical_path
from collectives.trees import dtree_parents, heights_depths


def _schedule_events(p: int, k: int) -> list[list[Event]]:
    """The double binary tree's schedule with k segments per tree (what costs measured before its closed forms)."""
    trees = []
    for parent in dtree_parents(p):
        height, depth = heights_depths(parent)
        children: list[list[int]] = [[] for _ in range(p)]
        for c in range(p):
            if parent[c] >= 0:
                children[parent[c]].append(c)
        trees.append((parent, height, depth, children))
    events: list[list[Event]] = [[] for _ in range(p)]
    up = k + max(max(t[1]) for t in trees)
    down = k + max(max(t[2]) for t in trees) - 1
    for r in range(p):
        for step in range(up):
            e = Event(r, len(events[r]))
            for parent, height, _, children in trees:
                if parent[r] >= 0 and 0 <= step - height[r] < k:
                    e.sends.append((parent[r], 1))
                for c in children[r]:
                    if 0 <= step - height[c] < k:
                        e.recvs.append((c, 1))
                        e.combined += 1
            if e.sends or e.recvs:
                events[r].append(e)
        for step in range(down):
            e = Event(r, len(events[r]))
            for parent, _, depth, children in trees:
                if 0 <= step - depth[r] < k:
                    e.sends.extend((c, 1) for c in children[r])
                if parent[r] >= 0 and 0 <= step - depth[r] + 1 < k:
                    e.recvs.append((parent[r], 1))
            if e.sends or e.recvs:
                events[r].append(e)
    return events


def _critpath_fill(p: int, k: int) -> tuple[int, int]:
    path = critical_path(Schedule(p, 2 * k, _schedule_events(p, k), [0] * p))
    return round(path.W * 2 * k), round(path.G * 2 * k)


def _stepwise_fill(p: int, k: int) -> tuple[int, int]:
    """The same longest paths, one step at a time: every message of the schedule pairs two events of the same
    step, so a rank's path after step s is max(its own, its partners' after s - 1) + its weight at s."""
    trees = []
    for parent in dtree_parents(p):
        height, depth = heights_depths(parent)
        par = np.asarray(parent)
        nonroot = np.flatnonzero(par >= 0)
        trees.append((par, np.asarray(height), np.asarray(depth), nonroot))
    fw, fg = np.zeros(p), np.zeros(p)
    up = k + max(int(t[1].max()) for t in trees)
    down = k + max(int(t[2].max()) for t in trees) - 1

    def advance(src: np.ndarray, dst: np.ndarray, reducing: bool) -> None:
        sends, recvs = np.bincount(src, minlength=p), np.bincount(dst, minlength=p)
        active = (sends > 0) | (recvs > 0)
        for f, w in ((fw, np.maximum(sends, recvs)), (fg, recvs if reducing else np.zeros(p))):
            m = f.copy()
            np.maximum.at(m, dst, f[src])
            np.maximum.at(m, src, f[dst])
            f[active] = m[active] + w[active]

    for s in range(up):
        act = [nr[(s - h[nr] >= 0) & (s - h[nr] < k)] for par, h, d, nr in trees]
        advance(np.concatenate(act), np.concatenate([t[0][a] for t, a in zip(trees, act, strict=True)]), True)
    for s in range(down):
        act = [nr[(s - d[nr] + 1 >= 0) & (s - d[nr] + 1 < k)] for par, h, d, nr in trees]
        advance(np.concatenate([t[0][a] for t, a in zip(trees, act, strict=True)]), np.concatenate(act), False)
    return int(fw.max()), int(fg.max())


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_double_binary_tree_fill_equals_the_critical_path(k):
    for p in [*range(3, 65), 96, 100, 129, 130, 162, 193, 256, 258]:
        assert costs._dbt_fill(p, k) == _critpath_fill(p, k), (p, k)


def test_the_stepwise_reference_is_the_critical_path():
    for p in (5, 12, 33, 48, 97, 106):
        for k in (1, 2, 3):
            assert _stepwise_fill(p, k) == _critpath_fill(p, k), (p, k)


@pytest.mark.parametrize("k", [1, 2])
def test_double_binary_tree_fill_up_to_thousands_of_ranks(k):
    ps = [*range(3, 1101), *range(1101, 4200, 37), 2048, 2049, 4096, 4097]
    bad = [(p, costs._dbt_fill(p, k), ref) for p in ps if costs._dbt_fill(p, k) != (ref := _stepwise_fill(p, k))]
    assert not bad, bad[:5]


def test_each_further_segment_adds_four_half_segments_through_the_port():
    for p in range(4, 300, 7):
        for k in (3, 4):
            assert costs._dbt_fill(p, k) == _stepwise_fill(p, k), (p, k)


def test_bruck_all_to_all_closed_form():
    for p in range(2, 1500):
        moved = sum(sum(1 for i in range(1, p) if i >> b & 1) for b in range(costs.lg_ceil(p)))
        assert costs.cost("all_to_all", "bruck", p).W == moved / p, p


def test_every_cost_at_a_million_ranks_is_quick():
    """Every algorithm's L, W, G at p = 10^6 (the double binary tree at one segment included: its O(p) pass)
    within a budget a loaded two-core CI machine meets; at p = 10^21 every cost but that one is closed form."""
    t0 = time.perf_counter()
    for (collective, algorithm) in costs.COSTS:
        for n in (1 << 10, 1 << 30):
            c = costs.cost(collective, algorithm, 10**6, nbytes=n, backend="gloo")
            assert c.L >= 0 and c.W >= 0 and np.isfinite(c.W)
    assert time.perf_counter() - t0 < 20
    t0 = time.perf_counter()
    for (collective, algorithm) in costs.COSTS:
        c = costs.cost(collective, algorithm, 10**21, nbytes=1 << 40, backend="gloo")
        assert c.L > 0 and np.isfinite(c.W)
    assert time.perf_counter() - t0 < 1


def test_one_segment_tree_beyond_the_schedule_limit_refuses():
    p = costs.DBT_SCHEDULE_MAX_P + 2
    with pytest.raises(ValueError, match="one-segment double binary tree"):
        costs.cost("all_reduce", "tree", p, nbytes=1024)
    odd = costs.cost("all_reduce", "tree", p + 1, nbytes=1024)  # odd p: closed form at any size
    assert odd.L == 2 * costs.lg_ceil(p + 1)
