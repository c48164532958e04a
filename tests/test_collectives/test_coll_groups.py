"""Subgroups from dist.new_group with GLOBAL-rank roots; non-members return untouched.

Behaviour for ranks outside the group (as torch.distributed): the call returns without
communicating or modifying anything (tensor checks still run first).
"""

from __future__ import annotations

import pytest
from collpool import Pools

import collectives
from collectives.spec import spec

GROUPS = [[1, 3], [0, 2, 3], [1, 2, 3]]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("collective", collectives.COLLECTIVES)
def test_subgroups_global_roots(pools: Pools, collective: str) -> None:
    cases = []
    for members in GROUPS:
        for algorithm in collectives.algorithms(collective):
            for root in range(len(members)):  # root index into members -> global rank members[root]
                numel = 2 if spec(collective).blocked else 7
                op = ["SUM", "MAX", "PRODUCT"][root % 3]
                case = {"collective": collective, "algorithm": algorithm, "dtype": "int64", "op": op}
                case.update({"numel": numel, "root": root, "group": members, "seed": root})
                case["unequal"] = spec(collective).layout == "exchange" and root % 2 == 1
                cases.append(case)
    results = pools.get(4).run("collcases:run_cases", timeout_s=120, cases=cases)
    failures = [f"rank {r}: {c}: {e}" for r, errs in enumerate(results) for c, e in zip(cases, errs, strict=True) if e]
    assert not failures, "\n".join(failures[:20])
