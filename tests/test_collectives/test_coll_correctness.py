"""Every algorithm vs the builtin and a NumPy reference, exactly, on gloo with world sizes 1..8.

The matrix is a Latin-square style cover, not the Cartesian product: for each (world size,
collective, algorithm) every numel class (0, 1, fewer than p, not a multiple of p, ~1000) meets
every op, dtypes rotate so each world size sees all eight dtypes and every op x dtype pair occurs
across world sizes, roots rotate over all ranks, and pipelined algorithms also run with tiny
segments so the pipeline has many stages.
"""

from __future__ import annotations

from typing import Any

import pytest
from collpool import Pools

import collectives
from collectives.schedule import takes_segments
from collectives.spec import spec

WORLD_SIZES = range(1, 9)
DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "int32", "int64", "uint8"]
FLOATS = ["float32", "float64", "float16", "bfloat16"]
REDUCING = tuple(c for c in collectives.COLLECTIVES if spec(c).reducing)


def numels(p: int, collective: str) -> list[int]:
    """Per-rank numel classes (the block size of the blocked layouts)."""
    if spec(collective).blocked:
        return [0, 1, 2, 5, 333]
    return [0, 1, max(p - 1, 1), 7 * p + 3, 1001]


def matrix(p: int, collective: str, algorithm: str) -> list[dict[str, Any]]:
    """The cases one (world size, collective, algorithm) test runs."""
    ops = ["SUM", "PRODUCT", "MIN", "MAX", "AVG"] if collective in REDUCING else ["SUM", "SUM", "SUM", "SUM"]
    cases = []
    segmented = takes_segments(collectives.get(collective, algorithm))
    for i, n in enumerate(numels(p, collective)):
        for j, op in enumerate(ops):
            if op == "AVG" and algorithm == "builtin":
                continue  # gloo has no AVG: builtin raises ValueError (test_coll_bad_input)
            k = i * len(ops) + j
            dtype = DTYPES[(k + p) % len(DTYPES)]
            if op == "AVG" and dtype not in FLOATS:
                dtype = FLOATS[(k + p) % len(FLOATS)]
            case = {"collective": collective, "algorithm": algorithm, "dtype": dtype, "op": op, "numel": n}
            case["root"] = k % p
            case["seed"] = k
            if segmented and j % 2 == 1:
                case["kwargs"] = {"segment_bytes": 8 * (1 + j)}  # a few elements per segment
            if spec(collective).layout == "exchange":  # unequal splits (zeros included) and 2-D rows in turn
                case["unequal"] = j % 2 == 1
                case["width"] = 3 if j >= 2 else 1
            cases.append(case)
    return cases


def run_and_report(pools: Pools, p: int, cases: list[dict[str, Any]], timeout_s: float = 90.0) -> list[str]:
    """Run the cases on a p-rank pool; one failure line per failing (case, rank)."""
    results = pools.get(p).run("collcases:run_cases", timeout_s=timeout_s, cases=cases)
    failures = []
    for rank, per_case in enumerate(results):
        for case, err in zip(cases, per_case, strict=True):
            if err:
                failures.append(f"rank {rank}: {case}: {err}")
    return failures


PARAMS = [
    pytest.param(p, c, a, id=f"p{p}-{c}-{a}")
    for p in WORLD_SIZES
    for c in collectives.COLLECTIVES
    for a in collectives.algorithms(c)
]


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("p", "collective", "algorithm"), PARAMS)
def test_matches_builtin_and_reference(pools: Pools, p: int, collective: str, algorithm: str) -> None:
    failures = run_and_report(pools, p, matrix(p, collective, algorithm))
    assert not failures, "\n".join(failures[:20])


def test_matrix_covers_every_dtype_op_pair() -> None:
    """The Latin cover really reaches every (dtype, op) pair of every reducing algorithm."""
    for c in REDUCING:
        for a in collectives.algorithms(c)[1:]:
            seen = {(case["dtype"], case["op"]) for p in WORLD_SIZES for case in matrix(p, c, a)}
            want = {(d, o) for d in DTYPES for o in ["SUM", "PRODUCT", "MIN", "MAX"]} | {(d, "AVG") for d in FLOATS}
            assert want <= seen, f"{c}/{a} misses {sorted(want - seen)}"
            roots = {(p, case["root"]) for p in WORLD_SIZES for case in matrix(p, c, a)}
            assert roots == {(p, r) for p in WORLD_SIZES for r in range(p)}


IN_PLACE = [pytest.param(p, c, id=f"p{p}-{c}") for p in (1, 2, 3, 4, 5, 8) for c in collectives.COLLECTIVES
            if spec(c).in_place_variants]  # fmt: skip


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("p", "collective"), IN_PLACE)
def test_in_place_layout(pools: Pools, p: int, collective: str) -> None:
    """nccl-tests' in-place variant (the small buffer is this rank's block of the large one), every algorithm."""
    ops = ["SUM", "MAX", "PRODUCT"] if spec(collective).reducing else ["SUM"]
    cases = [
        {"collective": collective, "algorithm": a, "dtype": DTYPES[(i + p) % 4 + 4 * (i % 2)], "op": op,
         "numel": n, "root": (i + 1) % p, "seed": i, "in_place": True}
        for a in collectives.algorithms(collective)
        for i, (n, op) in enumerate((n, op) for n in (0, 1, 5, 333) for op in ops)
    ]  # fmt: skip
    failures = run_and_report(pools, p, cases)
    assert not failures, "\n".join(failures[:20])


LARGE_NUMEL = (64 << 20) // 4  # 64 MiB of float32


@pytest.mark.timeout(300)
# the exchange layout (all_to_all): 10 s here; collbench run checks it exactly at 16 MiB (docs/protocol.md)
@pytest.mark.parametrize("collective", [c for c in collectives.COLLECTIVES if spec(c).layout != "exchange"])
def test_large_64mib(pools: Pools, collective: str) -> None:
    """One 64 MiB float32 buffer per collective (S: the whole large buffer of a blocked layout), p = 2, all
    algorithms."""
    p = 2
    n = LARGE_NUMEL // p if spec(collective).blocked else LARGE_NUMEL
    cases = [
        {"collective": collective, "algorithm": a, "dtype": "float32", "op": "SUM", "numel": n, "root": 1}
        for a in collectives.algorithms(collective)
        if a != "builtin"
    ]
    failures = run_and_report(pools, p, cases, timeout_s=240)
    assert not failures, "\n".join(failures[:20])
