"""The cost table is the schedule the code runs.

Every registered algorithm of every collective is run on simulated ranks with the P2P helper and the
reduction recorded (collectives.schedule: no process group, no data moved), its messages are matched
between ranks and its critical path measured (collectives.critpath: one-port full-duplex W, one alpha per
batched exchange); L, W and G must equal collectives.costs exactly.  A new algorithm without a matching
cost fails here.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from collectives import algorithms, costs, get  # noqa: E402
from collectives.critpath import Event, Schedule, critical_path  # noqa: E402
from collectives.schedule import record, takes_segments  # noqa: E402
from collectives.trees import dtree_parents, heights_depths  # noqa: E402

SMALL_P = list(range(1, 34))
LARGE_P = [48, 64, 96]
TREE_P = [512]
SEGMENTS = (1, 2, 3, 5, 8)  # pipelined algorithms: segments per pipeline
ELEM = 4  # float32


def _cases() -> list[tuple[str, str]]:
    return [(c, a) for c in costs.COLLECTIVES for a in algorithms(c) if a != "builtin"]


def _check(collective: str, algorithm: str, p: int, numel: int, segment_bytes: int | None = None) -> None:
    sched = record(collective, algorithm, p, numel, segment_bytes=segment_bytes)
    path = critical_path(sched)
    c = costs.cost(collective, algorithm, p, nbytes=sched.nbytes, segment_bytes=segment_bytes)
    got = (path.L, path.W, path.G)
    want = (c.L, c.W, c.G)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (
        f"{collective}/{algorithm} p={p} numel={numel} segment_bytes={segment_bytes}: executed (L, W, G) = {got}, "
        f"collectives/costs.py says {want}"
    )


#: pipelined rings: (collective, algorithm) -> channels; each channel's part is p blocks of k segments
RINGS = {("all_reduce", "ring"): 1, ("all_reduce", "ring_2ch"): 2, ("reduce_scatter", "ring"): 1}


def _pipelined_numel(collective: str, algorithm: str, p: int, k: int, seg_elems: int) -> int:
    # the tree splits the buffer in two halves of k segments each; the rings cut every block of every channel in
    # k segments; the chains pipeline the whole buffer
    if (collective, algorithm) in RINGS:
        return RINGS[(collective, algorithm)] * p * k * seg_elems
    return 2 * k * seg_elems if (collective, algorithm) == ("all_reduce", "tree") else k * seg_elems


def test_every_algorithm_has_a_cost_and_pipelining_is_declared():
    for collective, algorithm in _cases():
        assert (collective, algorithm) in costs.COSTS, f"{collective}/{algorithm}: no entry in collectives/costs.py"
        pipelined = takes_segments(get(collective, algorithm))
        assert pipelined == ((collective, algorithm) in costs.PIPELINED), (collective, algorithm)


@pytest.mark.parametrize("collective,algorithm", _cases())
def test_executed_schedule_matches_costs(collective, algorithm):
    pipelined = (collective, algorithm) in costs.PIPELINED
    sizes = SMALL_P + LARGE_P + (TREE_P if algorithm == "tree" else [])
    for p in sizes:
        if pipelined:
            seg_elems = 4
            if (collective, algorithm) in RINGS:  # 2(p - 1)k steps per rank: fewer k keep the test short
                ks = (1, 2, 3) if p <= 33 else (1,)
            else:
                ks = SEGMENTS if p <= 33 else (1, 5)
            for k in ks:
                _check(collective, algorithm, p, _pipelined_numel(collective, algorithm, p, k, seg_elems),
                       seg_elems * ELEM)  # fmt: skip
        else:
            # numel a multiple of 2p and of p' (Rabenseifner's blocks) so every block is whole: exact fractions
            _check(collective, algorithm, p, 2 * p * (costs.pow2_floor(p) if algorithm == "rabenseifner" else 1))


@pytest.mark.parametrize("k", [16, 40])
@pytest.mark.parametrize("p", [5, 12, 24, 33])
def test_pipelined_tree_beyond_the_measured_segment_counts(p, k):
    """The double binary tree's closed forms at many segments (each adds 4 and 2): check against the code."""
    _check("all_reduce", "tree", p, 2 * k * 2, 2 * ELEM)


