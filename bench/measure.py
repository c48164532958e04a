"""Measure one case on every rank (docs/protocol.md); rank 0 gets the Measurement.

Protocol per point: fill seeded exact data, warm up, device sync + barrier, one back-to-back loop of
``iters`` calls marked by the device clock (block = first to last mark / iters; samples = each call's
own interval), per-iteration max over ranks of the durations (all-reduce MAX, never timestamp
differences across ranks), then one more call on fresh data checked against the exact reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bench import exact_data
from bench.clock import Clock, CpuClock, CudaClock
from bench.collective_io import Buffers, DataCase, io_for
from bench.measurement import CaseSpec, Measurement


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


def measure(
    spec: CaseSpec, fn: Callable[..., None], bufs: Buffers, ctx: RankContext, busbw_factor: float
) -> Measurement | None:
    """Run the protocol for ``spec`` on this rank; rank 0 returns the Measurement, others None.

    Raises Unsupported (on every rank) when the algorithm rejected the case on some rank.
    """
    prepare(spec, bufs, ctx)
    rejected = None
    call: Callable[[], None] = lambda: None  # noqa: E731 - replaced below unless the case is rejected
    try:
        call = make_call(spec, fn, bufs, ctx.rank)
        if ctx.stream is not None:
            with torch.cuda.stream(ctx.stream):
                call()
        else:
            call()
    except (ValueError, TypeError) as exc:
        rejected = f"{type(exc).__name__}: {exc}"
    flag = ctx.allreduce_cpu(torch.tensor([1 if rejected else 0]), dist.ReduceOp.MAX)
    if int(flag.item()):
        raise Unsupported(rejected or "rejected on another rank")

    def run_block() -> tuple[list[float], float]:
        for _ in range(max(spec.warmup - 1, 0)):
            call()
        ctx.barrier()
        if spec.cuda_graph:
            return _timed_graph(call, spec.iters, ctx)
        return _timed_loop(call, spec.iters, ctx)

    if ctx.stream is not None:
        with torch.cuda.stream(ctx.stream):
            samples, span = run_block()
    else:
        samples, span = run_block()
    block = span / spec.iters if spec.iters else 0.0
    times = ctx.allreduce_cpu(torch.tensor([*samples, block], dtype=torch.float64), dist.ReduceOp.MAX)

    prepare(spec, bufs, ctx)
    ctx.barrier()
    if ctx.stream is not None:
        with torch.cuda.stream(ctx.stream):
            call()
    else:
        call()
    ctx.sync()
    wrong = ctx.allreduce_cpu(torch.tensor([count_wrong(spec, bufs, ctx)], dtype=torch.int64), dist.ReduceOp.SUM)
    if ctx.rank != 0:
        return None
    values = times.tolist()
    return Measurement(
        spec=spec,
        samples_us=tuple(values[:-1]),
        block_time_us=values[-1],
        busbw_factor=busbw_factor,
        n_wrong=int(wrong.item()),
    )
