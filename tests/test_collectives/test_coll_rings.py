"""The pipelined rings (all_reduce ring and ring_2ch, reduce_scatter ring) are exact with many segments, sizes that
divide by nothing, every op and several p; ring_2ch also on emulated nodes (``LOCAL_WORLD_SIZE``), where its
channel orders are rail-aligned (checked here without communicating); their receive buffers are reused between
calls, not faulted in again on every call (``collectives.scratch``)."""

from __future__ import annotations

from typing import Any

import pytest
from collpool import Pools

from collectives.all_reduce import RING_DEPTH, channel_orders

OPS = ["SUM", "PRODUCT", "MIN", "MAX", "AVG"]
DTYPES = ["float32", "int64", "float64", "int32", "bfloat16"]


def _cases(p: int, collective: str, algorithm: str) -> list[dict[str, Any]]:
    """Odd sizes; segments from one element (more segments than RING_DEPTH) to more than a block."""
    cases = []
    sizes = [1, p + 1, 7 * p + 3, 257] if collective == "all_reduce" else [1, 3, 37]  # reduce_scatter: per block
    for i, numel in enumerate(sizes):
        for j, segment_bytes in enumerate([1, 8, 24, 1 << 20]):
            op = OPS[(i + j) % len(OPS)]
            dtype = DTYPES[(i + 2 * j) % len(DTYPES)]
            if op == "AVG" and dtype.startswith("int"):
                dtype = "float64"
            cases.append({"collective": collective, "algorithm": algorithm, "dtype": dtype, "op": op, "numel": numel,
                          "seed": 10 * i + j, "kwargs": {"segment_bytes": segment_bytes}})  # fmt: skip
    return cases


@pytest.mark.timeout(180)
@pytest.mark.parametrize("p", [2, 3, 5])
def test_pipelined_rings_exact(pools: Pools, p: int) -> None:
    cases = _cases(p, "all_reduce", "ring") + _cases(p, "all_reduce", "ring_2ch") + _cases(p, "reduce_scatter", "ring")
    cases += [dict(c, in_place=True) for c in _cases(p, "reduce_scatter", "ring")]
    assert any(c["numel"] > RING_DEPTH * p for c in cases)  # some steps have more segments than are posted at once
    results = pools.get(p).run("collcases:run_cases", timeout_s=150, cases=cases)
    failures = [f"rank {r}: {c}: {e}" for r, errs in enumerate(results) for c, e in zip(cases, errs, strict=True) if e]
    assert not failures, "\n".join(failures[:20])


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("p", "per_node"), [(4, 2), (6, 2), (6, 3), (8, 2), (5, 2)])
def test_two_channel_ring_exact_on_nodes(pools: Pools, p: int, per_node: int) -> None:
    """ring_2ch with the rail-aligned orders of per_node ranks per node (a last node with fewer ranks at p = 5), and
    on a subgroup that takes ranks of several nodes."""
    cases = _cases(p, "all_reduce", "ring_2ch")
    members = [r for r in range(p) if r % 3 != 1]
    cases += [dict(c, group=members, seed=c["seed"] + 100) for c in _cases(len(members), "all_reduce", "ring_2ch")]
    results = pools.get(p).run("collcases:run_cases_as_nodes", timeout_s=150, cases=cases, local_world_size=per_node)
    failures = [f"rank {r}: {c}: {e}" for r, errs in enumerate(results) for c, e in zip(cases, errs, strict=True) if e]
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("per_node", [1, 2, 3, 4])
@pytest.mark.parametrize("nodes", [1, 2, 3, 4, 6])
def test_channel_orders_are_rail_aligned(nodes: int, per_node: int, channels: int) -> None:
    p = nodes * per_node
    orders = channel_orders(list(range(p)), channels, per_node)
    assert len(orders) == channels
    leave: list[set[int]] = [set() for _ in range(nodes)]  # local ranks each node's crossings leave from
    for order in orders:
        assert sorted(order) == list(range(p)), "a ring visits every rank once"
        hops = [(order[i], order[(i + 1) % p]) for i in range(p)]
        crossing = [(a, b) for a, b in hops if a // per_node != b // per_node]
        assert len(crossing) == (nodes if nodes > 1 else 0), "one crossing out of every node"
        closing_same_rail = nodes % per_node == 0
        for a, b in crossing:
            if b // per_node == (a // per_node + 1) % nodes and (b // per_node != 0 or closing_same_rail):
                assert a % per_node == b % per_node, f"{order}: hop {a} -> {b} joins two rails"
            leave[a // per_node].add(a % per_node)
    if nodes > 1:
        for n in range(nodes):  # channel c leaves node n through local rank c - n - 1: all different
            assert len(leave[n]) == min(channels, per_node), (n, orders)


def test_channel_orders_two_nics_figure() -> None:
    # 4 nodes x 2 ranks: channel 0 leaves nodes 0..3 through local ranks 1, 0, 1, 0; channel 1 through 0, 1, 0, 1
    assert channel_orders(list(range(8)), 2, 2) == [[0, 1, 3, 2, 4, 5, 7, 6], [1, 0, 2, 3, 5, 4, 6, 7]]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("collective", ["all_reduce", "reduce_scatter"])
def test_rings_reuse_their_receive_buffers(pools: Pools, collective: str) -> None:
    """16 MiB at p = 2: allocated per call, the 8 MiB receive buffer cost about 200 minor page faults (and 2-3 ms
    of system time) per call on the 2-core VM; kept, none. The bound leaves room for the odd fault of the runtime."""
    faults = pools.get(2).run("collcases:ring_page_faults", timeout_s=90, collective=collective, numel=4 << 20,
                              calls=10)  # fmt: skip
    assert max(faults) < 8, faults
