"""pytest plugin: benchmark collectives through pytest-benchmark (registered as the ``collbench`` pytest11 entry point).

Fixtures:

- ``collbench_pool`` (session): a persistent local process group (``--collbench-nprocs``, default 2;
  ``--collbench-backend`` gloo, or nccl on GPUs), started on first use only.
- ``collective_benchmark``: ``collective_benchmark("all_reduce", "ring", nbytes=1 << 20)`` measures one case
  with the harness's own protocol (``bench.timing``, exactly what ``collbench run`` does), fails the test
  on a wrong result, and reports the case through pytest-benchmark.

What pytest-benchmark sees are the harness's per-iteration times (max over ranks): the fixture swaps the
benchmark's timer for a replay clock and runs ``pedantic`` with one round per sample, where the "target"
only advances the clock by that sample. So no process-to-process overhead enters the timed region, and
``--benchmark-autosave`` / ``--benchmark-compare --benchmark-compare-fail=median:10%`` work unchanged.
Each benchmark carries bytes, world size, backend, dtype, op, algbw_gbps, busbw_gbps in ``extra_info``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bench.plan import case_spec
from bench.pool import WorkerPool
from bench.records import CaseSpec, Measurement
from bench.stats import fast_mode


class ReplayClock:
    """A timer for pytest-benchmark that reads back recorded samples: ``advance`` moves it by the next one."""

    __name__ = "collbench.ReplayClock"

    def __init__(self, samples_s: list[float]) -> None:
        self._samples = list(samples_s)
        self._now = 0.0
        self._next = 0

    def __call__(self) -> float:
        return self._now

    def __repr__(self) -> str:
        return "collbench.ReplayClock (harness per-iteration samples)"

    def advance(self) -> None:
        self._now += self._samples[self._next % len(self._samples)]
        self._next += 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("collbench", "collbench collective benchmarks")
    group.addoption("--collbench-nprocs", type=int, default=2, help="ranks of the benchmark process group (2)")
    group.addoption("--collbench-backend", default="gloo", choices=("gloo", "nccl"), help="backend (gloo)")
    group.addoption("--collbench-timeout", type=float, default=120.0, help="seconds per case before failing")


@pytest.fixture(scope="session")
def collbench_pool(request: pytest.FixtureRequest) -> Iterator[WorkerPool]:
    """The persistent process group (started the first time a test asks for it)."""
    backend = request.config.getoption("--collbench-backend")
    pool = WorkerPool(
        request.config.getoption("--collbench-nprocs"),
        backend=backend,
        device="cuda" if backend == "nccl" else "cpu",
        timeout_s=request.config.getoption("--collbench-timeout"),
    )
    yield pool
    pool.close()


def make_spec(pool: WorkerPool, collective: str, algorithm: str, nbytes: int, *, dtype: str = "float32",
              op: str | None = None, root: int = 0, in_place: bool = False, iters: int = 50, warmup: int = 5,
              segment_bytes: int | None = None) -> CaseSpec:  # fmt: skip
    """The CaseSpec ``collbench run`` would build for these options."""
    return case_spec(collective, algorithm, nbytes, backend=pool.backend, device=pool.device,
                     world_size=pool.world_size, dtype=dtype, op=op or "sum", root=root, in_place=in_place,
                     iters=iters, warmup=warmup, segment_bytes=segment_bytes)  # fmt: skip


def report(benchmark, m: Measurement) -> None:  # noqa: ANN001 - pytest-benchmark's fixture
    """Hand the samples of ``m``'s robust estimate (the fast mode when there is a slow one, bench.stats) to
    pytest-benchmark, so its statistics and ``--benchmark-compare`` see what collbench reports; extra_info
    keeps the estimate, its CI, the slow share and the plain median of all samples."""
    s, est = m.spec, m.stats.estimate
    benchmark.extra_info.update(
        collective=s.collective, algorithm=s.algorithm, bytes=s.bytes, world_size=s.world_size, backend=s.backend,
        device=s.device, dtype=s.dtype, op=s.op, in_place=s.in_place, algbw_gbps=m.algbw_gbps,
        busbw_gbps=m.busbw_gbps, time_us=est.time_us, time_us_ci_lo=est.ci_lo_us, time_us_ci_hi=est.ci_hi_us,
        slow_fraction=est.slow_fraction, samples=len(m.samples_us), median_us=m.stats.median_us,
        block_time_us=m.block_time_us, correct=m.correct, noisy=m.stats.noisy,
    )  # fmt: skip
    kept = fast_mode(m.samples_us)
    clock = ReplayClock([x * 1e-6 for x in kept])
    benchmark._timer = clock  # pytest-benchmark reads durations from this timer around each round
    benchmark.pedantic(clock.advance, rounds=len(kept), iterations=1, warmup_rounds=0)


@pytest.fixture
def collective_benchmark(benchmark, collbench_pool: WorkerPool) -> Callable[..., Measurement]:  # noqa: ANN001
    """``collective_benchmark(collective, algorithm="builtin", nbytes=..., **options) -> Measurement``."""

    def run(collective: str, algorithm: str = "builtin", nbytes: int = 1 << 20, **options) -> Measurement:
        m = collbench_pool.measure(make_spec(collbench_pool, collective, algorithm, nbytes, **options))
        report(benchmark, m)
        if not m.correct:
            pytest.fail(f"{m.spec.label}: WRONG result, {m.n_wrong} wrong elements")
        return m

    return run
