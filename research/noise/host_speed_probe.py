"""Is a point's level set by the host's speed of the moment or by where its buffers sit?

    python research/noise/host_speed_probe.py [--rounds 24] [--calls 30]

Two gloo ranks, one process group. Each round takes one window of ``--calls`` timed calls (barrier, one call,
max over ranks) of builtin and ring all_reduce at 1 and 4 MiB, once on buffers kept for the whole run
("same") and once on buffers allocated afresh ("fresh"). Prints each window's median in time order and,
per point, the spread of the window medians: if "fresh" spreads much more than "same", buffer placement
moves the figure; if both spread alike, the host's speed does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import collectives  # noqa: E402
from bench.ports import free_port  # noqa: E402

SIZES = (1 << 20, 4 << 20)


def _window(fn, t: torch.Tensor, calls: int) -> float:
    """Median over ``calls`` timed calls (max over ranks), in us."""
    out = []
    for _ in range(calls):
        dist.barrier()
        s = time.perf_counter()
        fn(t)
        out.append(time.perf_counter() - s)
    v = torch.tensor(out, dtype=torch.float64)
    dist.all_reduce(v, op=dist.ReduceOp.MAX)
    return statistics.median(v.tolist()) * 1e6


def _rank(rank: int, port: int, rounds: int, calls: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    algos = {"builtin": dist.all_reduce, "ring": collectives.get("all_reduce", "ring")}
    kept = {(a, n): torch.ones(n // 4) for a in algos for n in SIZES}
    medians: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(rounds):
        for kind in ("same", "fresh"):
            for n in SIZES:
                for a, fn in algos.items():
                    t = kept[(a, n)] if kind == "same" else torch.ones(n // 4)
                    for _ in range(3):
                        fn(t)
                    medians.setdefault((a, kind, n), []).append(_window(fn, t, calls))
    if rank == 0:
        for (a, kind, n), m in sorted(medians.items()):
            print(f"{a:8} {n >> 20} MiB {kind:5}: window medians {min(m):7.0f}-{max(m):7.0f} us, max/min "
                  f"{max(m) / min(m):.2f}, in time order: {' '.join(f'{x:.0f}' for x in m)}")  # fmt: skip
    dist.destroy_process_group()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    mp.spawn(_rank, args=(free_port(), args.rounds, args.calls), nprocs=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
