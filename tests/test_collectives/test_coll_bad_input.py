"""Bad input raises a clear TypeError/ValueError before any communication, on every algorithm.

Only rank 0 makes the bad calls while rank 1 does nothing: an algorithm that sent or waited
first would hang or hit the patched (forbidden) communication functions.  Afterwards the same
pool must still run a correct collective, proving no stray message is left in flight.
"""

from __future__ import annotations

import pytest
from collpool import Pools


@pytest.mark.timeout(120)
def test_bad_input_raises_before_communication(pools: Pools) -> None:
    pool = pools.get(2)
    problems = pool.run("collcases:run_bad_inputs", timeout_s=60, actor=0)
    assert problems[1] == []
    assert not problems[0], "\n".join(problems[0])
    # the group is still healthy: a hand-written all-reduce right after gives exact results
    case = {"collective": "all_reduce", "algorithm": "ring", "dtype": "int32", "op": "SUM", "numel": 101}
    results = pool.run("collcases:run_cases", timeout_s=60, cases=[case])
    assert results == [[""], [""]]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("collective", "algorithm", "label", "words"),
    [
        ("reduce", "tree", "root outside group", ["dst=7", "not a rank of the group"]),
        ("all_reduce", "ring", "AVG on int32", ["AVG", "floating"]),
        ("all_gather", "bruck", "output wrong size", ["output has 17 elements", "expected"]),
        ("reduce_scatter", "builtin", "gloo has no AVG", ["gloo", "AVG"]),
        ("broadcast", "ring", "non-contiguous", ["contiguous"]),
        ("all_to_all", "bruck", "splits: wrong sum", ["input_split_sizes sums to 7", "8 rows"]),
        ("all_to_all", "pairwise", "input not a multiple of p", ["7 rows", "multiple of the world size 2"]),
        ("gather", "tree", "root outside group", ["dst=7", "not a rank of the group"]),
        ("scatter", "linear", "output wrong size", ["scatter: input has 8 elements", "2 x output 5 = 10"]),
    ],
)
def test_error_messages_name_the_problem(
    pools: Pools, collective: str, algorithm: str, label: str, words: list[str]
) -> None:
    msg = pools.get(2).run(
        "collcases:bad_input_message", timeout_s=60, collective=collective, algorithm=algorithm, label=label
    )[0]
    for w in words:
        assert w in msg, msg