@pytest.mark.parametrize("collective,algorithm", sorted(RINGS))
@pytest.mark.parametrize("p", [2, 3, 5, 8])
def test_pipelined_rings_match_on_uneven_sizes(collective, algorithm, p):
    """Sizes that are not multiples of p, of the channels or of the segment, and more segments than RING_DEPTH:
    every message still has the size its receiver posted (critical_path matches them), none is left over, no
    step waits in a cycle; every rank posts up to 2(p - 1)k steps ((p - 1)k for reduce_scatter), k = ceil(n /
    (channels p s)), and with whole segments pays one alpha per ring step: L = 2(p - 1) (p - 1), as costs says."""
    channels = RINGS[(collective, algorithm)]
    phases = 2 if collective == "all_reduce" else 1
    sizes = [(7, 1), (13 * p + 5, 3), (101, 4), (p * 17, 5), (3 * p, 1000), (40 * p + 1, 1), (channels * p * 12, 1)]
    for numel, seg_elems in sizes:
        if collective == "reduce_scatter":
            numel -= numel % p  # its input is p whole blocks
            if numel == 0:
                continue
        sched = record(collective, algorithm, p, numel, segment_bytes=seg_elems * ELEM)
        path = critical_path(sched)
        k = costs.ring_segments(p, numel * ELEM, seg_elems * ELEM, channels)
        # an empty segment (a block shorter than k) is not sent, which can shift the steps' alpha by a few
        assert max(len(evs) for evs in sched.events) <= phases * (p - 1) * k, (numel, seg_elems)
        assert path.L <= 2 * phases * (p - 1), (numel, seg_elems)
        if numel % (channels * p * k) == 0:  # whole segments: exactly one alpha per ring step
            assert max(len(evs) for evs in sched.events) == phases * (p - 1) * k
            assert path.L == costs.cost(collective, algorithm, p, nbytes=numel * ELEM).L == phases * (p - 1)


def test_ring_costs_take_a_segment_size():
    # 16 MiB at p = 2, 1 MiB segments: 8 segments per block; one alpha per ring step whatever k
    c = costs.cost("all_reduce", "ring", 2, nbytes=16 << 20, segment_bytes=1 << 20)
    assert (c.L, c.W, c.G) == (2.0, 1.0, 0.5)
    assert costs.ring_segments(2, 16 << 20, 1 << 20) == 8 and costs.ring_segments(2, 16 << 20, 1 << 20, 2) == 4
    assert costs.cost("reduce_scatter", "ring", 4, nbytes=4 << 20, segment_bytes=256 << 10).L == 3.0
    assert ("all_reduce", "ring_2ch") in costs.PIPELINED and ("reduce_scatter", "ring") in costs.PIPELINED


def test_tree_depth_is_ceil_lg_p():
    for p in range(2, 600):
        depth = max(max(heights_depths(t)[1]) for t in dtree_parents(p))
        assert depth == costs.lg_ceil(p), p


def test_double_binary_tree_figures():
    # p = 512, 1 GiB, 1 MiB segments: k = 512 per tree, D = 9 -> 2(512 + 8) = 1040 steps
    c = costs.cost("all_reduce", "tree", 512, nbytes=1 << 30, segment_bytes=1 << 20)
    assert c.L == 1040
    assert c.W == pytest.approx(2.0, rel=0.02) and c.G == pytest.approx(1.0, rel=0.02)
    # p = 3, one segment: 4 steps, W = 2, G = 1
    small = costs.cost("all_reduce", "tree", 3, nbytes=8, segment_bytes=1 << 20)
    assert (small.L, small.W, small.G) == (4.0, 2.0, 1.0)


def test_fold_imbalance_figures():
    ag = costs.cost("all_gather", "tree", 24)
    assert ag.W == pytest.approx(1 / 24 + 30 / 24 + 1)  # 2.29
    rs = costs.cost("reduce_scatter", "tree", 24)
    assert (rs.W, rs.G) == pytest.approx((1 + 30 / 24 + 1 / 24, 1 + 30 / 24))  # 2.29, 2.25


def test_critical_path_rejects_unmatched_and_deadlocked_schedules():
    lonely = Schedule(2, 4, [[Event(0, 0, sends=[(1, 4)])], []], [0, 0])
    with pytest.raises(AssertionError, match="never received"):
        critical_path(lonely)
    wrong_size = Schedule(2, 4, [[Event(0, 0, sends=[(1, 4)])], [Event(1, 0, recvs=[(0, 2)])]], [0, 0])
    with pytest.raises(AssertionError, match="bytes sent"):
        critical_path(wrong_size)
    # rank 0 first receives from 1, rank 1 first receives from 0: each waits for the other's second call
    cycle = Schedule(2, 4, [
        [Event(0, 0, recvs=[(1, 4)]), Event(0, 1, sends=[(1, 4)])],
        [Event(1, 0, recvs=[(0, 4)]), Event(1, 1, sends=[(0, 4)])],
    ], [0, 0])  # fmt: skip
    with pytest.raises(AssertionError, match="deadlock"):
        critical_path(cycle)
