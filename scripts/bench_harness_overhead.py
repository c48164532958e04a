#!/usr/bin/env python
"""Harness overhead: collbench's timing path vs a bare ``dist.all_reduce`` loop, side by side in one run.

Two gloo ranks on this machine. In ABBA-ordered rounds (to cancel drift) each rank runs
(a) a bare loop: ``iters`` back-to-back ``dist.all_reduce`` calls, each timed with ``perf_counter_ns``;
(b) collbench's ``bench.timing.measure`` (the code ``collbench run`` executes per point) with ``builtin``.
Both take the per-iteration max over ranks. Reported: median per-iteration time at 4 B and busbw at
64 MiB. Targets: 4 B median within 10 %, 64 MiB busbw within 5 %. Exit 1 if a target is missed.

Usage: PYTHONPATH=. python scripts/bench_harness_overhead.py [--rounds 10] [--iters 200] [--big-iters 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bare(t, iters: int, nbytes: int, results: dict[str, list[float]]) -> None:
    """The reference: back-to-back dist.all_reduce calls, each timed with perf_counter_ns; max over ranks."""
    import torch
    import torch.distributed as dist

    for _ in range(5):
        dist.all_reduce(t)
    dist.barrier()
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter_ns()
        dist.all_reduce(t)
        samples.append((time.perf_counter_ns() - t0) / 1e3)
    gathered = torch.tensor(samples, dtype=torch.float64)
    dist.all_reduce(gathered, op=dist.ReduceOp.MAX)
    results.setdefault(f"bare_max_{nbytes}", []).extend(gathered.tolist())
    results.setdefault(f"bare_rank0_{nbytes}", []).extend(samples)


def _rank(rank: int, world: int, port: int, args: argparse.Namespace, queue) -> None:
    import torch
    import torch.distributed as dist

    import collectives
    from bench.collective_io import Buffers
    from bench.records import CaseSpec
    from bench.timing import RankContext, measure
    from collectives.costs import busbw_factor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    ctx = RankContext.create(rank, world, "cpu", seed=0)
    builtin = collectives.get("all_reduce", "builtin")
    results: dict[str, list[float]] = {}
    for nbytes, iters in ((4, args.iters), (64 << 20, args.big_iters)):
        count = nbytes // 4
        bufs = Buffers.allocate("all_reduce", count, world, torch.float32, "cpu")
        bufs.main.fill_(1.0)
        spec = CaseSpec("all_reduce", "builtin", "gloo", "cpu", world, "float32", "sum", nbytes, count, -1, True,
                        iters, 5)  # fmt: skip
        for rnd in range(args.rounds):
            # ABBA order: odd rounds run collbench first, so order effects cancel
            for which in ("bare", "collbench") if rnd % 2 == 0 else ("collbench", "bare"):
                if which == "bare":
                    _bare(bufs.main, iters, nbytes, results)
                else:
                    m = measure(spec, builtin, bufs, ctx, busbw_factor("all_reduce", world))
                    if rank == 0:
                        results.setdefault(f"collbench_{nbytes}", []).extend(m.samples_us)
                        results.setdefault(f"collbench_block_{nbytes}", []).append(m.block_time_us)
                        results.setdefault(f"collbench_correct_{nbytes}", []).append(float(m.correct))
    if rank == 0:
        queue.put(results)
    dist.barrier()
    dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iters", type=int, default=200, help="timed calls per round at 4 B")
    parser.add_argument("--big-iters", type=int, default=10, help="timed calls per round at 64 MiB")
    args = parser.parse_args()
    import multiprocessing as mp

    from bench.ports import free_port

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, args, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = queue.get(timeout=600)
    for p in procs:
        p.join(timeout=60)

    med = {k: statistics.median(v) for k, v in results.items()}
    big = 64 << 20
    bare_bus = big / (med[f"bare_max_{big}"] * 1e3)  # busbw factor 2(p-1)/p = 1 at p = 2
    coll_bus = big / (med[f"collbench_{big}"] * 1e3)
    small_diff = med["collbench_4"] / med["bare_max_4"] - 1
    big_diff = coll_bus / bare_bus - 1
    print(f"builtin all_reduce, gloo, 2 ranks, {args.rounds} ABBA-ordered rounds (median over all samples)")
    print(f"{'':34} {'bare loop':>12} {'collbench':>12} {'diff':>8}")
    bare4, coll4 = med["bare_max_4"], med["collbench_4"]
    print(f"{'4 B median time (us), max ranks':34} {bare4:12.2f} {coll4:12.2f} {small_diff:+8.1%}")
    print(f"{'4 B median time (us), rank 0 only':34} {med['bare_rank0_4']:12.2f} {'':>12}")
    print(f"{'4 B collbench block time (us)':34} {'':>12} {med['collbench_block_4']:12.2f}")
    print(f"{'64 MiB median time (us)':34} {med[f'bare_max_{big}']:12.1f} {med[f'collbench_{big}']:12.1f}")
    print(f"{'64 MiB busbw (GB/s)':34} {bare_bus:12.4f} {coll_bus:12.4f} {big_diff:+8.1%}")
    correct = all(v == 1.0 for k, vs in results.items() if k.startswith("collbench_correct") for v in vs)
    ok_small, ok_big = abs(small_diff) <= 0.10, abs(big_diff) <= 0.05
    verdict = {True: "PASS", False: "FAIL"}
    print(f"4 B within 10 %: {verdict[ok_small]}; 64 MiB busbw within 5 %: {verdict[ok_big]}; ", end="")
    print(f"collbench correctness: {verdict[correct]}")
    return 0 if ok_small and ok_big and correct else 1


if __name__ == "__main__":
    raise SystemExit(main())
