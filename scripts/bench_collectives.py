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
import os
import socket
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import collectives  # noqa: E402
from collectives.costs import COLLECTIVES, busbw_factor  # noqa: E402

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """'4K', '16M', '1G' (powers of 1024) or plain bytes."""
    t = text.strip().upper().removesuffix("B")
    if t and t[-1] in _UNITS:
        return int(float(t[:-1]) * _UNITS[t[-1]])
    return int(t)


@dataclass
class Point:
    """One measured (collective, algorithm, size)."""

    collective: str
    algorithm: str
    nbytes: int
    time_us: float
    busbw_gbps: float


def _call(fn, collective: str, bufs: tuple[torch.Tensor, ...], kwargs: dict) -> None:
    if collective in ("broadcast", "reduce"):
        fn(bufs[0], 0, **kwargs)
    elif collective == "all_reduce":
        fn(bufs[0], **kwargs)
    else:
        fn(bufs[0], bufs[1], **kwargs)


def _buffers(collective: str, nbytes: int, p: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    count = max(1, nbytes // torch.tensor([], dtype=dtype).element_size())
    if collective in ("all_gather", "reduce_scatter"):
        block = max(1, count // p)
        small, big = torch.ones(block, dtype=dtype), torch.ones(block * p, dtype=dtype)
        return (big, small) if collective == "all_gather" else (small, big)
    return (torch.ones(count, dtype=dtype),)


def _worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    dtype = getattr(torch, args.dtype)
    points: list[Point] = []
    for coll in args.collectives:
        algs = [a for a in collectives.algorithms(coll) if args.algorithms is None or a in args.algorithms]
        for nbytes in args.sizes:
            bufs = {a: _buffers(coll, nbytes, world, dtype) for a in algs}
            fns = {a: collectives.get(coll, a) for a in algs}
            kw = {a: {} for a in algs}
            if args.segment_bytes:
                for a in algs:
                    if (coll, a) in (("broadcast", "ring"), ("reduce", "ring"), ("all_reduce", "tree")):
                        kw[a] = {"segment_bytes": args.segment_bytes}
            for _ in range(args.warmup):
                for a in algs:
                    _call(fns[a], coll, bufs[a], kw[a])
            samples = {a: [] for a in algs}
            for _ in range(args.iters):
                for a in algs:  # interleaved
                    dist.barrier()
                    t0 = time.perf_counter_ns()
                    _call(fns[a], coll, bufs[a], kw[a])
                    samples[a].append(time.perf_counter_ns() - t0)
            real_bytes = bufs[algs[0]][0].numel() * bufs[algs[0]][0].element_size()
            if coll == "reduce_scatter":
                real_bytes = bufs[algs[0]][1].numel() * bufs[algs[0]][1].element_size()
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
    ap.add_argument("--collectives", default=",".join(COLLECTIVES))
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(args.nprocs, port, args), nprocs=args.nprocs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
