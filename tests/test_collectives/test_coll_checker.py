"""The checker catches wrong results (deliberately broken algorithms), and the registry API."""

from __future__ import annotations

import pytest
import torch
from collpool import Pools

import collectives
from collectives.costs import cost_algorithms
from collectives.registry import UnknownAlgorithmError
from collectives.spec import spec


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("collective", "algorithm", "expect"),
    [
        ("all_reduce", "collcases:broken_all_reduce", "vs reference"),
        ("all_gather", "collcases:broken_all_gather", "vs reference"),
        ("reduce_scatter", "collcases:broken_reduce_scatter", "modified its input"),
    ],
)
def test_broken_algorithm_is_caught(pools: Pools, collective: str, algorithm: str, expect: str) -> None:
    case = {"collective": collective, "algorithm": algorithm, "dtype": "float32", "op": "SUM", "numel": 9}
    errors = pools.get(3).run("collcases:run_cases", timeout_s=60, cases=[case])
    flat = [e for per_rank in errors for e in per_rank]
    assert any(expect in e for e in flat), flat
    # and the same checker passes the correct algorithm on the same case
    good = dict(case, algorithm="ring")
    assert pools.get(3).run("collcases:run_cases", timeout_s=60, cases=[good]) == [[""]] * 3


def test_names_match_cost_table() -> None:
    for c in collectives.COLLECTIVES:
        assert collectives.algorithms(c) == cost_algorithms(c)
        assert collectives.algorithms(c)[0] == "builtin"
        # the algorithms the roofline draws from (docs/theory.md) are registered
        assert {spec(c).bandwidth_algorithm, spec(c).latency_algorithm} <= set(collectives.algorithms(c))


def test_unknown_names_list_known_ones() -> None:
    with pytest.raises(KeyError, match="known: builtin, rabenseifner"):
        collectives.get("all_reduce", "nope")
    with pytest.raises(UnknownAlgorithmError, match="known: broadcast, reduce"):
        collectives.get("alltoall", "ring")
    with pytest.raises(KeyError):
        collectives.algorithms("scan")


def test_validation_needs_initialized_process_group() -> None:
    if torch.distributed.is_initialized():
        pytest.skip("a process group is initialized in this process")
    with pytest.raises(RuntimeError, match="not initialized"):
        collectives.get("all_reduce", "ring")(torch.zeros(4))


@pytest.mark.timeout(120)
def test_hung_worker_fails_fast_and_pool_restarts(pools: Pools) -> None:
    """A rank that never answers ends in WorkerError within the deadline, not a hung suite."""
    import time

    from collpool import WorkerError

    pool = pools.get(2)
    t0 = time.monotonic()
    with pytest.raises(WorkerError, match="no answer within"):
        pool.run("collcases:hang", timeout_s=3, rank=1, seconds=600)
    assert time.monotonic() - t0 < 30
    assert not pool.alive
    case = {"collective": "all_reduce", "algorithm": "ring", "dtype": "int32", "op": "SUM", "numel": 5}
    assert pools.get(2).run("collcases:run_cases", timeout_s=60, cases=[case]) == [[""], [""]]
