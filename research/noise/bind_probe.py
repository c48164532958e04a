#!/usr/bin/env python3
"""Does binding each rank to its own core (Open MPI's ``--bind-to core``) make gloo's calls faster on this host?

Two gloo ranks on CPU, each call of builtin all_reduce and the hand-written ring timed on its own (a barrier
before it, as collbench's protocol does), the two algorithms alternating; once with every thread of rank i on
the i-th usable CPU ("bound") and once unbound ("free"), ``--rounds`` times in alternation. Transport threads at
nice 19 as ``collbench run`` sets them. Per (mode, algorithm, size): the 25th percentile (near the fast mode that
``collbench run`` reports), the median, the mean (what a loop of calls pays), and the share of calls slower than
1.5x the 25th percentile.

    python research/noise/bind_probe.py --rounds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.ports import free_port  # noqa: E402
from bench.worker import nice_transport_threads  # noqa: E402
from collectives.all_reduce import ring  # noqa: E402

SIZES = (1 << 10, 1 << 18, 1 << 22, 1 << 24)


def bind(rank: int) -> None:
    """Every thread of this process on the rank-th usable CPU."""
    cpu = sorted(os.sched_getaffinity(0))[rank]
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            continue


def worker(rank: int, port: int, bound: bool, calls: int, q) -> None:  # noqa: ANN001
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    dist.barrier()
    nice_transport_threads(19)
    if bound:
        bind(rank)
    out = {}
    for n in SIZES:
        t = torch.ones(n // 4)
        fns = {"builtin": lambda t=t: dist.all_reduce(t), "ring": lambda t=t: ring(t)}
        times = {k: [] for k in fns}
        for _ in range(3):
            for f in fns.values():
                f()
        for i in range(calls):
            for k in fns if i % 2 == 0 else list(fns)[::-1]:
                dist.barrier()
                t0 = time.perf_counter()
                fns[k]()
                times[k].append((time.perf_counter() - t0) * 1e6)
        out[n] = times
    if rank == 0:
        q.put(out)
    dist.barrier()
    dist.destroy_process_group()


def measure(bound: bool, calls: int) -> dict:
    port = free_port()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, port, bound, calls, q)) for r in range(2)]
    for p in procs:
        p.start()
    out = q.get(timeout=600)
    for p in procs:
        p.join(timeout=60)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--calls", type=int, default=40, help="timed calls per algorithm and size (default 40)")
    args = ap.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("bind_probe: needs 2 usable CPUs")
    print("round mode  algorithm      size     p25_us  median_us    mean_us  slow_share")
    for r in range(args.rounds):
        for bound in (True, False) if r % 2 == 0 else (False, True):
            for n, times in measure(bound, args.calls).items():
                for alg, v in times.items():
                    a = np.array(v)
                    p25 = np.percentile(a, 25)
                    print(f"{r:5d} {'bound' if bound else 'free ':5s} {alg:9s} {n:9d} {p25:10.0f} {np.median(a):10.0f} "
                          f"{a.mean():10.0f} {np.mean(a > 1.5 * p25):11.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
