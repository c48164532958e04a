"""A reusable pool of p spawned worker processes sharing one process group.

Workers init the process group once, then run ``module:function`` case runners sent over queues
and send back their results; the pool is reused across many test cases.  Every queue get has a
deadline: a worker that hangs or dies makes ``run`` kill the whole pool and raise, so a broken
algorithm fails its test instead of hanging the suite.

Workers are forked from a forkserver that has imported torch, numpy and the case runners once
(``PRELOAD``): a spawned worker imports torch itself, ~3 s of CPU each, and the suite starts 36 of them
(p = 1..8) on 2 cores. The forkserver is a fresh process that never initialises a backend or CUDA, so each
worker still sets up its own process group (and CUDA device) after the fork, as a spawned one would.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import queue
import time
import traceback
from datetime import timedelta
from typing import Any

from bench.ports import free_port

#: imported once by the forkserver, inherited by every worker it forks
PRELOAD = ["torch", "torch.distributed", "numpy", "collectives", "collcases"]


def _context() -> Any:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # takes effect when the first pool starts the forkserver
    return ctx


def _worker(rank: int, world: int, port: int, backend: str, inq: Any, outq: Any) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())  # >1 rank per GPU only if NCCL allows
        dist.init_process_group(
            backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
        )
        if backend == "nccl":
            dist.barrier()  # NCCL: first collective involves every rank (see collectives.batched_p2p)
        outq.put((rank, True, "ready"))
    except BaseException:
        outq.put((rank, False, traceback.format_exc()))
        return
    state: dict[str, Any] = {"backend": backend}  # per-worker cache (subgroups)
    while True:
        item = inq.get()
        if item is None:
            break
        target, kwargs = item
        try:
            mod, name = target.split(":")
            fn = getattr(importlib.import_module(mod), name)
            outq.put((rank, True, fn(state, **kwargs)))
        except BaseException:
            outq.put((rank, False, traceback.format_exc()))
    dist.destroy_process_group()


class WorkerError(RuntimeError):
    """A worker raised, hung past the deadline or died; the pool is dead afterwards."""


class Pool:
    """p worker processes in one process group (gloo by default)."""

    def __init__(self, world: int, backend: str = "gloo", start_timeout_s: float = 120.0) -> None:
        self.world = world
        ctx = _context()
        port = free_port()
        self._inqs = [ctx.Queue() for _ in range(world)]
        self._outq = ctx.Queue()
        self._procs = [
            ctx.Process(target=_worker, args=(r, world, port, backend, self._inqs[r], self._outq), daemon=True)
            for r in range(world)
        ]
        for proc in self._procs:
            proc.start()
        self.alive = True
        self._collect(start_timeout_s)

    def _collect(self, timeout_s: float) -> list[Any]:
        results: list[Any] = [None] * self.world
        deadline = time.monotonic() + timeout_s
        for _ in range(self.world):
            try:
                rank, ok, value = self._outq.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise WorkerError(
                    f"world {self.world}: no answer within {timeout_s:.0f} s (hung or dead worker)"
                ) from None
            if not ok:
                self.kill()
                raise WorkerError(f"world {self.world}, rank {rank} raised:\n{value}")
            results[rank] = value
        return results

    def run(self, target: str, timeout_s: float = 90.0, **kwargs: Any) -> list[Any]:
        """Run ``target(state, **kwargs)`` on every rank; the list of per-rank results."""
        if not self.alive:
            raise WorkerError("pool is dead")
        for q in self._inqs:
            q.put((target, kwargs))
        return self._collect(timeout_s)

    def close(self) -> None:
        """Ask the workers to exit, then kill stragglers."""
        if self.alive:
            for q in self._inqs:
                q.put(None)
            for proc in self._procs:
                proc.join(timeout=10)
        self.kill()

    def kill(self) -> None:
        """Terminate every worker of this pool (only the processes this pool started)."""
        self.alive = False
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=5)


class Pools:
    """One lazily started Pool per (world size, backend), restarted after a failure."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, str], Pool] = {}

    def get(self, world: int, backend: str = "gloo") -> Pool:
        pool = self._pools.get((world, backend))
        if pool is None or not pool.alive:
            pool = Pool(world, backend)
            self._pools[(world, backend)] = pool
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
