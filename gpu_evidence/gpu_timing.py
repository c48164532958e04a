#!/usr/bin/env python
"""Timing on the GPU: CUDA events vs the host clock, and CUDA-graph replay vs eager, on the same points.

One process, world size 1 (NCCL on the GPU; gloo with ``--device cpu``), builtin ``all_reduce`` of float32 at
each size. Per size, with the harness's own clocks (bench.clock):

- ``events_us``: CudaClock marks on the stream around each call of a back-to-back loop (collbench's figure);
  ``events_block_us``: first to last mark / iters (nccl-tests' figure);
- ``host_sync_us``: perf_counter around each call followed by ``torch.cuda.synchronize()`` (launch + run + the
  sync's own cost: what a naive host timer reports);
- ``host_block_us``: perf_counter around the whole loop, one synchronize at the end, / iters;
- ``graph_us`` / ``graph_block_us``: the same loop as replays of a one-call CUDA graph, and one replay of an
  iters-call graph / iters (collbench run --cuda-graph's two figures), CUDA events;
- ``graph_saving_us`` = events_block_us - graph_block_us: the launch overhead per call that a graph removes.

Writes one JSON object (``--out``) and prints a table. ``--device cpu`` runs the host-clock path on gloo (no
events, no graphs) so the script is testable without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _block_events(torch, stream, fn, iters: int) -> tuple[list[float], float]:
    from bench.clock import CudaClock

    clock = CudaClock(stream)
    clock.reset(iters + 1)
    with torch.cuda.stream(stream):
        clock.mark(0)
        for i in range(iters):
            fn()
            clock.mark(i + 1)
    return clock.durations_us()


def measure_size(torch, dist, device: str, nbytes: int, iters: int, warmup: int) -> dict:
    n = max(1, nbytes // 4)
    t = torch.ones(n, dtype=torch.float32, device=device)
    row: dict = {"bytes": n * 4, "iters": iters}

    def call() -> None:
        dist.all_reduce(t)

    cuda = device == "cuda"
    stream = torch.cuda.Stream() if cuda else None
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    ctx = torch.cuda.stream(stream) if cuda else None
    if ctx is not None:
        ctx.__enter__()
    try:
        for _ in range(warmup):
            call()
        sync()
        if cuda:
            samples, span = _block_events(torch, stream, call, iters)
            row["events_us"] = statistics.median(samples)
            row["events_block_us"] = span / iters
        host = []
        for _ in range(iters):
            t0 = time.perf_counter_ns()
            call()
            sync()
            host.append((time.perf_counter_ns() - t0) / 1e3)
        row["host_sync_us"] = statistics.median(host)
        sync()
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            call()
        sync()
        row["host_block_us"] = (time.perf_counter_ns() - t0) / 1e3 / iters
        if cuda:
            one, block = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
            with torch.cuda.graph(one, stream=stream):
                call()
            with torch.cuda.graph(block, stream=stream):
                for _ in range(iters):
                    call()
            sync()
            samples, _ = _block_events(torch, stream, one.replay, iters)
            row["graph_us"] = statistics.median(samples)
            _, span = _block_events(torch, stream, block.replay, 1)
            row["graph_block_us"] = span / iters
            row["graph_saving_us"] = row["events_block_us"] - row["graph_block_us"]
            sync()
            del one, block
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    t.fill_(1.0)
    call()
    sync()
    row["correct"] = bool((t == 1.0).all())  # world size 1: the sum is the input
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--sizes", default="1K,4K,16K,64K,256K,1M,4M,16M,64M", help="bytes, K/M/G = 1024^k")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", help="write the JSON object here")
    args = ap.parse_args(argv)
    from bench.sizes import parse_size

    try:
        sizes = [parse_size(text) for text in args.sizes.split(",") if text.strip()]
    except ValueError as exc:
        ap.error(str(exc))

    import torch
    import torch.distributed as dist

    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("gpu_timing: --device cuda but torch sees no CUDA GPU")
        torch.cuda.set_device(0)
    backend = "nccl" if args.device == "cuda" else "gloo"
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    rows = []
    try:
        dist.barrier()
        for nbytes in sizes:
            rows.append(measure_size(torch, dist, args.device, nbytes, args.iters, args.warmup))
            r = rows[-1]
            cols = [
                f"{k} {r[k]:.2f}"
                for k in (
                    "events_us",
                    "events_block_us",
                    "host_sync_us",
                    "host_block_us",
                    "graph_us",
                    "graph_block_us",
                    "graph_saving_us",
                )
                if k in r
            ]
            print(f"all_reduce {r['bytes']:>10} B  " + "  ".join(cols), flush=True)
    finally:
        dist.destroy_process_group()
    result = {
        "backend": backend,
        "device": args.device,
        "gpu_name": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "nccl": ".".join(map(str, torch.cuda.nccl.version())) if args.device == "cuda" else None,
        "torch": torch.__version__,
        "collective": "all_reduce",
        "algorithm": "builtin",
        "dtype": "float32",
        "world_size": 1,
        "definitions": {
            "events_us": "median per-call interval between CUDA events on the stream (collbench run's clock)",
            "events_block_us": "CUDA events around the whole back-to-back loop / iters",
            "host_sync_us": "median perf_counter around call + torch.cuda.synchronize()",
            "host_block_us": "perf_counter around the loop and one final synchronize / iters",
            "graph_us": "median CUDA-event interval of replays of a one-call graph",
            "graph_block_us": "one replay of an iters-call graph / iters (CUDA events)",
            "graph_saving_us": "events_block_us - graph_block_us: launch overhead per call a graph removes",
        },
        "points": rows,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    if not all(r["correct"] for r in rows):
        print("gpu_timing: WRONG all_reduce result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
