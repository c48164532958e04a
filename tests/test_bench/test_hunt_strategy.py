"""The search of collbench hunt on the model network (torch-free): what it blames, in how many rounds, what it says
when nothing is slow, when the budget runs out and when a node stops answering."""

from __future__ import annotations

import math
import random

import pytest

from bench.hunt_sim import ModelNetwork, Planted, plant
from bench.hunt_strategy import CONFIRM, SCREEN, HuntSettings, default_group_size, hunt, partition


def _search(n: int, planted: list[Planted], seed: int, rails: int = 1, noise: float = 0.03, **kw):
    net = ModelNetwork(n, rails, planted, noise, seed, **{k: v for k, v in kw.items() if k == "down"})
    settings = HuntSettings(group_size=default_group_size(n), seed=seed,
                            **{k: v for k, v in kw.items() if k != "down"})  # fmt: skip
    return hunt(net, settings)


def _blamed(result) -> set[tuple[int, int | None]]:
    return {(b.node, b.rail) for b in result.blamed}


@pytest.mark.parametrize("n", [2, 3, 7, 8, 33, 100])
def test_partition_is_disjoint_covers_everything_and_has_no_singletons(n: int) -> None:
    groups = partition(range(n), 8, random.Random(n))
    flat = [x for g in groups for x in g]
    assert sorted(flat) == list(range(n)) and all(len(g) >= 2 for g in groups)
    assert max(map(len, groups)) - min(map(len, groups)) <= 1


@pytest.mark.parametrize("seed", range(5))
def test_one_slow_node_of_1024_is_blamed_alone_within_3_log2_n_rounds(seed: int) -> None:
    planted = plant(1024, 1, 1, 0, 0.5, seed)
    result = _search(1024, planted, seed)
    assert _blamed(result) == {(planted[0].node, None)}
    assert len(result.rounds) <= 3 * math.log2(1024)
    (b,) = result.blamed
    assert b.confidence > 0.99 and 0.4 < b.busbw_gbps / b.reference_gbps < 0.6
    assert len({tuple(e["nodes"]) for e in b.evidence if e["kind"] == CONFIRM}) >= 2  # two different anchors


@pytest.mark.parametrize("seed", range(3))
def test_two_slow_nodes_of_1024_are_both_blamed(seed: int) -> None:
    planted = plant(1024, 1, 2, 0, 0.5, seed)
    result = _search(1024, planted, seed)
    assert _blamed(result) == {(p.node, None) for p in planted}
    assert len(result.rounds) <= 3 * math.log2(1024)


@pytest.mark.parametrize("seed", range(10))
def test_one_slow_node_of_8_in_fewer_rounds_than_the_pairs_matrix(seed: int) -> None:
    planted = plant(8, 1, 1, 0, 0.5, seed)
    result = _search(8, planted, seed)
    assert _blamed(result) == {(planted[0].node, None)} and len(result.rounds) < 7


@pytest.mark.parametrize("seed", range(5))
def test_a_healthy_cluster_blames_nothing_and_says_what_it_could_have_seen(seed: int) -> None:
    result = _search(256, [], seed, noise=0.05)
    assert result.blamed == [] and result.status == "complete"
    assert 0.15 <= result.min_detectable_slowdown <= 0.3  # 1 - exp(-4 sigma) with sigma about 5 %
    assert [r.phase for r in result.rounds] == [SCREEN, SCREEN]


def test_more_noise_lowers_the_cut_and_still_blames_no_healthy_node() -> None:
    quiet, loud = _search(128, [], 1, noise=0.01), _search(128, [], 1, noise=0.12)
    assert loud.cut < quiet.cut and loud.blamed == []
    assert loud.min_detectable_slowdown > 0.3


def test_a_slow_nic_is_blamed_as_that_rail_and_a_slow_node_as_the_node() -> None:
    planted = [Planted(11, 2, 0.5), Planted(40, None, 0.5)]
    result = _search(64, planted, 4, rails=4)
    assert (11, 2) in _blamed(result) and (40, None) in _blamed(result)
    assert all(b.node in (11, 40) for b in result.blamed)
    kinds = {b.node: b.kind for b in result.blamed}
    assert kinds[40] == "node-local"  # a whole slow node is slow on its own all-reduce too: blamed there first


def test_a_budget_too_small_leaves_suspects_unblamed() -> None:
    planted = plant(256, 1, 1, 0, 0.5, 3)
    result = _search(256, planted, 3, max_rounds=2)
    assert result.blamed == [] and result.status == "budget"
    assert (planted[0].node, 0) in result.suspects and len(result.rounds) == 2


def test_a_node_that_stops_answering_ends_the_search_blamed_and_keeps_the_tests() -> None:
    result = _search(64, plant(64, 1, 1, 0, 0.5, 2), 2, down=frozenset({9}))
    assert result.status == "unreachable" and len(result.rounds) == 1
    assert [(b.node, b.kind) for b in result.blamed] == [(9, "unreachable")]
    tests = result.rounds[0].results
    assert sum(x.busbw_gbps is not None for x in tests) == len(tests) - 1  # the others' figures are kept
