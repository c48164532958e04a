"""The search of collbench hunt on the model network (torch-free): what it blames, in how many rounds, what it says
when nothing is slow, when the budget runs out and when a node stops answering."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from bench.hunt_sim import ModelNetwork, Planted, plant
from bench.hunt_strategy import (
    CONFIRM,
    LINK,
    SCREEN,
    SWEEP,
    HuntSettings,
    default_group_size,
    hunt,
    partition,
    ring_links,
    zigzag_rings,
)
from bench.hunt_strategy import (
    Test as RingTest,  # not collected as a test class
)


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


# --- links -------------------------------------------------------------------------------------------------


def _links(result) -> set[tuple[int, ...]]:
    return {(*b.nodes, b.rail) for b in result.blamed if b.kind == "link"}


@pytest.mark.parametrize("q", [2, 3, 4, 5, 8, 9, 16])
def test_zigzag_rings_cross_every_pair_once_over_all_nodes(q: int) -> None:
    rings = zigzag_rings(list(range(q)))
    assert len(rings) == max(1, math.ceil((q - 1) / 2)) and all(sorted(r) == list(range(q)) for r in rings)
    crossed = [lk for r in rings for lk in ring_links(RingTest(SWEEP, r, 0))]
    assert {lk[:2] for lk in crossed} == {(a, b) for a in range(q) for b in range(a + 1, q)}


@pytest.mark.parametrize(("n", "seed"), [(8, 0), (8, 1), (8, 2), (16, 3), (64, 4), (64, 5)])
def test_a_planted_slow_link_is_blamed_with_its_nodes_and_no_node(n: int, seed: int) -> None:
    planted = plant(n, 1, 0, 0, 0.5, seed, slow_links=1)
    result = _search(n, planted, seed, sweep_links=True)
    (p,) = planted
    assert _links(result) == {(p.node, p.peer, 0)} and len(result.blamed) == 1, result.blamed
    (b,) = result.blamed
    assert b.confidence > 0.99 and 0.4 < b.busbw_gbps / b.reference_gbps < 0.6
    pairs = [e for e in b.evidence if e["kind"] == LINK]
    assert len(pairs) >= 1 and any(len(e["nodes"]) > 2 for e in b.evidence)  # read as a pair; the ring implicated
    assert len(result.rounds) <= 2 + math.ceil((n - 1) / 2) + 3  # screen, sweep, at most three link rounds


def test_a_link_the_screen_crossed_is_found_without_the_sweep() -> None:
    # the first screen round's first group is a ring of 8; plant the link between its first two members
    n, seed = 64, 6
    first = partition(range(n), default_group_size(n), random.Random(seed * 1_000_003))[0]
    result = _search(n, [Planted(first[0], 0, 0.5, peer=first[1])], seed)
    assert _links(result) == {(first[0], first[1], 0)} and len(result.blamed) == 1
    assert len(result.rounds) <= 2 + 3 and LINK in {r.phase for r in result.rounds}


@pytest.mark.parametrize("seed", range(3))
def test_a_slow_node_is_still_blamed_as_the_node_beside_a_slow_link(seed: int) -> None:
    planted = plant(64, 1, 1, 0, 0.5, seed, slow_links=1)
    result = _search(64, planted, seed, sweep_links=True)
    assert {(b.node, b.kind) for b in result.blamed if b.kind != "link"} == {(planted[0].node, "network")}
    assert _links(result) == {(planted[1].node, planted[1].peer, 0)}


@pytest.mark.parametrize("seed", range(3))
def test_a_healthy_cluster_swept_for_links_blames_nothing(seed: int) -> None:
    result = _search(32, [], seed, noise=0.05, sweep_links=True)
    assert result.blamed == [] and result.status == "complete"
    assert [r.phase for r in result.rounds].count(SWEEP) == math.ceil(31 / 2)


class _SlowRound:
    """The model network with every test of one round at ``factor`` (a busy host, other traffic)."""

    def __init__(self, net: ModelNetwork, index: int, factor: float) -> None:
        self.net, self.index, self.factor, self.seen = net, index, factor, 0
        self.nodes, self.rails = net.nodes, net.rails

    def run_round(self, tests):
        results, seconds = self.net.run_round(tests)
        if self.seen == self.index:
            results = [replace(x, busbw_gbps=x.busbw_gbps * self.factor) for x in results]
        self.seen += 1
        return results, seconds


def test_a_link_round_slowed_as_a_whole_blames_no_link() -> None:
    n, seed = 16, 1
    planted = plant(n, 1, 0, 0, 0.5, seed, slow_links=1)
    sweep_rounds = math.ceil((n - 1) / 2)
    net = _SlowRound(ModelNetwork(n, 1, planted, 0.03, seed), 2 + sweep_rounds, 0.5)  # the first link round
    result = hunt(net, HuntSettings(group_size=default_group_size(n), seed=seed, sweep_links=True))
    assert result.rounds[2 + sweep_rounds].phase == LINK  # the slowed round was a link round
    (p,) = planted
    assert _links(result) == {(p.node, p.peer, 0)} and len(result.blamed) == 1, result.blamed
    slowed = result.rounds[2 + sweep_rounds].results  # healthy links read at half speed there, with the controls
    assert any(x.test.kind == LINK and set(x.test.nodes) != {p.node, p.peer} for x in slowed)
    assert any(x.test.kind == "control" for x in slowed)


class _PairsReadLess:
    """The model network where a pair reads 0.57 of a ring's busbw, as on the emulated cluster."""

    def __init__(self, net: ModelNetwork) -> None:
        self.net, self.nodes, self.rails = net, net.nodes, net.rails

    def run_round(self, tests):
        results, seconds = self.net.run_round(tests)
        return [replace(x, busbw_gbps=x.busbw_gbps * 0.57) if len(x.test.nodes) == 2 else x for x in results], seconds


@pytest.mark.parametrize(("n", "seed"), [(16, 0), (16, 9), (32, 7), (64, 1)])
def test_pairs_slower_than_rings_blame_no_healthy_link(n: int, seed: int) -> None:
    # every link round holds a control pair, so the pairs are judged against pairs, not the screen's rings
    planted = plant(n, 1, 0, 0, 0.5, seed, slow_links=1)
    result = hunt(_PairsReadLess(ModelNetwork(n, 1, planted, 0.03, seed)),
                  HuntSettings(group_size=default_group_size(n), seed=seed, sweep_links=True))  # fmt: skip
    (p,) = planted
    assert _links(result) == {(p.node, p.peer, 0)} and len(result.blamed) == 1, result.blamed


@pytest.mark.parametrize("seed", range(1, 4))
def test_four_nodes_too_few_to_hold_controls_back_still_read_the_link(seed: int) -> None:
    # the emulated test's cluster on paper: two candidate links cover all four nodes, so no control pair fits
    net = _PairsReadLess(ModelNetwork(4, 1, [Planted(1, 0, 0.5, peer=2)], 0.01, seed))
    result = hunt(net, HuntSettings(group_size=default_group_size(4), seed=seed, sweep_links=True))
    assert _links(result) == {(1, 2, 0)} and len(result.blamed) == 1 and len(result.rounds) <= 7
