"""The cost table against the closed forms of docs/theory.md, without torch."""

import math
import subprocess
import sys

import pytest

from collectives import costs
from collectives.costs import COLLECTIVES, Cost, busbw_factor, cost


def test_costs_import_no_torch():
    code = "import sys, collectives.costs, collectives; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "collective,p,expected",
    [
        ("all_reduce", 8, 1.75),
        ("all_gather", 8, 0.875),
        ("reduce_scatter", 8, 0.875),
        ("all_reduce", 2, 1.0),
        ("all_gather", 2, 0.5),
        ("broadcast", 8, 1.0),
        ("reduce", 3, 1.0),
        ("all_reduce", 1, 0.0),
        ("gather", 8, 0.875),  # nccl-tests' GatherGetBw / ScatterGetBw: (p - 1)/p
        ("scatter", 4, 0.75),
    ],
)
def test_busbw_factor_check_values(collective, p, expected):
    assert busbw_factor(collective, p) == pytest.approx(expected)


@pytest.mark.parametrize("p", [2, 3, 4, 5, 7, 8, 16])
def test_ring_all_reduce(p):
    c = cost("all_reduce", "ring", p, nbytes=p * 1024, segment_bytes=1 << 20)  # blocks of one segment: k = 1
    assert (c.L, c.W, c.G) == pytest.approx((2 * (p - 1), 2 * (p - 1) / p, (p - 1) / p))
    k = 5  # pipelined: 2(p - 1) steps of k segments each, one alpha per step, the same bytes
    c = cost("all_reduce", "ring", p, nbytes=p * k * 4096, segment_bytes=4096)
    assert (c.L, c.W, c.G) == pytest.approx((2 * (p - 1), 2 * (p - 1) / p, (p - 1) / p))


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_power_of_two_forms(p):
    lg = math.log2(p)
    assert cost("all_reduce", "recursive_doubling", p) == Cost(lg, lg, lg)
    rab = cost("all_reduce", "rabenseifner", p)
    assert (rab.L, rab.W, rab.G) == pytest.approx((2 * lg, 2 * (p - 1) / p, (p - 1) / p))
    assert cost("all_gather", "tree", p) == Cost(lg, (p - 1) / p, 0.0)
    assert cost("reduce_scatter", "tree", p) == Cost(lg, (p - 1) / p, (p - 1) / p)


@pytest.mark.parametrize("p", [3, 5, 6, 7])
def test_non_power_of_two_mpich_forms(p):
    q = 1 << (p.bit_length() - 1)
    lgf = p.bit_length() - 1
    rd = cost("all_reduce", "recursive_doubling", p)
    assert (rd.L, rd.W, rd.G) == (lgf + 2, lgf + 2, lgf + 1)
    rab = cost("all_reduce", "rabenseifner", p)
    assert (rab.L, rab.W, rab.G) == pytest.approx((2 * lgf + 2, 2 * (q - 1) / q + 2, 1 + (q - 1) / q))
    # the fold leaves newranks < r = p - q with two blocks: step i moves 2^i + min(2^i, r) blocks
    extra = sum(min(1 << i, p - q) for i in range(lgf))
    rs = cost("reduce_scatter", "tree", p)
    mid = (q - 1 + extra) / p
    assert (rs.L, rs.W, rs.G) == pytest.approx((lgf + 2, 1 + mid + 1 / p, 1 + mid))
    ag = cost("all_gather", "tree", p)
    assert (ag.L, ag.W, ag.G) == pytest.approx((lgf + 2, 1 / p + mid + 1, 0.0))


@pytest.mark.parametrize("p", [2, 3, 5, 8])
def test_binomial_and_ring_gather(p):
    lg = math.ceil(math.log2(p))
    assert cost("broadcast", "tree", p) == Cost(lg, lg, 0.0)
    assert cost("reduce", "tree", p) == Cost(lg, lg, lg)
    assert cost("all_reduce", "reduce_broadcast", p) == Cost(2 * lg, 2 * lg, lg)
    assert cost("all_gather", "bruck", p) == Cost(lg, (p - 1) / p, 0.0)
    assert cost("all_gather", "ring", p) == Cost(p - 1, (p - 1) / p, 0.0)
    sag = cost("broadcast", "scatter_allgather", p)
    assert (sag.L, sag.W) == pytest.approx((lg + p - 1, 2 * (p - 1) / p))


@pytest.mark.parametrize("p", [2, 3, 5, 8, 13])
def test_gather_and_scatter_forms(p):
    lg = math.ceil(math.log2(p))
    for collective in ("gather", "scatter"):
        assert cost(collective, "linear", p) == Cost(p - 1, (p - 1) / p, 0.0)
        assert cost(collective, "tree", p) == Cost(lg, (p - 1) / p, 0.0)
        gloo = cost(collective, "builtin", p, backend="gloo")
        assert (gloo.L, gloo.W, gloo.G, gloo.assumed) == (1.0, (p - 1) / p, 0.0, False) and collective in gloo.basis
        assert cost(collective, "builtin", p, backend="nccl").assumed  # grouped send/recv: not in NCCL's model


