"""pytest plugin: benchmark collectives through pytest-benchmark (registered as the ``collbench`` pytest11 entry point).

Fixtures:

- ``collbench_pool`` (session): a persistent local process group (``--collbench-nprocs``, default 2;
  ``--collbench-backend`` gloo, or nccl on GPUs), started on first use only.
- ``collective_benchmark``: ``collective_benchmark("all_reduce", "ring", nbytes=1 << 20)`` measures one case
  with the harness's own protocol (``bench.timing``, exactly what ``collbench run`` does), fails the test
  on a wrong result, and reports the case through pytest-benchmark.

Visits. A case's samples are taken in bursts (visits) ``VISIT_GAP_S`` apart, as ``collbench run`` spreads a point
over visits and samples it until its estimate is sure: first ``iters`` samples in up to ``visits`` (default 8)
bursts of at least ``MIN_VISIT_SAMPLES``, then more bursts of that size until the estimate meets the CI target,
``MAX_TIME_PER_CASE_S`` has passed or ``MAX_SAMPLES`` are taken. Why: on a shared host an episode of
interference (another job on the cores) can outlast a burst of 50 back-to-back calls (30 ms at 1 MiB); its
samples wait for milliseconds to hundreds of milliseconds, a continuum rather than a second mode, and when most
samples of a case come from it ``bench.stats`` finds no mode split (below MODE_SEPARATION) and the estimate
falls back to the median of all samples: 5-50x the quiet time, the jumps a compare reported on unchanged code.
Spreading the samples over time and sampling on while the estimate is unsure makes the quiet samples the
majority unless the episode outlasts the whole budget.

What pytest-benchmark sees: the samples of that estimate (``bench.stats.fast_mode``: the fast mode when the
host's interference made a slow one, else all of them), so its median, the figure
``--benchmark-compare-fail=median:X%`` compares, is the estimate (``time_us`` in extra_info). The fixture swaps
the benchmark's timer for a replay clock and runs ``pedantic`` with one round per kept sample, where the
"target" only advances the clock by that sample, so no process-to-process overhead enters the timed region.
extra_info: bytes, world size, backend, dtype, op, algbw_gbps, busbw_gbps, the estimate, its CI and whether it
met the target (ci_met), the slow share, the plain median of all samples, samples, visits and elapsed_s.
Under pytest-xdist pytest-benchmark disables itself; asking it to save or compare there is refused
(``pytest_configure``). docs/pytest-gate.md: the regression gate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from bench.plan import DEFAULT_MAX_ITERS, DEFAULT_VISITS, case_spec  # the visits of collbench run
from bench.pool import WorkerPool
from bench.records import CaseSpec, Measurement
from bench.stats import fast_mode

MIN_VISIT_SAMPLES = 5  # samples per visit at least
VISIT_GAP_S = 0.05  # pause between visits: the first eight span ~0.4 s, so a shorter episode leaves some fast
MAX_TIME_PER_CASE_S = 2.0  # more visits until the estimate is sure, at most this long (then what there is)
MAX_SAMPLES = DEFAULT_MAX_ITERS  # and at most collbench run's cap of samples per point


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


#: pytest-benchmark options whose result would be silently empty with benchmarks disabled
_GATE_OPTIONS = ("benchmark_compare", "benchmark_compare_fail", "benchmark_autosave", "benchmark_save",
                 "benchmark_json", "benchmark_only")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to gate under pytest-xdist: pytest-benchmark disables itself there, so a compare would compare
    nothing and pass, and an autosave would save nothing."""
    xdist = config.getoption("dist", "no") != "no" or bool(os.environ.get("PYTEST_XDIST_WORKER"))
    asked = [o for o in _GATE_OPTIONS if config.getoption(o, None)]
    if xdist and asked:
        flag = "--" + asked[0].replace("_", "-")
        raise pytest.UsageError(
            f"collbench: {flag} with pytest-xdist (-n): pytest-benchmark disables itself under xdist, so nothing "
            "would be measured, saved or compared; run the benchmarks without -n (docs/pytest-gate.md)"
        )


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


