#!/usr/bin/env python
"""Side-by-side timing of every collectives algorithm against the backend's builtin, in one run.

Spawns ``--nprocs`` gloo processes (default 2) on this machine.  For each collective and size,
the algorithms are interleaved iteration by iteration (barrier, then one timed call each), so
drift hits all of them alike.  Per iteration the time is the max over ranks; the table shows the
median, busbw (nccl-tests factors, GB = 1e9 B) and busbw relative to builtin.

    PYTHONPATH=. python scripts/bench_collectives.py --sizes 4K,16M --iters 20
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import collectives  # noqa: E402
from bench.collective_io import Buffers, io_for  # noqa: E402
from bench.ports import free_port  # noqa: E402
from bench.sizes import parse_size  # noqa: E402
from collectives.costs import COLLECTIVES, PIPELINED, busbw_factor  # noqa: E402
from collectives.spec import DEFAULT_SWEEP, spec  # noqa: E402


@dataclass
class Point:
    """One measured (collective, algorithm, size)."""

    collective: str
    algorithm: str
    nbytes: int
    time_us: float
    busbw_gbps: float


def _case(collective: str, nbytes: int, p: int, dtype: torch.dtype, fn) -> tuple[Buffers, object]:
    """Buffers of nccl-tests' size S (at least one element per rank) and one bound out-of-place call."""
    desc = spec(collective)
    esize = torch.tensor([], dtype=dtype).element_size()
    count = max(desc.element_count(nbytes, esize, p), p if desc.blocked else 1)
    bufs = Buffers.allocate(collective, count, p, dtype, "cpu")
    bufs.main.fill_(1)
    if bufs.other is not None:
        bufs.other.fill_(1)
    main, other = bufs.views(dist.get_rank(), in_place=False)
    return bufs, io_for(collective).bind(fn, main, other, 0, dist.ReduceOp.SUM)


def _worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    dtype = getattr(torch, args.dtype)
    points: list[Point] = []
    for coll in args.collectives:
        algs = [a for a in collectives.algorithms(coll) if args.algorithms is None or a in args.algorithms]
        for nbytes in args.sizes:
            fns = {a: collectives.get(coll, a) for a in algs}
            if args.segment_bytes:
                for a in algs:
                    if (coll, a) in PIPELINED:
                        fns[a] = functools.partial(fns[a], segment_bytes=args.segment_bytes)
            cases = {a: _case(coll, nbytes, world, dtype, fns[a]) for a in algs}
            calls = {a: cases[a][1] for a in algs}
            for _ in range(args.warmup):
                for a in algs:
                    calls[a]()
            samples = {a: [] for a in algs}
            for _ in range(args.iters):
                for a in algs:  # interleaved
                    dist.barrier()
                    t0 = time.perf_counter_ns()
                    calls[a]()
                    samples[a].append(time.perf_counter_ns() - t0)
            main = cases[algs[0]][0].main
            real_bytes = main.numel() * main.element_size()
            for a in algs:
                t = torch.tensor(samples[a], dtype=torch.float64)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)  # per iteration: the slowest rank
                med_s = statistics.median(t.tolist()) * 1e-9
                busbw = real_bytes / med_s * busbw_factor(coll, world) / 1e9
                points.append(Point(coll, a, real_bytes, med_s * 1e6, busbw))
    if rank == 0:
        _print(points, world, args)
    dist.destroy_process_group()


def _print(points: list[Point], world: int, args: argparse.Namespace) -> None:
    print(f"# gloo, {world} processes, {args.dtype}, iters={args.iters}, warmup={args.warmup}, median of per-iter max")
    print(f"{'collective':<15}{'algorithm':<20}{'bytes':>12}{'time_us':>12}{'busbw_GBps':>12}{'vs_builtin':>11}")
    base = {(p.collective, p.nbytes): p.busbw_gbps for p in points if p.algorithm == "builtin"}
    for p in points:
        ref = base.get((p.collective, p.nbytes))
        ratio = f"{p.busbw_gbps / ref:.2f}x" if ref else "-"
        print(f"{p.collective:<15}{p.algorithm:<20}{p.nbytes:>12}{p.time_us:>12.1f}{p.busbw_gbps:>12.3f}{ratio:>11}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nprocs", type=int, default=2, help="processes to spawn (the machine has 2 cores: keep 2)")
    ap.add_argument("--sizes", default="4K,16M", help="comma list of sizes S (nccl-tests meaning), e.g. 4K,1M,16M")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--collectives", default=",".join(DEFAULT_SWEEP))
    ap.add_argument("--algorithms", default=None, help="comma list (builtin is always added)")
    ap.add_argument("--segment-bytes", type=int, default=0, help="segment size of the pipelined algorithms")
    args = ap.parse_args(argv)
    try:
        args.sizes = [parse_size(s) for s in args.sizes.split(",")]
    except ValueError:
        print(f"error: bad --sizes {args.sizes!r}", file=sys.stderr)
        return 2
    args.collectives = args.collectives.split(",")
    unknown = [c for c in args.collectives if c not in COLLECTIVES]
    if unknown or args.nprocs < 1 or args.iters < 1:
        print(f"error: unknown collective {unknown} or bad --nprocs/--iters", file=sys.stderr)
        return 2
    if args.algorithms:
        args.algorithms = set(args.algorithms.split(",")) | {"builtin"}
    port = free_port()
    mp.spawn(_worker, args=(args.nprocs, port, args), nprocs=args.nprocs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
