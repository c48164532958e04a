"""Measure the points of one (collective, size) on every rank (docs/protocol.md); rank 0 gets the Measurements.

Protocol: fill seeded exact data, one checked-for-rejection call and the warm-up of every point, then samples
taken round-robin over the points (barrier, one call marked by the device clock), per sample the max over ranks
(all-reduce MAX, never timestamp differences across ranks), until each point's robust estimate is sure enough
or its time is spent (adaptive) or it has ``iters`` samples (fixed); then one more call per point on fresh data,
checked against the exact reference. ``--no-interleave -n N`` times each point in one back-to-back loop, as
nccl-tests does.
Adaptive points can be sampled in several visits spread over the run (``start_group``, ``resume_group``,
``sample_group`` per visit, ``finish_group``; ``bench.worker.RankMeasurer.measure_block``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bench import exact_data
from bench.clock import Clock, CpuClock, CudaClock
from bench.collective_io import Buffers, DataCase, io_for
from bench.records import CaseSpec, Measurement
from bench.stats import estimate


class Unsupported(Exception):
    """The algorithm rejected the case (ValueError/TypeError before communicating) on some rank."""


@dataclass
class RankContext:
    """What a rank needs to measure: its rank, world, control group (gloo, CPU), device, clock, stream."""

    rank: int
    world_size: int
    control: dist.ProcessGroup | None
    device: str
    clock: Clock
    stream: object | None = None  # torch.cuda.Stream on GPU
    seed: int = 0

    @staticmethod
    def create(rank: int, world_size: int, device: str, seed: int) -> RankContext:
        control = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
        if device == "cuda":
            stream = torch.cuda.Stream()
            return RankContext(rank, world_size, control, device, CudaClock(stream), stream, seed)
        return RankContext(rank, world_size, control, device, CpuClock(), None, seed)

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def barrier(self) -> None:
        self.sync()
        dist.barrier(group=self.control)

    def allreduce_cpu(self, t: torch.Tensor, op: dist.ReduceOp) -> torch.Tensor:
        """Control-plane reduction of a small CPU tensor (gloo; on NCCL through the control group)."""
        dist.all_reduce(t, op=op, group=self.control)
        return t


def make_call(spec: CaseSpec, fn: Callable[..., None], bufs: Buffers, rank: int) -> Callable[[], None]:
    """A no-argument closure issuing one call of ``fn`` with the collective's signature.

    ``collectives.builtin.bind`` checks builtin calls once here (raising ValueError/TypeError as the call
    would), so the timed loop pays torch's call only, like a bare ``dist.all_reduce`` loop.
    """
    main, other = bufs.views(rank, spec.in_place)
    return io_for(spec.collective).bind(fn, main, other, spec.root, exact_data.torch_op(spec.op))


def _data_case(spec: CaseSpec, ctx: RankContext) -> DataCase:
    return DataCase(ctx.world_size, ctx.rank, spec.op, spec.root, ctx.seed, ctx.device)


def prepare(spec: CaseSpec, bufs: Buffers, ctx: RankContext) -> None:
    """Fresh seeded data in the inputs, the sentinel in everything a rank must receive."""
    main, other = bufs.views(ctx.rank, spec.in_place)
    io_for(spec.collective).prepare(main, other, _data_case(spec, ctx))


def count_wrong(spec: CaseSpec, bufs: Buffers, ctx: RankContext) -> int:
    """Wrong elements on this rank after one call on ``prepare``d data."""
    main, other = bufs.views(ctx.rank, spec.in_place)
    return io_for(spec.collective).count_wrong(main, other, _data_case(spec, ctx))


def _timed_loop(call: Callable[[], None], iters: int, ctx: RankContext) -> tuple[list[float], float]:
    clock = ctx.clock
    clock.reset(iters + 1)
    clock.mark(0)
    for i in range(iters):
        call()
        clock.mark(i + 1)
    ctx.sync()
    return clock.durations_us()


def _timed_graph(call: Callable[[], None], iters: int, ctx: RankContext) -> tuple[list[float], float]:
    """CUDA-graph mode: samples from replays of a one-call graph, block from one replay of an iters-call graph."""
    stream = ctx.stream
    one, block = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
    with torch.cuda.graph(one, stream=stream):
        call()
    with torch.cuda.graph(block, stream=stream):
        for _ in range(iters):
            call()
    ctx.barrier()
    clock = ctx.clock
    clock.reset(iters + 1)
    with torch.cuda.stream(stream):
        clock.mark(0)
        for i in range(iters):
            one.replay()
            clock.mark(i + 1)
    samples, _ = clock.durations_us()
    ctx.barrier()
    clock.reset(2)
    with torch.cuda.stream(stream):
        clock.mark(0)
        block.replay()
        clock.mark(1)
    _, span = clock.durations_us()
    return samples, span


@dataclass
class _Case:
    """One point of a group while it is being sampled (across visits: ``samples`` accumulate)."""

    spec: CaseSpec
    call: Callable[[], None]
    samples: list[float]
    span_us: float = 0.0  # sum of the timed chunks' first-to-last spans
    calls: int = 0
    done: bool = False
    visit_start: int = 0  # len(samples) when the current visit began


@dataclass
class GroupRun:
    """One group's state between visits (``start_group`` ... ``finish_group``): the rejection reasons in
    plan order and the cases still measured, with the samples taken so far."""

    specs: list[CaseSpec]
    reasons: list[str | None]
    cases: list[_Case]


def _check_calls(specs: list[CaseSpec], fns: list[Callable[..., None]], bufs: Buffers,
                 ctx: RankContext) -> tuple[list[Callable[[], None] | None], list[str | None]]:  # fmt: skip
    """Bind and try one call of each case (on every rank); (calls, rejection reasons), agreed by all ranks."""
    calls: list[Callable[[], None] | None] = []
    reasons: list[str | None] = []
    for spec, fn in zip(specs, fns, strict=True):
        prepare(spec, bufs, ctx)
        try:
            call = make_call(spec, fn, bufs, ctx.rank)
            _on_stream(ctx, call)
        except (ValueError, TypeError) as exc:
            calls.append(None)
            reasons.append(f"{type(exc).__name__}: {exc}")
        else:
            calls.append(call)
            reasons.append(None)
    flags = ctx.allreduce_cpu(torch.tensor([1 if r else 0 for r in reasons]), dist.ReduceOp.MAX).tolist()
    for i, flag in enumerate(flags):
        if flag:
            calls[i] = None
            reasons[i] = reasons[i] or "rejected on another rank"
    return calls, reasons


def _on_stream(ctx: RankContext, fn: Callable[[], object]) -> object:
    if ctx.stream is not None:
        with torch.cuda.stream(ctx.stream):
            return fn()
    return fn()


def visit_floor(min_iters: int, iters: int, visits: int) -> int:
    """Samples every visit takes at least: ``min_iters`` in one visit; over several, a share that adds up to
    about twice ``min_iters`` (at least 3 a visit), so each visit weighs in even when the CI is met early."""
    return min(min_iters, iters, max(3, -(-2 * min_iters // visits)))


def _finished(c: _Case, elapsed_s: float, budget_s: float, visits: int) -> bool:
    """The stopping rule of one visit (the same on every rank: samples and elapsed time are maxima over ranks).

    Adaptive: at least ``visit_floor`` samples in this visit, at most ``iters / visits``; then stop once the
    visit's share of the budget is spent or the estimate of every sample so far is sure enough."""
    s, n = c.spec, len(c.samples)
    if not s.adaptive:
        return n >= s.iters
    n_visit = n - c.visit_start
    if n >= s.iters or n_visit >= -(-s.iters // visits):
        return True
    if n_visit < visit_floor(s.min_iters, s.iters, visits):
        return elapsed_s >= 4 * budget_s  # a call longer than the budget: stop after a few samples anyway
    return elapsed_s >= budget_s or estimate(c.samples).meets(s.target_ci)


#: calls per point per round: 1 on CPU (iteration by iteration); on a GPU a short back-to-back chunk, so the
#: stream stays busy and CUDA events time the GPU's work, not the host's launch of one call onto an idle stream
CUDA_CHUNK = 10


def _sample_rounds(cases: list[_Case], ctx: RankContext, visits: int = 1) -> None:
    """Round-robin sampling: each round takes one timed call (CPU; a chunk of CUDA_CHUNK back-to-back calls on
    a GPU, each call its own sample) of every unfinished case, a barrier before each, then one all-reduce (MAX
    over ranks) of the round's times and of the elapsed time, so every rank applies the stopping rule to the
    same numbers. The group's time budget is the sum of its points' budgets, a ``visits``-th of it per visit."""
    budget_s = sum(c.spec.max_time_per_point_s for c in cases) / visits
    for c in cases:
        c.done, c.visit_start = False, len(c.samples)
    chunk = CUDA_CHUNK if ctx.device == "cuda" else 1
    start = time.perf_counter()
    while True:
        active = [c for c in cases if not c.done]
        if not active:
            return
        local: list[float] = []
        counts: list[int] = []
        for c in active:
            k = max(1, min(chunk, c.spec.iters - len(c.samples)))
            ctx.barrier()
            ds, span = _on_stream(ctx, lambda c=c, k=k: _timed_loop(c.call, k, ctx))
            local += ds
            counts.append(k)
            c.span_us += span
            c.calls += k
        vec = ctx.allreduce_cpu(torch.tensor([*local, time.perf_counter() - start], dtype=torch.float64),
                                dist.ReduceOp.MAX).tolist()  # fmt: skip
        pos = 0
        for c, k in zip(active, counts, strict=True):
            c.samples += vec[pos:pos + k]
            pos += k
        for c in active:
            c.done = _finished(c, vec[-1], budget_s, visits)


def _sample_block(c: _Case, ctx: RankContext) -> None:
    """One point alone with a fixed count (``--no-interleave -n N``): one back-to-back loop of N calls
    (samples = each call's own interval, block = first to last mark / N), or CUDA-graph replays."""

    def run() -> tuple[list[float], float]:
        ctx.barrier()
        if c.spec.cuda_graph:
            return _timed_graph(c.call, c.spec.iters, ctx)
        return _timed_loop(c.call, c.spec.iters, ctx)

    samples, span = _on_stream(ctx, run)
    times = ctx.allreduce_cpu(torch.tensor([*samples, span], dtype=torch.float64), dist.ReduceOp.MAX).tolist()
    c.samples, c.span_us, c.calls = times[:-1], times[-1], c.spec.iters


def _warm_up(cases: list[_Case], ctx: RankContext, calls: int | None = None) -> None:
    """``calls`` untimed calls per case (default: the spec's warm-up less the checked call already made)."""
    for c in cases:
        n = max(c.spec.warmup - 1, 0) if calls is None else min(calls, c.spec.warmup)
        _on_stream(ctx, lambda c=c, n=n: [c.call() for _ in range(n)])


def start_group(specs: list[CaseSpec], fns: list[Callable[..., None]], bufs: Buffers,
                ctx: RankContext) -> GroupRun:  # fmt: skip
    """Seeded data, one checked-for-rejection call and the warm-up of every point of one (collective, size)."""
    calls, reasons = _check_calls(specs, fns, bufs, ctx)
    run = GroupRun(specs, reasons, [_Case(s, call, []) for s, call in zip(specs, calls, strict=True) if call])
    _warm_up(run.cases, ctx)
    return run


def resume_group(run: GroupRun, fns: list[Callable[..., None]], bufs: Buffers, ctx: RankContext) -> None:
    """A later visit: the surviving cases bound to ``bufs`` (allocated again), fresh data, one warm-up call
    (the first visit did the full warm-up)."""
    fn_of = {id(s): fn for s, fn in zip(run.specs, fns, strict=True)}
    for c in run.cases:
        prepare(c.spec, bufs, ctx)
        c.call = make_call(c.spec, fn_of[id(c.spec)], bufs, ctx.rank)
    _warm_up(run.cases, ctx, calls=1)


def sample_group(run: GroupRun, ctx: RankContext, visits: int = 1) -> None:
    """One visit's samples of every case: round-robin rounds (``_sample_rounds``) with a ``visits``-th of
    the budget, so a noisy second or a drift hits every algorithm of the size alike; one point with a fixed
    count, or CUDA graphs (each point alone, fixed count): one back-to-back loop, as nccl-tests times a point."""
    graph = [c for c in run.cases if c.spec.cuda_graph]
    rounds = [c for c in run.cases if not c.spec.cuda_graph]
    for c in graph:
        _sample_block(c, ctx)
    if len(rounds) == 1 and not rounds[0].spec.adaptive:
        _sample_block(rounds[0], ctx)
    elif rounds:
        _sample_rounds(rounds, ctx, visits)


def finish_group(run: GroupRun, bufs: Buffers, ctx: RankContext, busbw_factor: float) -> list[Measurement | str | None]:
    """Each point once more on fresh data, checked against the exact reference; per spec a Measurement on
    rank 0 (None on the others), or the reason the algorithm rejected the case (every rank)."""
    wrong_local = []
    for c in run.cases:
        prepare(c.spec, bufs, ctx)
        ctx.barrier()
        _on_stream(ctx, c.call)
        ctx.sync()
        wrong_local.append(count_wrong(c.spec, bufs, ctx))
    wrong = ctx.allreduce_cpu(torch.tensor(wrong_local or [0], dtype=torch.int64), dist.ReduceOp.SUM).tolist()
    out: list[Measurement | str | None] = []
    it = iter(zip(run.cases, wrong, strict=False))
    for reason in run.reasons:
        if reason is not None:
            out.append(reason)
            continue
        c, n_wrong = next(it)
        if ctx.rank != 0:
            out.append(None)
            continue
        out.append(Measurement(spec=c.spec, samples_us=tuple(c.samples), block_time_us=c.span_us / max(c.calls, 1),
                               busbw_factor=busbw_factor, n_wrong=int(n_wrong)))  # fmt: skip
    return out


def measure_group(specs: list[CaseSpec], fns: list[Callable[..., None]], bufs: Buffers, ctx: RankContext,
                  busbw_factor: float) -> list[Measurement | str | None]:  # fmt: skip
    """Measure the points of one (collective, size) together in one visit (docs/protocol.md): start, sample,
    finish. ``bench.worker.RankMeasurer.measure_block`` spreads a curve's points over several visits."""
    run = start_group(specs, fns, bufs, ctx)
    sample_group(run, ctx)
    return finish_group(run, bufs, ctx, busbw_factor)


def measure(
    spec: CaseSpec, fn: Callable[..., None], bufs: Buffers, ctx: RankContext, busbw_factor: float
) -> Measurement | None:
    """Run the protocol for ``spec`` alone on this rank; rank 0 returns the Measurement, others None.

    Raises Unsupported (on every rank) when the algorithm rejected the case on some rank.
    """
    (result,) = measure_group([spec], [fn], bufs, ctx, busbw_factor)
    if isinstance(result, str):
        raise Unsupported(result)
    return result