def visit_sizes(iters: int, visits: int) -> list[int]:
    """How many of ``iters`` samples each visit takes: as even as possible, at least MIN_VISIT_SAMPLES a visit
    (so fewer visits for small ``iters``), summing to ``iters``."""
    n = max(1, min(visits, iters // MIN_VISIT_SAMPLES))
    return [iters // n + (1 if i < iters % n else 0) for i in range(n)]


@dataclass(frozen=True)
class VisitedMeasurement:
    """A case measured in visits: ``pooled`` holds every sample (its estimate is the figure reported)."""

    pooled: Measurement
    visits: int
    elapsed_s: float


def pool_visits(spec: CaseSpec, parts: list[Measurement]) -> Measurement:
    """The visits' samples as one Measurement of ``spec`` (wrong elements summed, block time the median)."""
    blocks = sorted(p.block_time_us for p in parts)
    return replace(parts[0], spec=spec, samples_us=tuple(x for p in parts for x in p.samples_us),
                   block_time_us=blocks[len(blocks) // 2], n_wrong=sum(p.n_wrong for p in parts))  # fmt: skip


def measure_in_visits(pool: WorkerPool, spec: CaseSpec, visits: int = DEFAULT_VISITS, gap_s: float = VISIT_GAP_S,
                      max_time_s: float = MAX_TIME_PER_CASE_S) -> VisitedMeasurement:  # fmt: skip
    """``spec`` measured in the bursts of ``visit_sizes(spec.iters, visits)``, ``gap_s`` apart, then in more
    bursts of the same size until the estimate of all samples meets ``spec.target_ci`` (``collbench run``'s
    stopping rule: at least MIN_CI_SAMPLES in its mode, 95 % CI within +-5 %), ``max_time_s`` has passed or
    MAX_SAMPLES are taken. A wrong result ends it at once."""
    sizes = visit_sizes(spec.iters, visits)
    parts: list[Measurement] = []
    t0 = time.monotonic()
    while True:
        if parts:
            time.sleep(gap_s)
        parts.append(pool.measure(replace(spec, iters=sizes[min(len(parts), len(sizes) - 1)])))
        if len(parts) < len(sizes) and parts[-1].correct:
            continue
        pooled = pool_visits(spec, parts)
        elapsed = time.monotonic() - t0
        if (pooled.stats.ci_met or not pooled.correct or elapsed >= max_time_s
                or len(pooled.samples_us) + sizes[-1] > MAX_SAMPLES):  # fmt: skip
            return VisitedMeasurement(pooled, len(parts), elapsed)


def report(benchmark, v: VisitedMeasurement) -> None:  # noqa: ANN001 - pytest-benchmark's fixture
    """Hand the samples of the robust estimate (the fast mode when there is a slow one, bench.stats) to
    pytest-benchmark, so its median, what ``--benchmark-compare-fail=median:X%`` compares, is that estimate;
    extra_info keeps the estimate, its CI, the slow share, the plain median of all samples and the visits."""
    m = v.pooled
    s, est = m.spec, m.stats.estimate
    benchmark.extra_info.update(
        collective=s.collective, algorithm=s.algorithm, bytes=s.bytes, world_size=s.world_size, backend=s.backend,
        device=s.device, dtype=s.dtype, op=s.op, in_place=s.in_place, algbw_gbps=m.algbw_gbps,
        busbw_gbps=m.busbw_gbps, time_us=est.time_us, time_us_ci_lo=est.ci_lo_us, time_us_ci_hi=est.ci_hi_us,
        slow_fraction=est.slow_fraction, samples=len(m.samples_us), median_us=m.stats.median_us,
        block_time_us=m.block_time_us, correct=m.correct, noisy=m.stats.noisy, ci_met=m.stats.ci_met,
        visits=v.visits, elapsed_s=v.elapsed_s,
    )  # fmt: skip
    kept = fast_mode(m.samples_us)
    clock = ReplayClock([x * 1e-6 for x in kept])
    benchmark._timer = clock  # pytest-benchmark reads durations from this timer around each round
    benchmark.pedantic(clock.advance, rounds=len(kept), iterations=1, warmup_rounds=0)


@pytest.fixture
def collective_benchmark(benchmark, collbench_pool: WorkerPool) -> Callable[..., Measurement]:  # noqa: ANN001
    """``collective_benchmark(collective, algorithm="builtin", nbytes=..., visits=8, **options) -> Measurement``."""

    def run(collective: str, algorithm: str = "builtin", nbytes: int = 1 << 20, visits: int = DEFAULT_VISITS,
            **options) -> Measurement:  # fmt: skip
        v = measure_in_visits(collbench_pool, make_spec(collbench_pool, collective, algorithm, nbytes, **options),
                              visits)  # fmt: skip
        report(benchmark, v)
        m = v.pooled
        if not m.correct:
            pytest.fail(f"{m.spec.label}: WRONG result, {m.n_wrong} wrong elements")
        return m

    return run
