"""Example regression suite: collectives under pytest-benchmark (collbench's pytest plugin).

    pytest benchmarks/ --benchmark-autosave                                   # store a baseline
    pytest benchmarks/ --benchmark-compare --benchmark-compare-fail=median:10%   # fail on a 10% slowdown

Options: --collbench-nprocs N (default 2), --collbench-backend gloo|nccl.
"""

from __future__ import annotations

import pytest

CASES = [
    ("all_reduce", "builtin"), ("all_reduce", "ring"), ("all_reduce", "recursive_doubling"),
    ("all_gather", "ring"), ("reduce_scatter", "ring"), ("broadcast", "tree"), ("reduce", "tree"),
]  # fmt: skip


@pytest.mark.parametrize("nbytes", [4 << 10, 1 << 20], ids=["4KiB", "1MiB"])
@pytest.mark.parametrize(("collective", "algorithm"), CASES, ids=[f"{c}-{a}" for c, a in CASES])
def test_collective(collective_benchmark, collective: str, algorithm: str, nbytes: int) -> None:
    m = collective_benchmark(collective, algorithm, nbytes=nbytes, iters=50, warmup=5)
    assert m.correct
