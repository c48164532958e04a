#!/usr/bin/env python
"""Where the time of a slow gloo call goes, per thread: on-CPU time and time spent runnable but waiting for a
CPU (``/proc/<pid>/task/<tid>/schedstat``), per call, per rank, for blocks of back-to-back calls.

What it showed of the "8 ms mode" of the hand-written algorithms on the 2-core VM (gloo, 2 processes):
in a slow block the rank's ``gloo_tcp_loop`` thread is on the CPU for most of each call (busy, not sleeping)
while the rank's Python thread, which would post the next receive, waits runnable for about as long, until
the next scheduler tick (4 ms at HZ=250) gives it the CPU. A fast block shows neither.

    python research/noise/gloo_spin_probe.py --algorithms ring,builtin --bytes 64K --blocks 10 --calls 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import collectives  # noqa: E402
from bench.ports import free_port  # noqa: E402
from bench.sizes import parse_size  # noqa: E402


def thread_times_ns() -> dict[str, tuple[int, int]]:
    """Per thread name (threads of one name summed): (on-CPU ns, runnable-but-waiting ns) so far."""
    out: dict[str, tuple[int, int]] = {}
    task = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(task):
        try:
            run, wait, _ = open(f"{task}/{tid}/schedstat").read().split()
            name = open(f"{task}/{tid}/comm").read().strip()
        except (OSError, ValueError):
            continue
        r, w = out.get(name, (0, 0))
        out[name] = (r + int(run), w + int(wait))
    return out


def _worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    t = torch.ones(max(parse_size(args.bytes) // 4, 1))
    task = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(task):
        if open(f"{task}/{tid}/comm").read().startswith("gloo_tcp"):
            if args.transport == "idle":
                os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))
            elif args.transport.startswith("nice"):
                os.setpriority(os.PRIO_PROCESS, int(tid), int(args.transport[4:]))
    for alg in args.algorithms.split(","):
        fn = collectives.get("all_reduce", alg)
        for _ in range(5):
            fn(t)
        rows = []
        for _ in range(args.blocks):
            dist.barrier()
            before, start = thread_times_ns(), time.perf_counter()
            for _ in range(args.calls):
                fn(t)
            per_call_us = (time.perf_counter() - start) / args.calls * 1e6
            after = thread_times_ns()
            threads = {k: ((after[k][0] - before.get(k, (0, 0))[0]) / args.calls / 1e3,
                           (after[k][1] - before.get(k, (0, 0))[1]) / args.calls / 1e3) for k in after}  # fmt: skip
            rows.append((per_call_us, threads))
        gathered: list = [None] * world
        dist.all_gather_object(gathered, rows)
        if rank == 0:
            print(f"# all_reduce {alg}, {args.bytes}, {world} ranks, {args.transport} transport: per call, per rank: "
                  "wall us, then per thread on-CPU us / runnable-waiting us")  # fmt: skip
            for b in range(args.blocks):
                cells = []
                for r in range(world):
                    wall, threads = gathered[r][b]
                    busy = " ".join(f"{k}:{v[0]:.0f}/{v[1]:.0f}" for k, v in sorted(threads.items()) if sum(v) > 5)
                    cells.append(f"r{r} {wall:6.0f} {busy}")
                print(f"{alg:>8} block {b:2d}  " + "  |  ".join(cells), flush=True)
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algorithms", default="ring,builtin")
    ap.add_argument("--bytes", default="64K")
    ap.add_argument("--nprocs", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--transport", default="normal",
                    help="gloo's transport threads: normal, idle (SCHED_IDLE) or niceN (e.g. nice19)")
    args = ap.parse_args(argv)
    mp.spawn(_worker, args=(args.nprocs, free_port(), args), nprocs=args.nprocs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