def test_pipelined_chain_matches_closed_form():
    p, s = 6, 1 << 16
    n = 40 * s
    k = 40
    c = cost("broadcast", "ring", p, nbytes=n, segment_bytes=s)
    alpha, beta = 10e-6, 1e-9
    # docs/theory.md, Pipelined chain: T = (p-2+k)(alpha + n beta / k)
    assert c.time_s(n, alpha, beta) == pytest.approx((p - 2 + k) * (alpha + n * beta / k))
    r = cost("reduce", "ring", p, nbytes=n, segment_bytes=s)
    assert r.G == pytest.approx((p - 2 + k) / k)
    with pytest.raises(ValueError, match="nbytes"):
        cost("broadcast", "ring", p)


def test_chain_of_two_is_one_segment():
    """p = 2: k = 1 minimises (p-2+k)(alpha + n beta / k) for any alpha, beta; the chain sends one message."""
    c = cost("broadcast", "ring", 2, nbytes=64 << 20, segment_bytes=1 << 20)
    assert (c.L, c.W, c.G) == (1.0, 1.0, 0.0)
    assert cost("reduce", "ring", 2, nbytes=64 << 20, segment_bytes=1 << 20).G == 1.0
    tree = cost("all_reduce", "tree", 2, nbytes=64 << 20, segment_bytes=1 << 20)  # = ring at p = 2
    ring = cost("all_reduce", "ring", 2, nbytes=2 << 20, segment_bytes=1 << 20)  # the ring with blocks of one segment
    assert (tree.L, tree.W, tree.G) == (2.0, 1.0, 0.5) == (ring.L, ring.W, ring.G)


def test_double_binary_tree_tends_to_w2_g1():
    big = cost("all_reduce", "tree", 8, nbytes=1e12, segment_bytes=1 << 20)
    assert big.W == pytest.approx(2.0, rel=1e-3) and big.G == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("collective", COLLECTIVES)
def test_every_algorithm_meets_lower_bound(collective):
    for p in range(2, 17):
        lb = costs.lower_bound(collective, p)
        for algo in costs.cost_algorithms(collective):
            c = cost(collective, algo, p, nbytes=1 << 24)
            assert c.L >= lb.L - 1e-12 or algo == "builtin", (algo, p)
            assert c.W >= lb.W - 1e-12 and c.G >= lb.G - 1e-12, (algo, p)


def test_world_size_one_costs_nothing_and_errors_are_clear():
    assert cost("all_reduce", "ring", 1) == Cost(0.0, 0.0, 0.0)
    with pytest.raises(KeyError, match="known"):
        cost("all_reduce", "nope", 4)
    with pytest.raises(KeyError, match="unknown collective"):
        busbw_factor("alltoall", 4)
    with pytest.raises(ValueError, match="positive"):
        busbw_factor("all_reduce", 0)


def test_rings_choose_half_a_block_between_1_and_4_mib() -> None:
    """gloo's rule (two segments per block), kept within [1 MiB, 4 MiB]: only blocks above 2 MiB change."""
    mib = 1 << 20
    assert costs.ring_segment_bytes(8 * mib) == 4 * mib  # 16 MiB all-reduce at p = 2
    assert costs.ring_segment_bytes(2 * mib) == mib  # 16 MiB at p = 8: as before
    assert costs.ring_segment_bytes(3 * mib) == 3 * mib // 2
    assert costs.ring_segment_bytes(512 * mib) == costs.RING_MAX_SEGMENT_BYTES == 4 * mib
    assert costs.ring_segment_bytes(4096) == costs.DEFAULT_SEGMENT_BYTES == mib
    assert costs.default_segment_bytes("all_reduce", "ring", 16 * mib, 2) == 4 * mib
    assert costs.default_segment_bytes("all_reduce", "ring_2ch", 16 * mib, 2) == 2 * mib  # a channel's block: 4 MiB
    assert costs.default_segment_bytes("reduce_scatter", "ring", 16 * mib, 2) == 4 * mib
    assert costs.default_segment_bytes("all_reduce", "tree", 16 * mib, 2) == mib  # not a ring: 1 MiB
    assert costs.default_segment_bytes("broadcast", "ring", 16 * mib, 2) == mib


def test_plan_records_the_segment_each_point_runs_with() -> None:
    from bench.plan import case_spec

    mib = 1 << 20

    def seg(collective: str, algorithm: str, nbytes: int, p: int, given: int | None = None) -> int | None:
        return case_spec(collective, algorithm, nbytes, backend="gloo", device="cpu", world_size=p,
                         segment_bytes=given).segment_bytes  # fmt: skip

    assert seg("all_reduce", "ring", 16 * mib, 2) == 4 * mib
    assert seg("all_reduce", "ring", 16 * mib, 8) == mib
    assert seg("all_reduce", "ring", 16 * mib, 2, given=mib) == mib  # --segment-bytes wins
    assert seg("all_reduce", "tree", 16 * mib, 2) == mib
    assert seg("all_reduce", "builtin", 16 * mib, 2) is None
